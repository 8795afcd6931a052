// Stage 02's protocol: framed messages on the TCP byte stream (see README.md for the full spec).
//
//   every message:  type u8 | length u32 big-endian | payload (length bytes)
//
//   0x01 HELLO    client -> server   {"name": string, "protocol"?: "voice-chat/02"}
//   0x02 WELCOME  server -> client   {"name": string, "sample_rate": 48000, "frame_samples": 960,
//                                    "protocol"?: "voice-chat/02"}
//   0x03 AUDIO    both ways          1920 bytes: 960 samples, s16le mono 48 kHz (20 ms)
//   0x04 BYE      client -> server   empty
//   0x05 ERROR    server -> client   {"code": string, "message": string}, then the server closes
//
// Control payloads are one UTF-8 JSON object (unknown fields are ignored); audio is raw PCM.
import { FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE } from '#shared/audio/format.ts';
import { encodeFrame } from '#shared/framing/frame-encoder.ts';
import { decodeJsonObject, encodeJsonFrame, requireString, type JsonObject } from '#shared/framing/json-payload.ts';
import { FRAMING_ERROR_CODES, ProtocolError } from '#shared/protocol-error.ts';

export const MessageType = {
  hello: 0x01,
  welcome: 0x02,
  audio: 0x03,
  bye: 0x04,
  error: 0x05,
} as const;

/**
 * The protocol this stage speaks, named in HELLO and WELCOME so that programs of different stages
 * (all on port 8888 by default) notice each other. The field is optional: a peer without it is
 * accepted; a peer naming another protocol is not.
 */
export const PROTOCOL = 'voice-chat/02';

/** Largest HELLO payload: a 32-character name is at most 128 bytes of UTF-8, the rest is room for JSON. */
export const MAX_HELLO_BYTES = 1024;
/** Largest WELCOME or ERROR payload the client accepts (the server's are far shorter). */
export const MAX_SERVER_CONTROL_BYTES = 4096;
/**
 * Most connections at once: the user and those waiting to be told `busy`. One more is told ERROR
 * server_full and closed at once, so a flood of connections cannot exhaust the server's files.
 */
export const MAX_CONNECTIONS = 64;
/** A connection that has not sent a valid HELLO after this long is told so and dropped. */
export const HANDSHAKE_TIMEOUT_MS = 5_000;
/**
 * Echo frames wait in the server's send buffer while a client reads slowly. Past about 32
 * frames (~64 KB, 0.64 s of audio) the server drops echoes for that client instead of
 * buffering without bound: late audio is useless anyway.
 */
export const MAX_QUEUED_ECHO_BYTES = 32 * (5 + FRAME_BYTES);
/**
 * A user whose echoes have all been dropped for this long has stopped reading, and is disconnected
 * with slow_consumer: a client that never reads must not hold the only slot for ever.
 */
export const SLOW_CONSUMER_MS = 5_000;

/** Payload limits of the frames a CLIENT may send; undefined = not a client message (unknown_type). */
export function clientMessageLimit(type: number): number | undefined {
  switch (type) {
    case MessageType.hello:
      return MAX_HELLO_BYTES;
    case MessageType.audio:
      return FRAME_BYTES;
    case MessageType.bye:
      return 0;
    default:
      return undefined;
  }
}

/** Payload limits of the frames a SERVER may send. */
export function serverMessageLimit(type: number): number | undefined {
  switch (type) {
    case MessageType.welcome:
    case MessageType.error:
      return MAX_SERVER_CONTROL_BYTES;
    case MessageType.audio:
      return FRAME_BYTES;
    default:
      return undefined;
  }
}

/** Stable error codes sent in ERROR messages. */
export const ErrorCode = {
  /** The type byte is not a message a client may send (this includes WELCOME and ERROR). */
  unknownType: FRAMING_ERROR_CODES.UNKNOWN_TYPE,
  /** The header declares more payload bytes than the type allows (checked before reading them). */
  frameTooLarge: FRAMING_ERROR_CODES.FRAME_TOO_LARGE,
  /** A HELLO payload is not valid UTF-8. */
  badUtf8: FRAMING_ERROR_CODES.BAD_UTF8,
  /** A HELLO payload is not a JSON object. */
  badJson: FRAMING_ERROR_CODES.BAD_JSON,
  /** A HELLO has no "name", or it is not a string. */
  badField: FRAMING_ERROR_CODES.BAD_FIELD,
  /** A HELLO whose "protocol" is present and not PROTOCOL: a client of another stage. */
  wrongProtocol: 'wrong_protocol',
  /** The name breaks the name rule (1-32 characters, no control characters, no spaces at the ends). */
  badName: 'bad_name',
  /** Someone else is using the server (one user at a time in this stage). */
  busy: 'busy',
  /** MAX_CONNECTIONS connections are open already (sent as soon as the connection is accepted). */
  serverFull: 'server_full',
  /** The user stopped reading: every echo was dropped for SLOW_CONSUMER_MS. */
  slowConsumer: 'slow_consumer',
  /** AUDIO or BYE before a successful HELLO. */
  notJoined: 'not_joined',
  /** A second HELLO on the same connection. */
  alreadyJoined: 'already_joined',
  /** An AUDIO payload shorter than 1920 bytes. */
  badAudioSize: 'bad_audio_size',
  /** No valid HELLO within HANDSHAKE_TIMEOUT_MS. */
  handshakeTimeout: 'handshake_timeout',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export function helloFrame(name: string): Buffer {
  return encodeJsonFrame(MessageType.hello, { name, protocol: PROTOCOL });
}

export function welcomeFrame(name: string): Buffer {
  return encodeJsonFrame(MessageType.welcome, { name, sample_rate: SAMPLE_RATE, frame_samples: FRAME_SAMPLES, protocol: PROTOCOL });
}

export function audioFrame(pcm: Buffer): Buffer {
  return encodeFrame(MessageType.audio, pcm);
}

export function byeFrame(): Buffer {
  return encodeFrame(MessageType.bye, Buffer.alloc(0));
}

export function errorFrame(code: ErrorCode, message: string): Buffer {
  return encodeJsonFrame(MessageType.error, { code, message });
}

/** The name in a HELLO payload; throws ProtocolError bad_utf8, bad_json, wrong_protocol or bad_field. */
export function parseHello(payload: Buffer): string {
  const object = decodeJsonObject(payload);
  requireOurProtocol(object, (theirs) => `this server speaks ${PROTOCOL} (stage 02, echo); your client speaks ${theirs}`);
  return requireString(object, 'name');
}

/** The name the server confirmed in WELCOME. */
export function parseWelcome(payload: Buffer): { name: string } {
  const object = decodeJsonObject(payload);
  requireOurProtocol(object, (theirs) => `this server speaks another stage's protocol (${theirs}); this client speaks ${PROTOCOL}`);
  return { name: requireString(object, 'name') };
}

/**
 * Accepts a HELLO or WELCOME without "protocol" (the field is optional in this stage) or with
 * PROTOCOL; another value means a program of another stage: throws ProtocolError wrong_protocol
 * with `mismatch(their protocol)` as the one-line reason.
 */
function requireOurProtocol(object: JsonObject, mismatch: (theirs: string) => string): void {
  if (!Object.hasOwn(object, 'protocol') || object.protocol === PROTOCOL) return;
  const theirs = typeof object.protocol === 'string' ? JSON.stringify(object.protocol.slice(0, 64)) : 'a "protocol" that is not a string';
  throw new ProtocolError(ErrorCode.wrongProtocol, mismatch(theirs));
}

/** Code and message of an ERROR payload. */
export function parseError(payload: Buffer): { code: string; message: string } {
  const object = decodeJsonObject(payload);
  return { code: requireString(object, 'code'), message: requireString(object, 'message') };
}
