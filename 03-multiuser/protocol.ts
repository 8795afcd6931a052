// Stage 03's protocol: stage 02's frames, plus who is here and who is speaking (see README.md).
//
//   every message:  type u8 | length u32 big-endian | payload (length bytes)
//
//   0x01 HELLO    client -> server   {"name": string, "protocol"?: "voice-chat/03"}
//   0x02 WELCOME  server -> client   {"name": string, "sample_rate": 48000, "frame_samples": 960,
//                                    "protocol"?: "voice-chat/03"}
//   0x03 AUDIO    both ways          1920 bytes: 960 samples, s16le mono 48 kHz (20 ms)
//                                    client -> server: your voice (only while you speak)
//                                    server -> client: the mix of everyone else, once per 20 ms tick
//   0x04 BYE      client -> server   empty
//   0x05 ERROR    server -> client   {"code": string, "message": string}, then the server closes
//   0x06 USERS    server -> client   {"users": [string]}   everyone here, you included, right after WELCOME
//   0x07 JOINED   server -> client   {"name": string}      someone else joined
//   0x08 LEFT     server -> client   {"name": string, "reason": "bye" | "lost" | "error"}
//   0x09 SPEAKING server -> client   {"speakers": [string]}  who is speaking now, sent when it changes
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
  users: 0x06,
  joined: 0x07,
  left: 0x08,
  speaking: 0x09,
} as const;

/**
 * The protocol this stage speaks, named in HELLO and WELCOME so that programs of different stages
 * (all on port 8888 by default) notice each other. The field is optional: a peer without it is
 * accepted; a peer naming another protocol is not.
 */
export const PROTOCOL = 'voice-chat/03';

/** Largest HELLO payload: a 32-character name is at most 128 bytes of UTF-8, the rest is room for JSON. */
export const MAX_HELLO_BYTES = 1024;
/** Largest control payload the client accepts: USERS with MAX_USERS names of 32 characters fits. */
export const MAX_SERVER_CONTROL_BYTES = 256 * 1024;
/** Most users on one server at once; one more gets ERROR server_full. */
export const MAX_USERS = 1000;
/**
 * Most connections at once, joined or not: MAX_USERS users and room for some handshakes. One more
 * is told ERROR server_full and closed at once, so a flood of connections cannot exhaust the
 * server's files.
 */
export const MAX_CONNECTIONS = 1024;
/** A connection that has not sent a valid HELLO after this long is told so and dropped. */
export const HANDSHAKE_TIMEOUT_MS = 5_000;
/** The mixer's clock: one tick, one mixed frame per listener. */
export const TICK_MS = 20;
/**
 * Jitter buffer: each talker's frames wait in a queue of at most this many frames (60 ms);
 * each tick takes at most one. When a frame arrives at a full queue the OLDEST is dropped
 * (a talker sending faster than real time cannot add latency); an empty queue on a tick means
 * that talker is not in this tick's mix.
 */
export const JITTER_BUFFER_FRAMES = 3;
/**
 * After a stall a talker's late frames arrive together, and from then on one frame arrives per
 * tick: the queue never empties by itself and the talker stays 40 ms late. When two or more
 * frames have been left waiting after every tick for this many ticks (500 ms), the oldest is
 * dropped. (One frame left waiting is normal: that is the jitter the buffer is there to absorb.)
 */
export const JITTER_TRIM_AFTER_TICKS = 25;
/** A user counts as speaking while one of their frames was mixed in the last 10 ticks (200 ms). */
export const SPEAKING_HOLD_TICKS = 10;
/**
 * Mixed frames wait in the server's send buffer while a client reads slowly. Past about 32
 * frames (~64 KB, 0.64 s of audio) the server skips audio for that listener instead of
 * buffering without bound: late audio is useless anyway.
 */
export const MAX_QUEUED_AUDIO_BYTES = 32 * (5 + FRAME_BYTES);
/** A listener whose send buffer still grows past this (it has stopped reading) is disconnected. */
export const MAX_QUEUED_BYTES = 256 * 1024;
/**
 * A listener for whom every mix has been skipped (their send buffer stayed full) for this long has
 * stopped reading, and is disconnected with slow_consumer, even if no control message comes to
 * notice it: a client that never reads must not stay a user for ever.
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
    case MessageType.users:
    case MessageType.joined:
    case MessageType.left:
    case MessageType.speaking:
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
  /** Another user here already has this name (names are unique). */
  nameTaken: 'name_taken',
  /** MAX_USERS users are here already (answer to HELLO), or MAX_CONNECTIONS connections are open (sent on accepting). */
  serverFull: 'server_full',
  /** The client stopped reading: its send buffer passed MAX_QUEUED_BYTES, or its mixes were skipped for SLOW_CONSUMER_MS. */
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

/** Why a user left, as told to the others in LEFT. */
export type LeaveReason = 'bye' | 'lost' | 'error';

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

export function usersFrame(users: string[]): Buffer {
  return encodeJsonFrame(MessageType.users, { users });
}

export function joinedFrame(name: string): Buffer {
  return encodeJsonFrame(MessageType.joined, { name });
}

export function leftFrame(name: string, reason: LeaveReason): Buffer {
  return encodeJsonFrame(MessageType.left, { name, reason });
}

export function speakingFrame(speakers: string[]): Buffer {
  return encodeJsonFrame(MessageType.speaking, { speakers });
}

/** The name in a HELLO payload; throws ProtocolError bad_utf8, bad_json, wrong_protocol or bad_field. */
export function parseHello(payload: Buffer): string {
  const object = decodeJsonObject(payload);
  requireOurProtocol(object, (theirs) => `this server speaks ${PROTOCOL} (stage 03, mixing); your client speaks ${theirs}`);
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

/** A list of names in USERS or SPEAKING; throws ProtocolError bad_field. */
export function parseNameList(payload: Buffer, field: 'users' | 'speakers'): string[] {
  const list = decodeJsonObject(payload)[field];
  if (!Array.isArray(list) || !list.every((name) => typeof name === 'string')) {
    throw new ProtocolError(FRAMING_ERROR_CODES.BAD_FIELD, `"${field}" must be an array of strings`);
  }
  return list;
}

/** The user named in JOINED or LEFT (and why they left). */
export function parseUserEvent(payload: Buffer): { name: string; reason?: string } {
  const object = decodeJsonObject(payload);
  const reason = object.reason;
  return { name: requireString(object, 'name'), reason: typeof reason === 'string' ? reason : undefined };
}
