// Stage 01's protocol: one line of UTF-8 text each way, ended by "\n".
//   client -> server   HELLO <name>\n
//   server -> client   OK Hello, <name>!\n        (then the server closes the connection)
//              or      ERR <code> <reason>\n      (then the server closes the connection)
// TCP is a byte stream: a line may arrive in many pieces, so the server collects bytes until "\n".

export const GREETING_PREFIX = 'HELLO ';
/** Longest greeting line accepted, in bytes, counting the final "\n". */
export const MAX_LINE_BYTES = 256;
/** A client that has not sent a complete greeting after this long is told so and dropped. */
export const GREETING_TIMEOUT_MS = 10_000;

export const ErrorCode = {
  /** The line does not start with "HELLO ". */
  badGreeting: 'bad_greeting',
  /** The name breaks the name rule (empty, too long, control characters, spaces at the ends). */
  badName: 'bad_name',
  /** The line is not valid UTF-8. */
  badUtf8: 'bad_utf8',
  /** No "\n" within MAX_LINE_BYTES bytes. */
  tooLong: 'too_long',
  /** No complete greeting within GREETING_TIMEOUT_MS. */
  timeout: 'timeout',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export function answerLine(name: string): string {
  return `OK Hello, ${name}!\n`;
}

export function errorLine(code: ErrorCode, reason: string): string {
  return `ERR ${code} ${reason}\n`;
}
