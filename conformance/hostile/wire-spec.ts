// What the hostile cases and the fuzzer know about each stage: only what its README states (message
// types, payload limits, error codes, limits), written out here so that nothing from the stage
// folders is imported and the cases grade a server written in any language. (The name rule's
// characters come from shared/user-name.ts, the one place every stage and test takes them from.)
import { FORBIDDEN_IN_NAMES } from '#shared/user-name.ts';

export type StageId = '02' | '03' | '04' | '05' | '06' | '07' | '08';

export const HELLO = 0x01;
export const WELCOME = 0x02;
export const AUDIO = 0x03;
export const BYE = 0x04;
export const ERROR = 0x05;
export const USERS = 0x06;
export const JOINED = 0x07;
export const LEFT = 0x08;
export const SPEAKING = 0x09;
export const JOIN = 0x0a;
export const JOIN_REFUSED = 0x0b;
export const LIST_ROOMS = 0x0c;
export const ROOMS = 0x0d;
export const PATH = 0x0e;
// Stage 07: text and files.
export const TEXT = 0x0f;
export const REFUSED = 0x10;
export const OFFER = 0x11;
export const OFFERED = 0x12;
export const CHUNK = 0x13;
export const ACK = 0x14;
export const CREDIT = 0x15;
export const CANCEL = 0x16;
export const TRANSFER_END = 0x17;
// Stage 08: the directory and calls.
export const ADDRESS = 0x18;
export const LOOKUP = 0x19;
export const FOUND = 0x1a;
export const INVITE = 0x1b;
export const RINGING = 0x1c;
export const ACCEPT = 0x1d;
export const DECLINE = 0x1e;
export const HANGUP = 0x1f;
export const CALL_START = 0x20;
export const CALL_END = 0x21;
export const PRESENCE = 0x22;

export const FRAME_BYTES = 1920;
export const TICK_MS = 20;
export const HANDSHAKE_TIMEOUT_MS = 5_000;
export const MAX_HELLO_BYTES = 1024;

export interface StageWire {
  id: StageId;
  /** Max payload of each type a client may send (a type not listed is unknown_type). */
  clientLimits: ReadonlyMap<number, number>;
  /** Max payload of each type a server may send (what the reference client accepts). */
  serverLimits: ReadonlyMap<number, number>;
  /** Every error code the README lists. */
  errorCodes: ReadonlySet<string>;
  /** The codes a valid HELLO may still get because of other users (busy, name_taken, server_full). */
  crowdCodes: readonly string[];
  /** Users hear a mix on the server's 20 ms clock (03, 04) rather than their own echo (02). */
  mixes: boolean;
  /** The most simultaneous connections (joined or not); one more gets ERROR server_full. */
  maxConnections: number;
  /** The most users at once (03 on; 02 has one, and refuses the next with busy); one more HELLO gets ERROR server_full. */
  maxUsers?: number;
  /** Frames of one talker the server may hold (the jitter buffer); 0 when it does not mix. */
  jitterBufferFrames: number;
  /** A user who reads nothing is disconnected within this long after the server starts skipping their audio. */
  slowConsumerMs: number;
  /**
   * Stage 04 on: the README's limit on moves (JOIN to another room). `burst` moves at once, then
   * JOIN_REFUSED rate_limited; the `refusalsBeforeError`-th refusal in a row is ERROR rate_limited.
   */
  moves?: { burst: number; refillMs: number; refusalsBeforeError: number };
  /** Stage 05 on: type 0x03 is Opus VOICE (sequence + packet), forwarded, not PCM. */
  opusVoice?: true;
  /** Stage 05 on: the "protocol" HELLO must name; another (or none) is ERROR wrong_protocol, checked right after the JSON. */
  protocol?: string;
  /** Stage 06 on: voice also as datagrams (the hostile datagram cases apply). */
  datagrams?: true;
  /** Stage 07 on: TEXT, OFFER, CHUNK, ACK and CANCEL from clients (the model knows their checks). */
  chat?: true;
  /**
   * Stage 08 on: LOOKUP, INVITE, ACCEPT, DECLINE and HANGUP from clients (the model knows their
   * field checks; what follows them is a REFUSED or nothing, the connection stays), and the
   * README's limits on INVITE and LOOKUP.
   */
  calls?: { inviteBurst: number; inviteRefillMs: number; lookupBurst: number; lookupRefillMs: number; refusalsBeforeError: number };
  /** HELLO's JSON object for `name` (stage 04 adds the room, 05 the protocol). */
  hello(name: string, room: string): Record<string, unknown>;
  /**
   * Voice (type 0x03) from the server: the payload sizes it may have. PCM mixes in 02-04 are
   * exactly one frame; stage 05's forwarded VOICE is speaker + sequence + an Opus packet.
   */
  serverVoiceBytes: { min: number; max: number };
  /** The frame a well-behaved talker sends every 20 ms (an AUDIO frame; stage 05: a VOICE). */
  talkerFrame(): Buffer;
  typeNames: Readonly<Record<number, string>>;
}

/** A stage 05 VOICE from a client: sequence u16 BE, then a 3-byte stand-in for an Opus packet (the server never looks inside). */
function clientVoice(sequence: number): Buffer {
  const frame = Buffer.alloc(5 + 5);
  frame[0] = AUDIO;
  frame.writeUInt32BE(5, 1);
  frame.writeUInt16BE(sequence & 0xffff, 5);
  frame.set([0xf8, 0xff, 0xfe], 7);
  return frame;
}

/** One AUDIO frame of 960 samples that all hold 1: a well-behaved talker of stages 02-04. */
function talkerAudio(): Buffer {
  const frame = Buffer.alloc(5 + FRAME_BYTES);
  frame[0] = AUDIO;
  frame.writeUInt32BE(FRAME_BYTES, 1);
  for (let i = 0; i < FRAME_BYTES / 2; i++) frame.writeInt16LE(1, 5 + i * 2);
  return frame;
}
const PCM_FRAME = { min: FRAME_BYTES, max: FRAME_BYTES };

const FRAMING_CODES = ['unknown_type', 'frame_too_large', 'bad_utf8', 'bad_json', 'bad_field'];
const STAGE_CODES = ['bad_name', 'not_joined', 'already_joined', 'bad_audio_size', 'handshake_timeout', 'server_full', 'slow_consumer', 'wrong_protocol'];

const BASE_TYPES: Record<number, string> = { [HELLO]: 'HELLO', [WELCOME]: 'WELCOME', [AUDIO]: 'AUDIO', [BYE]: 'BYE', [ERROR]: 'ERROR' };
const NEWS_TYPES: Record<number, string> = { ...BASE_TYPES, [USERS]: 'USERS', [JOINED]: 'JOINED', [LEFT]: 'LEFT', [SPEAKING]: 'SPEAKING' };

const stage02: StageWire = {
  id: '02',
  serverVoiceBytes: PCM_FRAME,
  talkerFrame: talkerAudio,
  clientLimits: new Map([[HELLO, MAX_HELLO_BYTES], [AUDIO, FRAME_BYTES], [BYE, 0]]),
  serverLimits: new Map([[WELCOME, 4096], [AUDIO, FRAME_BYTES], [ERROR, 4096]]),
  errorCodes: new Set([...FRAMING_CODES, ...STAGE_CODES, 'busy']),
  crowdCodes: ['busy', 'server_full'],
  mixes: false,
  maxConnections: 64,
  jitterBufferFrames: 0,
  slowConsumerMs: 5_000,
  hello: (name) => ({ name }),
  typeNames: BASE_TYPES,
};

const stage03: StageWire = {
  id: '03',
  serverVoiceBytes: PCM_FRAME,
  talkerFrame: talkerAudio,
  clientLimits: new Map([[HELLO, MAX_HELLO_BYTES], [AUDIO, FRAME_BYTES], [BYE, 0]]),
  serverLimits: new Map([...[WELCOME, ERROR, USERS, JOINED, LEFT, SPEAKING].map((type) => [type, 256 * 1024] as const), [AUDIO, FRAME_BYTES]]),
  errorCodes: new Set([...FRAMING_CODES, ...STAGE_CODES, 'name_taken']),
  crowdCodes: ['name_taken', 'server_full'],
  mixes: true,
  maxConnections: 1024,
  maxUsers: 1000,
  jitterBufferFrames: 3,
  slowConsumerMs: 5_000,
  hello: (name) => ({ name }),
  typeNames: NEWS_TYPES,
};

const stage04: StageWire = {
  id: '04',
  serverVoiceBytes: PCM_FRAME,
  talkerFrame: talkerAudio,
  clientLimits: new Map([[HELLO, MAX_HELLO_BYTES], [AUDIO, FRAME_BYTES], [BYE, 0], [JOIN, MAX_HELLO_BYTES], [LIST_ROOMS, 0]]),
  serverLimits: new Map([
    ...[WELCOME, ERROR, USERS, JOINED, LEFT, SPEAKING, JOIN_REFUSED, ROOMS].map((type) => [type, 256 * 1024] as const),
    [AUDIO, FRAME_BYTES],
  ]),
  errorCodes: new Set([...FRAMING_CODES, ...STAGE_CODES, 'name_taken', 'bad_room', 'rate_limited']),
  crowdCodes: ['name_taken', 'server_full'],
  mixes: true,
  maxConnections: 1024,
  maxUsers: 1000,
  jitterBufferFrames: 3,
  slowConsumerMs: 5_000,
  moves: { burst: 10, refillMs: 1_000, refusalsBeforeError: 20 },
  hello: (name, room) => ({ name, room }),
  typeNames: { ...NEWS_TYPES, [JOIN]: 'JOIN', [JOIN_REFUSED]: 'JOIN_REFUSED', [LIST_ROOMS]: 'LIST_ROOMS', [ROOMS]: 'ROOMS' },
};

/**
 * Stage 05: stage 04's messages, with type 0x03 carrying Opus VOICE (client: sequence + packet,
 * 3-1277 bytes; server: speaker + sequence + packet, 5-1279 bytes), forwarded instead of mixed.
 * `mixes` stays true: listeners get one 0x03 per talker's 20 ms, as with a mix.
 */
const stage05: StageWire = {
  ...stage04,
  id: '05',
  clientLimits: new Map([...stage04.clientLimits, [AUDIO, 1277]]),
  serverLimits: new Map([...stage04.serverLimits, [AUDIO, 1279]]),
  errorCodes: new Set([...FRAMING_CODES, ...STAGE_CODES.filter((code) => code !== 'bad_audio_size'), 'bad_voice_size', 'name_taken', 'bad_room', 'rate_limited', 'wrong_protocol']),
  jitterBufferFrames: 0,
  serverVoiceBytes: { min: 5, max: 1279 },
  opusVoice: true,
  protocol: 'voice-chat/05',
  talkerFrame: (() => {
    let sequence = 0;
    return () => clientVoice(sequence++);
  })(),
  hello: (name, room) => ({ name, room, protocol: 'voice-chat/05' }),
  typeNames: { ...stage04.typeNames, [AUDIO]: 'VOICE' },
};

/**
 * Stage 06 over TCP: stage 05's messages under the protocol "voice-chat/06", plus PATH (0x0E,
 * {"path": "udp" | "tcp"}, at most 1024 bytes; anything else is bad_path). Its datagrams are
 * attacked by conformance/hostile/datagram-checks.ts.
 */
const stage06: StageWire = {
  ...stage05,
  id: '06',
  clientLimits: new Map([...stage05.clientLimits, [PATH, MAX_HELLO_BYTES]]),
  errorCodes: new Set([...stage05.errorCodes, 'bad_path']),
  protocol: 'voice-chat/06',
  datagrams: true,
  hello: (name, room) => ({ name, room, protocol: 'voice-chat/06' }),
  typeNames: { ...stage05.typeNames, [PATH]: 'PATH' },
};

/**
 * Stage 07: stage 06's wire under "voice-chat/07", plus text and files: TEXT (8 KiB), OFFER
 * (2 KiB), CHUNK (7-16 390 bytes: shorter is bad_chunk on the header), ACK (exactly 6: shorter is
 * bad_ack), CANCEL (1 KiB) from clients; REFUSED, OFFERED, CREDIT and TRANSFER_END from the server.
 */
const stage07: StageWire = {
  ...stage06,
  id: '07',
  clientLimits: new Map([...stage06.clientLimits, [TEXT, 8192], [OFFER, 2048], [CHUNK, 16_390], [ACK, 6], [CANCEL, MAX_HELLO_BYTES]]),
  serverLimits: new Map([
    ...stage06.serverLimits,
    ...[TEXT, REFUSED, OFFER, OFFERED, TRANSFER_END].map((type) => [type, 256 * 1024] as const),
    [CHUNK, 16_390],
    [CREDIT, 6],
  ]),
  errorCodes: new Set([...stage06.errorCodes, 'bad_text', 'no_such_member', 'bad_file_name', 'file_too_large', 'too_many_transfers', 'server_busy', 'no_receivers', 'bad_chunk', 'bad_ack']),
  protocol: 'voice-chat/07',
  chat: true,
  hello: (name, room) => ({ name, room, protocol: 'voice-chat/07' }),
  typeNames: {
    ...stage06.typeNames,
    [TEXT]: 'TEXT', [REFUSED]: 'REFUSED', [OFFER]: 'OFFER', [OFFERED]: 'OFFERED', [CHUNK]: 'CHUNK', [ACK]: 'ACK', [CREDIT]: 'CREDIT', [CANCEL]: 'CANCEL', [TRANSFER_END]: 'TRANSFER_END',
  },
};

/**
 * Stage 08: stage 07's wire under "voice-chat/08", plus the directory and calls: LOOKUP and INVITE
 * (1 KiB), ACCEPT, DECLINE and HANGUP (256 bytes) from clients; ADDRESS, FOUND, INVITE, RINGING,
 * CALL_START, CALL_END and PRESENCE from the server. Names are unique on the whole server.
 */
const stage08: StageWire = {
  ...stage07,
  id: '08',
  clientLimits: new Map([...stage07.clientLimits, [LOOKUP, MAX_HELLO_BYTES], [INVITE, MAX_HELLO_BYTES], [ACCEPT, 256], [DECLINE, 256], [HANGUP, 256]]),
  serverLimits: new Map([
    ...stage07.serverLimits,
    ...[ADDRESS, FOUND, INVITE, RINGING, CALL_START, CALL_END, PRESENCE].map((type) => [type, 256 * 1024] as const),
  ]),
  errorCodes: new Set([...stage07.errorCodes, 'busy', 'no_such_user', 'calling_yourself', 'already_in_call']),
  protocol: 'voice-chat/08',
  calls: { inviteBurst: 5, inviteRefillMs: 10_000, lookupBurst: 10, lookupRefillMs: 1_000, refusalsBeforeError: 20 },
  hello: (name, room) => ({ name, room, protocol: 'voice-chat/08' }),
  typeNames: {
    ...stage07.typeNames,
    [ADDRESS]: 'ADDRESS', [LOOKUP]: 'LOOKUP', [FOUND]: 'FOUND', [INVITE]: 'INVITE', [RINGING]: 'RINGING', [ACCEPT]: 'ACCEPT', [DECLINE]: 'DECLINE',
    [HANGUP]: 'HANGUP', [CALL_START]: 'CALL_START', [CALL_END]: 'CALL_END', [PRESENCE]: 'PRESENCE',
  },
};

/** Each framed stage's wire, by id; conformance/stages.ts gives each to its stage. */
export const WIRES: Readonly<Record<StageId, StageWire>> = { '02': stage02, '03': stage03, '04': stage04, '05': stage05, '06': stage06, '07': stage07, '08': stage08 };

/** The README's name rule: 1-32 code points, no controls, separators or bidi controls, no space at either end. */
export function nameIsValid(name: string): boolean {
  const length = [...name].length;
  return length >= 1 && length <= 32 && !FORBIDDEN_IN_NAMES.test(name) && name.trim() === name;
}

/** The stage 04 README's room id rule. */
export function roomIsValid(room: string): boolean {
  return /^[A-Za-z0-9_.:-]{1,64}$/.test(room);
}
