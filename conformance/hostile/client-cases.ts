// A client of stage 02, 03 or 04 (the reference, or CLIENT_CMD) against a fake server that turns
// hostile mid-session: it vanishes (reset or FIN), sends garbage or an absurd length, or sends
// names and messages full of terminal escape sequences. The client must end with ONE line on
// standard error and a non-zero exit (no stack trace), and never print a control character it
// was sent: an escape sequence from a server must not reach the user's terminal.
import { FakeServer } from '../harness/fake-server.ts';
import { runCommand, type CommandResult } from '../harness/run-command.ts';
import type { WireClient } from '../harness/wire-client.ts';
import { frame, header, jsonFrame } from './frames.ts';
import { SeededRandom } from '../harness/seeded-random.ts';
import { AUDIO, ERROR, JOINED, LEFT, SPEAKING, USERS, WELCOME, type StageWire } from './wire-spec.ts';
import { errorLines, hasStackTrace } from '../harness/program-output.ts';

const CLIENT_TIMEOUT_MS = 20_000;
/** Escape sequences and controls a hostile server might send (clear screen, set title, bell, bidi, CR). */
export const HOSTILE_TEXT = '\x1b[2J\x1b]0;pwned\x07\x1b[31mEvil\u202e\r\u009b6n';
/** Bytes that must never appear in what a client prints: ESC, BEL, CR, C1 CSI, U+202E. */
export const FORBIDDEN_OUTPUT = /[\x1b\x07\r\u009b\u202e]/u;

export interface ClientCase {
  name: string;
  /** Plays the server's part once the client's HELLO is in. */
  serve(connection: WireClient, wire: StageWire): Promise<void>;
}

/** WELCOME, and in 03/04 the USERS that follows it. */
function welcome(wire: StageWire, name = 'Ada'): Buffer {
  const welcomeFrame = jsonFrame(WELCOME, { name, room: 'lobby', sample_rate: 48_000, frame_samples: 960 });
  if (!wire.mixes) return welcomeFrame;
  return Buffer.concat([welcomeFrame, jsonFrame(USERS, { room: 'lobby', users: [name, 'Bob'] })]);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const oneSecondOfAudio = () => Buffer.concat(Array.from({ length: 50 }, () => frame(AUDIO, Buffer.alloc(1920))));

export const clientCases: ClientCase[] = [
  {
    name: 'the server resets the connection mid-session',
    async serve(connection, wire) {
      connection.send(Buffer.concat([welcome(wire), oneSecondOfAudio()]));
      await sleep(300);
      connection.reset();
    },
  },
  {
    name: 'the server closes the connection (FIN) mid-session',
    async serve(connection, wire) {
      connection.send(welcome(wire));
      await sleep(300);
      connection.end();
    },
  },
  {
    name: 'the server sends random bytes mid-session',
    async serve(connection, wire) {
      const junk = new SeededRandom(42).bytes(3000);
      junk[0] = 0xee; // a type no server sends: the client must notice at once, not wait for a length
      connection.send(Buffer.concat([welcome(wire), junk]));
    },
  },
  {
    name: 'the server declares a 4 GB frame mid-session',
    async serve(connection, wire) {
      connection.send(Buffer.concat([welcome(wire), header(AUDIO, 0xffffffff)]));
    },
  },
  {
    name: 'the server sends names and messages full of terminal escape sequences',
    async serve(connection, wire) {
      const news = wire.mixes
        ? [
          jsonFrame(USERS, { room: 'lobby', users: ['Ada', HOSTILE_TEXT] }),
          jsonFrame(JOINED, { name: `${HOSTILE_TEXT}2` }),
          jsonFrame(SPEAKING, { speakers: [HOSTILE_TEXT] }),
          jsonFrame(LEFT, { name: HOSTILE_TEXT, reason: HOSTILE_TEXT }),
        ]
        : [];
      connection.send(Buffer.concat([welcome(wire, `Ada${HOSTILE_TEXT}`), ...news]));
      await sleep(300);
      connection.send(jsonFrame(ERROR, { code: `kicked${HOSTILE_TEXT}`, message: `goodbye ${HOSTILE_TEXT}\nfake prompt $ ` }));
      connection.end();
    },
  },
];

export interface ClientRun {
  result: CommandResult;
  /** What the fake server received from the client. */
  received: Buffer;
}

/** Runs the client against a fake server playing `clientCase`. */
export async function runClientCase(clientCommand: string, wire: StageWire, clientCase: ClientCase): Promise<ClientRun> {
  const server = await FakeServer.start();
  try {
    const args = ['--name', 'Ada', '--host', '127.0.0.1', '--port', String(server.port), '--input', 'silence', '--output', 'null'];
    if (wire.id === '04') args.push('--room', 'lobby');
    const running = runCommand(clientCommand, args, { timeoutMs: CLIENT_TIMEOUT_MS });
    const connection = await server.connection(0, CLIENT_TIMEOUT_MS);
    await connection.readBytes(5, 10_000, 'the HELLO header');
    await clientCase.serve(connection, wire);
    const result = await running;
    return { result, received: connection.received };
  } finally {
    await server.close();
  }
}

/** Why the run is not a clean one-line failure, or null when it is. */
export function oneLineFailureProblem(result: CommandResult): string | null {
  if (result.timedOut) return `the client was still running after ${CLIENT_TIMEOUT_MS / 1000} s`;
  if (result.exitCode === 0) return 'the client exited 0';
  if (result.exitCode === null) return `the client was killed by ${result.signal}`;
  const lines = errorLines(result.stderr);
  if (lines.length !== 1) return `standard error has ${lines.length} lines, not one: ${JSON.stringify(result.stderr.slice(0, 400))}`;
  if (hasStackTrace(result.stderr + result.stdout)) return 'a stack trace was printed';
  return null;
}

/** Where the client printed a control character it was sent, or null. */
export function controlCharacterProblem(result: CommandResult): string | null {
  for (const [stream, text] of [['standard output', result.stdout], ['standard error', result.stderr]] as const) {
    const match = FORBIDDEN_OUTPUT.exec(text);
    if (match) {
      const at = match.index;
      return `${stream} holds U+${match[0].codePointAt(0)!.toString(16).padStart(4, '0')}: ${JSON.stringify(text.slice(Math.max(0, at - 40), at + 40))}`;
    }
  }
  return null;
}
