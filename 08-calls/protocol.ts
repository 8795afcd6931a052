// Stage 08's protocol over TCP: stage 07's frames (Opus voice over UDP or TCP, text chat and
// files, see README.md), plus the directory and calls (0x18-0x22). This file keeps the frames every
// stage has; stage 07's messages are in chat-messages.ts, stage 08's in call-messages.ts. The
// datagrams (datagrams.ts) gain CALL_PROBE and CALL_VOICE, which go between two clients only.
//
//   every message:  type u8 | length u32 big-endian | payload (length bytes)
//
//   0x01 HELLO    client -> server   {"name": string, "room": string, "protocol": "voice-chat/08"}
//   0x02 WELCOME  server -> client   {"name": string, "room": string, "id": number, "protocol": "voice-chat/08",
//                                     "codec": "opus", "sample_rate": 48000, "frame_ms": 20, "channels": 1,
//                                     "token": 16 lowercase hex digits, "udp_port": number}
//   0x03 VOICE    client -> server   sequence u16 BE | one Opus packet (1-1275 bytes, 20 ms, 48 kHz mono)
//                 server -> client   speaker u16 BE | sequence u16 BE | the same packet, byte for byte
//   0x04 BYE      client -> server   empty
//   0x05 ERROR    server -> client   {"code": string, "message": string}, then the server closes
//   0x06 USERS    server -> client   {"room": string, "users": [{"id": number, "name": string, "in_call": boolean}]}
//                                    your room's members, you included, after WELCOME and after each move
//   0x07 JOINED   server -> client   {"id": number, "name": string}      someone joined your room
//   0x08 LEFT     server -> client   {"id": number, "name": string, "reason": "bye" | "lost" | "error" | "moved"}
//   0x09 SPEAKING server -> client   {"speakers": [{"id": number, "name": string}]}  sent when the set changes
//   0x0A JOIN     client -> server   {"room": string}      move to another room (created if it does not exist)
//   0x0B JOIN_REFUSED server -> client {"room": string, "code": string, "message": string}  the move was
//                                    refused; you stay where you were (this one does NOT close the connection)
//   0x0C LIST_ROOMS client -> server empty
//   0x0D ROOMS    server -> client   {"rooms": [{"room": string, "users": number}]}  every room, by id
//   0x0E PATH     client -> server   {"path": "udp" | "tcp"}   how this client wants to RECEIVE voice
//                                    (default tcp; udp takes effect once its UDP address is bound)
//   0x0F-0x17 TEXT, REFUSED, OFFER, OFFERED, CHUNK, ACK, CREDIT, CANCEL, TRANSFER_END: see chat-messages.ts
//   0x18-0x22 ADDRESS, LOOKUP, FOUND, INVITE, RINGING, ACCEPT, DECLINE, HANGUP, CALL_START, CALL_END,
//             PRESENCE: see call-messages.ts
//
// Control payloads are one UTF-8 JSON object (unknown fields are ignored); VOICE is binary.
// The server never looks inside an Opus packet: it needs no codec at all.
import { randomBytes } from 'node:crypto';
import { CHANNELS, FRAME_MS, SAMPLE_RATE } from '#shared/audio/format.ts';
import { FRAME_HEADER_BYTES, encodeFrame, writeFrameHeader } from '#shared/framing/frame-encoder.ts';
import { decodeJsonObject, encodeJsonFrame, type JsonObject, requireString } from '#shared/framing/json-payload.ts';
import { FRAMING_ERROR_CODES, ProtocolError } from '#shared/protocol-error.ts';
import {
  ACK_PAYLOAD_BYTES,
  CREDIT_PAYLOAD_BYTES,
  MAX_CHUNK_PAYLOAD_BYTES,
  MAX_OFFER_PAYLOAD_BYTES,
  MAX_TEXT_PAYLOAD_BYTES,
  MIN_CHUNK_PAYLOAD_BYTES,
} from './chat-limits.ts';
import { MAX_CALL_ANSWER_BYTES, MAX_CALL_REQUEST_BYTES } from './call-limits.ts';

/** The protocol this stage speaks, named in HELLO and WELCOME so stages that share port 8888 notice each other. */
export const PROTOCOL = 'voice-chat/08';
/** The codec fields of WELCOME: what every VOICE packet holds. */
export const CODEC = 'opus';

export const MessageType = {
  hello: 0x01,
  welcome: 0x02,
  voice: 0x03,
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
  path: 0x0e,
  text: 0x0f,
  refused: 0x10,
  offer: 0x11,
  offered: 0x12,
  chunk: 0x13,
  ack: 0x14,
  credit: 0x15,
  cancel: 0x16,
  transferEnd: 0x17,
  // Stage 08: the directory and calls (call-messages.ts).
  address: 0x18,
  lookup: 0x19,
  found: 0x1a,
  /** Both ways: a client's INVITE calls someone; the server's INVITE rings the callee. */
  invite: 0x1b,
  ringing: 0x1c,
  accept: 0x1d,
  decline: 0x1e,
  hangup: 0x1f,
  callStart: 0x20,
  callEnd: 0x21,
  presence: 0x22,
} as const;

/** The two ways voice can travel: datagrams, or VOICE frames on the TCP connection (as in stage 05). */
export type VoicePath = 'udp' | 'tcp';

/**
 * The session token: 8 random bytes (64 bits), written in WELCOME as 16 lowercase hex digits and
 * carried in every datagram a client sends. It is the secret that says who sent a datagram.
 */
export const TOKEN_BYTES = 8;
export const TOKEN_PATTERN = /^[0-9a-f]{16}$/;

/** A fresh token for a new session: crypto-random, never derived from the id, name or time. */
export function newToken(): Buffer {
  return randomBytes(TOKEN_BYTES);
}

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

/** Session ids are u16 from 1 to 65535, handed out in WELCOME and kept across moves; 0 is never an id. */
export const MIN_SESSION_ID = 1;
export const MAX_SESSION_ID = 0xffff;

/** The largest Opus packet of one frame (RFC 6716, 3.4 R2); the smallest is 1 byte (a TOC byte). */
export const MAX_OPUS_PACKET_BYTES = 1275;
/** Bytes of the sequence number, and of the speaker id, at the start of a VOICE payload. */
export const SEQUENCE_BYTES = 2;
export const SPEAKER_BYTES = 2;
/** VOICE payload from a client: sequence + 1..1275 packet bytes = 3..1277. */
export const MIN_CLIENT_VOICE_BYTES = SEQUENCE_BYTES + 1;
export const MAX_CLIENT_VOICE_BYTES = SEQUENCE_BYTES + MAX_OPUS_PACKET_BYTES;
/** VOICE payload from the server: speaker + sequence + 1..1275 packet bytes = 5..1279. */
export const MIN_SERVER_VOICE_BYTES = SPEAKER_BYTES + SEQUENCE_BYTES + 1;
export const MAX_SERVER_VOICE_BYTES = SPEAKER_BYTES + SEQUENCE_BYTES + MAX_OPUS_PACKET_BYTES;

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

/**
 * VOICE rate limit (a forwarding server multiplies every byte by the room's size): a token bucket
 * per user, one token per 20 ms (50 per second), bursts of 10. A VOICE that finds no token is
 * dropped, not forwarded, and counted; it does not count as speaking.
 */
export const VOICE_PER_SECOND = 1000 / FRAME_MS;
export const VOICE_BURST = 10;
/** More than this many VOICE dropped by the rate limit within one VOICE_FLOOD_WINDOW_MS: ERROR rate_limited, closed. */
export const VOICE_FLOOD_DROPS = 250;
export const VOICE_FLOOD_WINDOW_MS = 5_000;

/** A user counts as speaking while one of their VOICE was forwarded in the last 200 ms. */
export const SPEAKING_HOLD_MS = 200;
/**
 * VOICE waits in the server's send queue for a listener that reads slowly. Past 8 KiB (~90
 * messages) VOICE is skipped for that listener: late voice is useless, and the client conceals the gap.
 */
export const MAX_QUEUED_VOICE_BYTES = 8 * 1024;
/** A listener whose send queue still grows past this when a control message comes (it has stopped reading) is disconnected. */
export const MAX_QUEUED_BYTES = 256 * 1024;
/** A listener for whom every VOICE has been skipped for this long has stopped reading: ERROR slow_consumer. */
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
    case MessageType.voice:
      return MAX_CLIENT_VOICE_BYTES;
    case MessageType.bye:
    case MessageType.listRooms:
      return 0;
    case MessageType.join:
    case MessageType.path:
    case MessageType.cancel:
      return MAX_HELLO_BYTES;
    case MessageType.text:
      return MAX_TEXT_PAYLOAD_BYTES;
    case MessageType.offer:
      return MAX_OFFER_PAYLOAD_BYTES;
    case MessageType.chunk:
      return MAX_CHUNK_PAYLOAD_BYTES;
    case MessageType.ack:
      return ACK_PAYLOAD_BYTES;
    case MessageType.lookup:
    case MessageType.invite:
      return MAX_CALL_REQUEST_BYTES;
    case MessageType.accept:
    case MessageType.decline:
    case MessageType.hangup:
      return MAX_CALL_ANSWER_BYTES;
    default:
      return undefined; // ADDRESS, FOUND, RINGING, CALL_START, CALL_END, PRESENCE among them: server-only
  }
}

/**
 * Smallest payload of a client frame: only VOICE has one (3 bytes: a sequence and a packet of at
 * least one byte). A shorter declared length gets ERROR bad_voice_size on the header.
 */
export function clientMessageMinimum(type: number): number {
  if (type === MessageType.voice) return MIN_CLIENT_VOICE_BYTES;
  if (type === MessageType.chunk) return MIN_CHUNK_PAYLOAD_BYTES;
  if (type === MessageType.ack) return ACK_PAYLOAD_BYTES;
  return 0;
}

/** The code of ERROR for a client frame shorter than clientMessageMinimum (on the header). */
export function tooShortCode(type: number): ErrorCode {
  if (type === MessageType.chunk) return ErrorCode.badChunk;
  if (type === MessageType.ack) return ErrorCode.badAck;
  return ErrorCode.badVoiceSize;
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
    case MessageType.text:
    case MessageType.refused:
    case MessageType.offer:
    case MessageType.offered:
    case MessageType.transferEnd:
    case MessageType.address:
    case MessageType.found:
    case MessageType.invite:
    case MessageType.ringing:
    case MessageType.callStart:
    case MessageType.callEnd:
    case MessageType.presence:
      return MAX_SERVER_CONTROL_BYTES;
    case MessageType.voice:
      return MAX_SERVER_VOICE_BYTES;
    case MessageType.chunk:
      return MAX_CHUNK_PAYLOAD_BYTES;
    case MessageType.credit:
      return CREDIT_PAYLOAD_BYTES;
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
  /** A HELLO whose "protocol" is missing or not PROTOCOL (a client of another stage). */
  wrongProtocol: 'wrong_protocol',
  /** The name breaks the name rule (1-32 characters, no control characters, no spaces at the ends). */
  badName: 'bad_name',
  /** The room id breaks the room id rule (in HELLO: ERROR and close; in JOIN: JOIN_REFUSED). */
  badRoom: 'bad_room',
  /** Another user on the server already has this name (stage 08: names are unique on the whole server). */
  nameTaken: 'name_taken',
  /** MAX_USERS users are here already (answer to HELLO), or MAX_CONNECTIONS connections are open (sent on accepting). */
  serverFull: 'server_full',
  /** The client stopped reading: a control message found MAX_QUEUED_BYTES waiting, or every VOICE was skipped for SLOW_CONSUMER_MS. */
  slowConsumer: 'slow_consumer',
  /** VOICE, BYE, JOIN, LIST_ROOMS or PATH before a successful HELLO. */
  notJoined: 'not_joined',
  /** A second HELLO on the same connection. */
  alreadyJoined: 'already_joined',
  /** A VOICE payload of fewer than 3 bytes (no Opus packet), refused on the header. */
  badVoiceSize: 'bad_voice_size',
  /** Too many VOICE over the rate limit (ERROR, closed), or a move without a token (JOIN_REFUSED). */
  rateLimited: 'rate_limited',
  /** No valid HELLO within HANDSHAKE_TIMEOUT_MS. */
  handshakeTimeout: 'handshake_timeout',
  /** A PATH whose payload is not {"path": "udp"} or {"path": "tcp"} (bad JSON too). */
  badPath: 'bad_path',
  // Stage 07. REFUSED (connection stays): bad_text ... no_receivers, rate_limited. ERROR: bad_chunk, bad_ack.
  /** REFUSED: the text breaks the text rule (1-1000 code points, not blank, no forbidden characters). */
  badText: 'bad_text',
  /** REFUSED: "to" is not the id of another member of your room. */
  noSuchMember: 'no_such_member',
  /** REFUSED: the offered file name breaks the file name rule. */
  badFileName: 'bad_file_name',
  /** REFUSED: the offered size is over MAX_FILE_BYTES. */
  fileTooLarge: 'file_too_large',
  /** REFUSED: you already send MAX_TRANSFERS_PER_SENDER transfers. */
  tooManyTransfers: 'too_many_transfers',
  /** REFUSED: MAX_TRANSFERS_PER_SERVER transfers are running. */
  serverBusy: 'server_busy',
  /** REFUSED (an OFFER to an empty room) and TRANSFER_END result (every receiver is gone). */
  noReceivers: 'no_receivers',
  /** ERROR: a CHUNK under 7 bytes, out of order, past the size or credit, or not for your transfer. */
  badChunk: 'bad_chunk',
  /** ERROR: an ACK of the wrong size, or whose "received" decreases or passes what was sent to you. */
  badAck: 'bad_ack',
  // Stage 08. REFUSED of an INVITE (connection stays); rate_limited also for INVITE and LOOKUP.
  /** REFUSED: the user you call is ringing or in a call (they are not told). */
  busy: 'busy',
  /** REFUSED: nobody by that name is online. */
  noSuchUser: 'no_such_user',
  /** REFUSED: "to" is your own name. */
  callingYourself: 'calling_yourself',
  /** REFUSED: you are ringing or in a call already (one call at a time). */
  alreadyInCall: 'already_in_call',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Why a user left, as told to the others in LEFT. */
export type LeaveReason = 'bye' | 'lost' | 'error' | 'moved';

/** A user as USERS, JOINED, LEFT and SPEAKING name them: the id VOICE uses, the name people see. */
export interface UserRef {
  id: number;
  name: string;
}

/** A member as USERS lists them (stage 08): whether they are in a call now. */
export interface RoomMember extends UserRef {
  inCall: boolean;
}

/**
 * What WELCOME confirms: who you are, where, the voice format of every VOICE, the token your
 * datagrams carry (8 bytes) and the server's UDP port.
 */
export interface Welcome {
  name: string;
  room: string;
  id: number;
  token: Buffer;
  udpPort: number;
}

// ---------------------------------------------------------------- sequence numbers

/** Sequence numbers count VOICE messages sent, modulo 2^16. */
export const SEQUENCE_MODULUS = 0x1_0000;

/** The sequence number after `sequence` (65535 wraps to 0). */
export function nextSequence(sequence: number): number {
  return (sequence + 1) & 0xffff;
}

/** How far `later` is after `earlier`, modulo 2^16: 0..65535. */
export function sequenceDistance(earlier: number, later: number): number {
  return (later - earlier) & 0xffff;
}

/** Serial-number arithmetic (as RTP): `b` is after `a` when (b - a) mod 2^16 is 1..32767. */
export function isSequenceAfter(b: number, a: number): boolean {
  const distance = sequenceDistance(a, b);
  return distance >= 1 && distance < SEQUENCE_MODULUS / 2;
}

// ---------------------------------------------------------------- building frames

export function helloFrame(name: string, room: string): Buffer {
  return encodeJsonFrame(MessageType.hello, { name, room, protocol: PROTOCOL });
}

export function welcomeFrame({ name, room, id, token, udpPort }: Welcome): Buffer {
  return encodeJsonFrame(MessageType.welcome, {
    name,
    room,
    id,
    protocol: PROTOCOL,
    codec: CODEC,
    sample_rate: SAMPLE_RATE,
    frame_ms: FRAME_MS,
    channels: CHANNELS,
    token: token.toString('hex'),
    udp_port: udpPort,
  });
}

/** Client -> server PATH: where this client wants voice sent to it. */
export function pathFrame(path: VoicePath): Buffer {
  return encodeJsonFrame(MessageType.path, { path });
}

/** Client -> server VOICE: sequence u16 BE, then the Opus packet; one allocation. */
export function clientVoiceFrame(sequence: number, packet: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + SEQUENCE_BYTES + packet.length);
  writeFrameHeader(frame, 0, MessageType.voice, SEQUENCE_BYTES + packet.length);
  frame.writeUInt16BE(sequence, FRAME_HEADER_BYTES);
  packet.copy(frame, FRAME_HEADER_BYTES + SEQUENCE_BYTES);
  return frame;
}

/** Server -> listener VOICE: speaker u16 BE, sequence u16 BE, then the Opus packet; one allocation. */
export function serverVoiceFrame(speaker: number, sequence: number, packet: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + SPEAKER_BYTES + SEQUENCE_BYTES + packet.length);
  writeFrameHeader(frame, 0, MessageType.voice, SPEAKER_BYTES + SEQUENCE_BYTES + packet.length);
  frame.writeUInt16BE(speaker, FRAME_HEADER_BYTES);
  frame.writeUInt16BE(sequence, FRAME_HEADER_BYTES + SPEAKER_BYTES);
  packet.copy(frame, FRAME_HEADER_BYTES + SPEAKER_BYTES + SEQUENCE_BYTES);
  return frame;
}

/**
 * What a forwarding server sends for a client's VOICE payload (sequence + packet, unchanged):
 * the speaker's id put in front, built once and written to every listener.
 */
export function forwardedVoiceFrame(speaker: number, clientVoicePayload: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + SPEAKER_BYTES + clientVoicePayload.length);
  writeFrameHeader(frame, 0, MessageType.voice, SPEAKER_BYTES + clientVoicePayload.length);
  frame.writeUInt16BE(speaker, FRAME_HEADER_BYTES);
  clientVoicePayload.copy(frame, FRAME_HEADER_BYTES + SPEAKER_BYTES);
  return frame;
}

export function byeFrame(): Buffer {
  return encodeFrame(MessageType.bye, Buffer.alloc(0));
}

export function errorFrame(code: ErrorCode, message: string): Buffer {
  return encodeJsonFrame(MessageType.error, { code, message });
}

export function usersFrame(room: string, users: readonly RoomMember[]): Buffer {
  return encodeJsonFrame(MessageType.users, { room, users: users.map((user) => ({ id: user.id, name: user.name, in_call: user.inCall })) });
}

export function joinedFrame(user: UserRef): Buffer {
  return encodeJsonFrame(MessageType.joined, userJson(user));
}

export function leftFrame(user: UserRef, reason: LeaveReason): Buffer {
  return encodeJsonFrame(MessageType.left, { ...userJson(user), reason });
}

export function speakingFrame(speakers: readonly UserRef[]): Buffer {
  return encodeJsonFrame(MessageType.speaking, { speakers: speakers.map(userJson) });
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

// Exactly {"id","name"} in this order, whatever else the caller's object holds.
function userJson(user: UserRef): JsonObject {
  return { id: user.id, name: user.name };
}

// ---------------------------------------------------------------- reading frames

/**
 * The name and room in a HELLO payload. The protocol is checked first (before the name and room),
 * so a client of another stage is told so: throws ProtocolError wrong_protocol, or bad_utf8,
 * bad_json, bad_field.
 */
export function parseHello(payload: Buffer): { name: string; room: string } {
  const object = decodeJsonObject(payload);
  const protocol = Object.hasOwn(object, 'protocol') ? object.protocol : undefined;
  if (protocol !== PROTOCOL) {
    const theirs =
      protocol === undefined
        ? 'voice-chat/04 or earlier (its HELLO has no "protocol")'
        : typeof protocol === 'string'
          ? JSON.stringify(protocol.slice(0, 64))
          : `a "protocol" that is not a string`;
    throw new ProtocolError(ErrorCode.wrongProtocol, `this server speaks ${PROTOCOL} (stage 08, calls); your client speaks ${theirs}`);
  }
  return { name: requireString(object, 'name'), room: requireString(object, 'room') };
}

/** The room in a JOIN payload. */
export function parseJoin(payload: Buffer): string {
  return requireString(decodeJsonObject(payload), 'room');
}

/** The path in a PATH payload. Anything but {"path": "udp" | "tcp"} (bad UTF-8 or JSON too) throws bad_path. */
export function parsePath(payload: Buffer): VoicePath {
  let object: JsonObject;
  try {
    object = decodeJsonObject(payload);
  } catch (error) {
    throw new ProtocolError(ErrorCode.badPath, `PATH must be {"path": "udp"} or {"path": "tcp"}: ${(error as Error).message}`);
  }
  const path = Object.hasOwn(object, 'path') ? object.path : undefined;
  if (path !== 'udp' && path !== 'tcp') {
    throw new ProtocolError(ErrorCode.badPath, `PATH must be {"path": "udp"} or {"path": "tcp"}; got "path": ${JSON.stringify(path)?.slice(0, 64) ?? 'nothing'}`);
  }
  return path;
}

/**
 * What the server confirmed in WELCOME. A WELCOME without "protocol": PROTOCOL comes from a
 * server of another stage (stages 02-04 ignore the field in HELLO and welcome anyone): throws
 * ProtocolError wrong_protocol, whose message is the one line a client shows. A WELCOME of this
 * protocol with another codec or format, or without a valid id, throws bad_field.
 */
export function parseWelcome(payload: Buffer): Welcome {
  const object = decodeJsonObject(payload);
  const protocol = Object.hasOwn(object, 'protocol') ? object.protocol : undefined;
  if (protocol !== PROTOCOL) {
    const theirs = typeof protocol === 'string' ? JSON.stringify(protocol.slice(0, 64)) : 'voice-chat/04 or earlier';
    throw new ProtocolError(ErrorCode.wrongProtocol, `this server speaks another stage's protocol (${theirs}); this client needs ${PROTOCOL}`);
  }
  const format: [string, unknown][] = [
    ['codec', CODEC],
    ['sample_rate', SAMPLE_RATE],
    ['frame_ms', FRAME_MS],
    ['channels', CHANNELS],
  ];
  for (const [field, expected] of format) {
    if (object[field] !== expected) {
      throw new ProtocolError(ErrorCode.badField, `WELCOME field "${field}" must be ${JSON.stringify(expected)}, got ${JSON.stringify(object[field]) ?? 'nothing'}`);
    }
  }
  const token = Object.hasOwn(object, 'token') ? object.token : undefined;
  if (typeof token !== 'string' || !TOKEN_PATTERN.test(token)) {
    throw new ProtocolError(ErrorCode.badField, `WELCOME field "token" must be 16 lowercase hex digits, got ${JSON.stringify(token)?.slice(0, 64) ?? 'nothing'}`);
  }
  const udpPort = Object.hasOwn(object, 'udp_port') ? object.udp_port : undefined;
  if (!Number.isInteger(udpPort) || (udpPort as number) < 1 || (udpPort as number) > 0xffff) {
    throw new ProtocolError(ErrorCode.badField, `WELCOME field "udp_port" must be a port number 1-65535, got ${JSON.stringify(udpPort) ?? 'nothing'}`);
  }
  return {
    name: requireString(object, 'name'),
    room: requireString(object, 'room'),
    id: requireSessionId(object, 'id'),
    token: Buffer.from(token, 'hex'),
    udpPort: udpPort as number,
  };
}

/** The room and members of a USERS message; each member's "in_call" must be a boolean. */
export function parseUsers(payload: Buffer): { room: string; users: RoomMember[] } {
  const object = decodeJsonObject(payload);
  const list = Object.hasOwn(object, 'users') ? object.users : undefined;
  const users = requireUserList(object, 'users').map((user, i) => {
    const entry = (list as unknown[])[i] as JsonObject;
    const inCall = Object.hasOwn(entry, 'in_call') ? entry.in_call : undefined;
    if (typeof inCall !== 'boolean') {
      throw new ProtocolError(FRAMING_ERROR_CODES.BAD_FIELD, `each of "users" must have "in_call": a boolean; got ${JSON.stringify(inCall) ?? 'nothing'}`);
    }
    return { ...user, inCall };
  });
  return { room: requireString(object, 'room'), users };
}

/** The users of a SPEAKING message, in the server's order. */
export function parseSpeakers(payload: Buffer): UserRef[] {
  return requireUserList(decodeJsonObject(payload), 'speakers');
}

/** The user named in JOINED or LEFT (and, in LEFT, why they left). */
export function parseUserEvent(payload: Buffer): UserRef & { reason?: string } {
  const object = decodeJsonObject(payload);
  const reason = Object.hasOwn(object, 'reason') ? object.reason : undefined;
  const user = { id: requireSessionId(object, 'id'), name: requireString(object, 'name') };
  return typeof reason === 'string' ? { ...user, reason } : user;
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

/** Code and message of an ERROR payload. */
export function parseError(payload: Buffer): { code: string; message: string } {
  const object = decodeJsonObject(payload);
  return { code: requireString(object, 'code'), message: requireString(object, 'message') };
}

/**
 * A client's VOICE payload (3..1277 bytes, as the frame limits let through): its sequence number
 * and packet. The packet is a view of the payload, not a copy. Throws bad_voice_size when shorter.
 */
export function parseClientVoice(payload: Buffer): { sequence: number; packet: Buffer } {
  if (payload.length < MIN_CLIENT_VOICE_BYTES || payload.length > MAX_CLIENT_VOICE_BYTES) {
    throw new ProtocolError(ErrorCode.badVoiceSize, `VOICE carries ${payload.length} bytes; it must be ${MIN_CLIENT_VOICE_BYTES}-${MAX_CLIENT_VOICE_BYTES} (a sequence number and one Opus packet)`);
  }
  return { sequence: payload.readUInt16BE(0), packet: payload.subarray(SEQUENCE_BYTES) };
}

/**
 * A VOICE payload from the server (5..1279 bytes): who spoke, the sequence number and the packet
 * (a view, not a copy). Throws bad_voice_size when it is shorter or longer.
 */
export function parseServerVoice(payload: Buffer): { speaker: number; sequence: number; packet: Buffer } {
  if (payload.length < MIN_SERVER_VOICE_BYTES || payload.length > MAX_SERVER_VOICE_BYTES) {
    throw new ProtocolError(ErrorCode.badVoiceSize, `VOICE carries ${payload.length} bytes; it must be ${MIN_SERVER_VOICE_BYTES}-${MAX_SERVER_VOICE_BYTES} (speaker, sequence and one Opus packet)`);
  }
  return {
    speaker: payload.readUInt16BE(0),
    sequence: payload.readUInt16BE(SPEAKER_BYTES),
    packet: payload.subarray(SPEAKER_BYTES + SEQUENCE_BYTES),
  };
}

function requireSessionId(object: JsonObject, field: string): number {
  const value = Object.hasOwn(object, field) ? object[field] : undefined;
  if (!Number.isInteger(value) || (value as number) < MIN_SESSION_ID || (value as number) > MAX_SESSION_ID) {
    throw new ProtocolError(FRAMING_ERROR_CODES.BAD_FIELD, `field "${field}" must be a session id, an integer ${MIN_SESSION_ID}-${MAX_SESSION_ID}; got ${JSON.stringify(value) ?? 'nothing'}`);
  }
  return value as number;
}

function requireUserList(object: JsonObject, field: 'users' | 'speakers'): UserRef[] {
  const list = Object.hasOwn(object, field) ? object[field] : undefined;
  if (!Array.isArray(list)) {
    throw new ProtocolError(FRAMING_ERROR_CODES.BAD_FIELD, `"${field}" must be an array of {"id": number, "name": string}`);
  }
  return list.map((entry: unknown) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new ProtocolError(FRAMING_ERROR_CODES.BAD_FIELD, `each of "${field}" must be {"id": number, "name": string}`);
    }
    return { id: requireSessionId(entry as JsonObject, 'id'), name: requireString(entry as JsonObject, 'name') };
  });
}
