// Stage 04's protocol: stage 03's frames, plus rooms (see README.md). Everything a user hears
// and sees (audio, USERS, JOINED, LEFT, SPEAKING) is about their own room only.
//
//   every message:  type u8 | length u32 big-endian | payload (length bytes)
//
//   0x01 HELLO    client -> server   {"name": string, "room": string, "protocol"?: "voice-chat/04"}
//   0x02 WELCOME  server -> client   {"name": string, "room": string, "sample_rate": 48000, "frame_samples": 960,
//                                    "protocol"?: "voice-chat/04"}
//   0x03 AUDIO    both ways          1920 bytes: 960 samples, s16le mono 48 kHz (20 ms)
//                                    client -> server: your voice (only while you speak)
//                                    server -> client: the mix of everyone else, once per 20 ms tick
//   0x04 BYE      client -> server   empty
//   0x05 ERROR    server -> client   {"code": string, "message": string}, then the server closes
//   0x06 USERS    server -> client   {"room": string, "users": [string]}  your room's members, you included,
//                                    after WELCOME and after each move
//   0x07 JOINED   server -> client   {"name": string}      someone joined your room
//   0x08 LEFT     server -> client   {"name": string, "reason": "bye" | "lost" | "error" | "moved"}
//   0x09 SPEAKING server -> client   {"speakers": [string]}  who is speaking in your room, sent when it changes
//   0x0A JOIN     client -> server   {"room": string}      move to another room (created if it does not exist)
//   0x0B JOIN_REFUSED server -> client {"room": string, "code": string, "message": string}  the move was
//                                    refused; you stay where you were (this one does NOT close the connection)
//   0x0C LIST_ROOMS client -> server empty
//   0x0D ROOMS    server -> client   {"rooms": [{"room": string, "users": number}]}  every room, by id
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
  join: 0x0a,
  joinRefused: 0x0b,
  listRooms: 0x0c,
  rooms: 0x0d,
} as const;

/**
 * The protocol this stage speaks, named in HELLO and WELCOME so that programs of different stages
 * (all on port 8888 by default) notice each other. The field is optional: a peer without it is
 * accepted; a peer naming another protocol is not.
 */
export const PROTOCOL = 'voice-chat/04';

/**
 * Room identifiers are opaque strings chosen by the clients (later: game session ids such as
 * "match-7f3a9c" or "eu:lobby:2"): 1 to 64 ASCII letters, digits, "-", "_", "." or ":".
 * Nothing else, so an id is safe to print, log and put in a file name.
 */
export const ROOM_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
export const ROOM_ID_MAX_CHARS = 64;

/** Returns why `room` is not a valid room identifier, or null when it is. */
export function roomProblem(room: string): string | null {
  if (room.length === 0) return 'the room id is empty';
  if (room.length > ROOM_ID_MAX_CHARS) return `the room id is ${room.length} characters long; at most ${ROOM_ID_MAX_CHARS} are allowed`;
  if (!ROOM_ID_PATTERN.test(room)) return 'a room id may contain only ASCII letters, digits, "-", "_", "." and ":"';
  return null;
}

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

/**
 * Moving costs everyone in two rooms a message (LEFT to the old room, JOINED to the new one), so
 * moves are rate-limited per user with a token bucket: MOVE_BURST moves at once, then one more
 * every MOVE_REFILL_MS. Numbers a real user never meets; a JOIN of the room you are in moves
 * nobody and takes no token. A move that finds no token gets JOIN_REFUSED rate_limited.
 */
export const MOVE_BURST = 10;
export const MOVE_REFILL_MS = 1_000;
/**
 * The MAX_MOVES_REFUSED-th JOIN in a row (no move in between) that finds no token gets ERROR
 * rate_limited instead of JOIN_REFUSED, and the connection is closed: a client that ignores
 * refusals is flooding.
 */
export const MAX_MOVES_REFUSED = 20;

/** Payload limits of the frames a CLIENT may send; undefined = not a client message (unknown_type). */
export function clientMessageLimit(type: number): number | undefined {
  switch (type) {
    case MessageType.hello:
      return MAX_HELLO_BYTES;
    case MessageType.audio:
      return FRAME_BYTES;
    case MessageType.bye:
    case MessageType.listRooms:
      return 0;
    case MessageType.join:
      return MAX_HELLO_BYTES;
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
    case MessageType.joinRefused:
    case MessageType.rooms:
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
  /** A HELLO has no "name" or "room", or a JOIN no "room", or one is not a string. */
  badField: FRAMING_ERROR_CODES.BAD_FIELD,
  /** A HELLO whose "protocol" is present and not PROTOCOL: a client of another stage. */
  wrongProtocol: 'wrong_protocol',
  /** The name breaks the name rule (1-32 characters, no control characters, no spaces at the ends). */
  badName: 'bad_name',
  /** The room id breaks the room id rule (in HELLO: ERROR and close; in JOIN: JOIN_REFUSED). */
  badRoom: 'bad_room',
  /** Another user in that room already has this name (names are unique within a room). */
  nameTaken: 'name_taken',
  /** MAX_USERS users are here already (answer to HELLO), or MAX_CONNECTIONS connections are open (sent on accepting). */
  serverFull: 'server_full',
  /** The client stopped reading: its send buffer passed MAX_QUEUED_BYTES, or its mixes were skipped for SLOW_CONSUMER_MS. */
  slowConsumer: 'slow_consumer',
  /** AUDIO, BYE, JOIN or LIST_ROOMS before a successful HELLO. */
  notJoined: 'not_joined',
  /** A second HELLO on the same connection. */
  alreadyJoined: 'already_joined',
  /** An AUDIO payload shorter than 1920 bytes. */
  badAudioSize: 'bad_audio_size',
  /** No valid HELLO within HANDSHAKE_TIMEOUT_MS. */
  handshakeTimeout: 'handshake_timeout',
  /** A move with no token left (JOIN_REFUSED); the MAX_MOVES_REFUSED-th in a row is an ERROR and closes. */
  rateLimited: 'rate_limited',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Why a user left, as told to the others in LEFT. */
export type LeaveReason = 'bye' | 'lost' | 'error' | 'moved';

export function helloFrame(name: string, room: string): Buffer {
  return encodeJsonFrame(MessageType.hello, { name, room, protocol: PROTOCOL });
}

export function welcomeFrame(name: string, room: string): Buffer {
  return encodeJsonFrame(MessageType.welcome, { name, room, sample_rate: SAMPLE_RATE, frame_samples: FRAME_SAMPLES, protocol: PROTOCOL });
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

export function usersFrame(room: string, users: string[]): Buffer {
  return encodeJsonFrame(MessageType.users, { room, users });
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

export function joinFrame(room: string): Buffer {
  return encodeJsonFrame(MessageType.join, { room });
}

export function joinRefusedFrame(room: string, code: ErrorCode, message: string): Buffer {
  return encodeJsonFrame(MessageType.joinRefused, { room, code, message });
}

export function listRoomsFrame(): Buffer {
  return encodeFrame(MessageType.listRooms, Buffer.alloc(0));
}

export interface RoomCount {
  room: string;
  users: number;
}

export function roomsFrame(rooms: RoomCount[]): Buffer {
  return encodeJsonFrame(MessageType.rooms, { rooms });
}

/** The name and room in a HELLO payload; throws ProtocolError bad_utf8, bad_json, wrong_protocol or bad_field. */
export function parseHello(payload: Buffer): { name: string; room: string } {
  const object = decodeJsonObject(payload);
  requireOurProtocol(object, (theirs) => `this server speaks ${PROTOCOL} (stage 04, rooms); your client speaks ${theirs}`);
  return { name: requireString(object, 'name'), room: requireString(object, 'room') };
}

/** The room in a JOIN payload. */
export function parseJoin(payload: Buffer): string {
  return requireString(decodeJsonObject(payload), 'room');
}

/** The name and room the server confirmed in WELCOME. */
export function parseWelcome(payload: Buffer): { name: string; room: string } {
  const object = decodeJsonObject(payload);
  requireOurProtocol(object, (theirs) => `this server speaks another stage's protocol (${theirs}); this client speaks ${PROTOCOL}`);
  return { name: requireString(object, 'name'), room: requireString(object, 'room') };
}

/** The room whose members a USERS message lists. */
export function parseUsersRoom(payload: Buffer): string {
  return requireString(decodeJsonObject(payload), 'room');
}

/** A refused move: the room asked for, and why. */
export function parseJoinRefused(payload: Buffer): { room: string; code: string; message: string } {
  const object = decodeJsonObject(payload);
  return { room: requireString(object, 'room'), code: requireString(object, 'code'), message: requireString(object, 'message') };
}

/** The room list of a ROOMS message. */
export function parseRooms(payload: Buffer): RoomCount[] {
  const rooms = decodeJsonObject(payload).rooms;
  if (!Array.isArray(rooms)) throw new ProtocolError(FRAMING_ERROR_CODES.BAD_FIELD, '"rooms" must be an array');
  return rooms.map((entry: unknown) => {
    const room = (entry as Partial<RoomCount> | null)?.room;
    const users = (entry as Partial<RoomCount> | null)?.users;
    if (typeof room !== 'string' || !Number.isInteger(users)) {
      throw new ProtocolError(FRAMING_ERROR_CODES.BAD_FIELD, 'each room must be {"room": string, "users": integer}');
    }
    return { room, users: users as number };
  });
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
