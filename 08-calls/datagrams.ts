// Stage 06's datagrams: voice and pings over UDP, next to the TCP connection of protocol.ts, and
// stage 08's two datagrams of a call, which go between the two clients only (a server drops them
// as bad_type). Every datagram is one message; its first byte is its type; all integers are big-endian.
//
//   0x01 VOICE_UP    client -> server  type | token 8 | sequence u16 | Opus packet (1-1275)       12-1286 bytes
//   0x02 VOICE_DOWN  server -> client  type | speaker u16 | sequence u16 | Opus packet             6-1280 bytes
//   0x03 PING        client -> server  type | token 8 | ping u32 (+1 per ping) | client_time u32 (ms)  exactly 17
//   0x04 PONG        server -> client  type | ping u32 | client_time u32 (as received) | received u32   exactly 13
//   0x05 CALL_PROBE  client <-> client  type | call token 8 | probe u32 (+1 per probe) | received u32    exactly 17
//   0x06 CALL_VOICE  client <-> client  type | call token 8 | sequence u16 | Opus packet (1-1275)       12-1286 bytes
//
// VOICE_UP after its 11-byte header is stage 05's client VOICE payload (sequence + packet);
// VOICE_DOWN after its type byte is stage 05's server VOICE payload, byte for byte. No answer is
// ever larger than what provoked it: PONG (13) < PING (17), VOICE_DOWN < the VOICE_UP it forwards.
// A datagram that breaks these layouts is dropped silently (never answered): the parsers below
// say why, so the server can count it, and return no exception to catch. CALL_VOICE is VOICE_UP
// with the call's token (from CALL_START) instead of the session token; `received` in CALL_PROBE
// counts the valid direct datagrams the sender has had from the peer in this call.
import { MAX_OPUS_PACKET_BYTES, SEQUENCE_BYTES, SPEAKER_BYTES, TOKEN_BYTES } from './protocol.ts';

export const DatagramType = {
  voiceUp: 0x01,
  voiceDown: 0x02,
  ping: 0x03,
  pong: 0x04,
  callProbe: 0x05,
  callVoice: 0x06,
} as const;

const TYPE_BYTES = 1;
/** VOICE_UP: type + token + sequence = 11 bytes before the packet; 12-1286 in all. */
export const VOICE_UP_HEADER_BYTES = TYPE_BYTES + TOKEN_BYTES + SEQUENCE_BYTES;
export const MIN_VOICE_UP_BYTES = VOICE_UP_HEADER_BYTES + 1;
export const MAX_VOICE_UP_BYTES = VOICE_UP_HEADER_BYTES + MAX_OPUS_PACKET_BYTES;
/** VOICE_DOWN: type + speaker + sequence = 5 bytes before the packet; 6-1280 in all. */
export const VOICE_DOWN_HEADER_BYTES = TYPE_BYTES + SPEAKER_BYTES + SEQUENCE_BYTES;
export const MIN_VOICE_DOWN_BYTES = VOICE_DOWN_HEADER_BYTES + 1;
export const MAX_VOICE_DOWN_BYTES = VOICE_DOWN_HEADER_BYTES + MAX_OPUS_PACKET_BYTES;
/** PING: type + token + ping u32 + client_time u32. */
export const PING_BYTES = TYPE_BYTES + TOKEN_BYTES + 4 + 4;
/** PONG: type + ping u32 + client_time u32 + received u32. */
export const PONG_BYTES = TYPE_BYTES + 4 + 4 + 4;
/** The largest datagram a client may send (a full VOICE_UP); anything longer is dropped as bad_type. */
export const MAX_CLIENT_DATAGRAM_BYTES = MAX_VOICE_UP_BYTES;
/** CALL_PROBE: type + call token + probe u32 + received u32. */
export const CALL_PROBE_BYTES = TYPE_BYTES + TOKEN_BYTES + 4 + 4;
/** CALL_VOICE: type + call token + sequence = 11 bytes before the packet; 12-1286 in all. */
export const CALL_VOICE_HEADER_BYTES = TYPE_BYTES + TOKEN_BYTES + SEQUENCE_BYTES;
export const MIN_CALL_VOICE_BYTES = CALL_VOICE_HEADER_BYTES + 1;
export const MAX_CALL_VOICE_BYTES = CALL_VOICE_HEADER_BYTES + MAX_OPUS_PACKET_BYTES;

// ---------------------------------------------------------------- timing and limits

/** The client pings every 2 s (keeps NAT mappings, which often expire after 30 s, open). */
export const PING_INTERVAL_MS = 2_000;
/** UDP is down when the first PING has no PONG within 3 s... */
export const FIRST_PONG_TIMEOUT_MS = 3_000;
/** ...or when this many PINGs in a row went unanswered (6 s at one every 2 s). */
export const MISSED_PINGS_FOR_TCP = 3;
/** UDP is up again (after a fallback) once this many PINGs in a row were answered. */
export const PONGS_FOR_UDP = 2;
/** The server answers at most this many PINGs per second per user; more are dropped (ping_flood). */
export const PONGS_PER_SECOND = 5;
/** The server's anti-replay window for VOICE_UP: the last 64 sequences, the highest accepted and the 63 before it. */
export const REPLAY_WINDOW = 64;

/** Why the server dropped a datagram (silently); each has its own counter. */
export type DropReason = 'bad_type' | 'bad_size' | 'bad_token' | 'replayed' | 'rate_limited' | 'ping_flood';

// ---------------------------------------------------------------- a call's direct path (stage 08)

/** From CALL_START, each client sends CALL_PROBE to the peer's address this often while `connecting`... */
export const PROBE_INTERVAL_MS = 200;
/** ...and this often once `direct` or `relayed` (keeps the NAT mappings open; lets a late path upgrade). */
export const PROBE_KEEPALIVE_MS = 1_000;
/**
 * `connecting` becomes `relayed` after this long without both directions proven; `direct` becomes
 * `relayed` after this long without a valid direct datagram or growth of the peer's `received`.
 */
export const DIRECT_TIMEOUT_MS = 3_000;
/**
 * A client takes at most this many CALL_VOICE a second from its peer, in bursts of CALL_VOICE_BURST.
 * Roomier than the server's voice bucket (50/s, 10), because this one counts datagrams as the
 * client's event loop reads them: after a 300 ms stall 15 are waiting at once, and a peer whose
 * clock runs a little fast sends a little over 50 a second. 1 s of voice and 10 % over the rate
 * still bound what a peer with the token can make this client decode.
 */
export const CALL_VOICE_PER_SECOND = 55;
export const CALL_VOICE_BURST = 50;

/** Why a client dropped a direct datagram (silently); each has its own counter (`stats`). */
export type PeerDropReason = 'bad_type' | 'bad_size' | 'bad_token' | 'replayed' | 'rate_limited' | 'blocked';

// ---------------------------------------------------------------- building datagrams

/** Client -> server VOICE_UP: type, token, sequence, then the Opus packet; one allocation. */
export function voiceUpDatagram(token: Buffer, sequence: number, packet: Buffer): Buffer {
  const datagram = Buffer.allocUnsafe(VOICE_UP_HEADER_BYTES + packet.length);
  datagram[0] = DatagramType.voiceUp;
  token.copy(datagram, TYPE_BYTES, 0, TOKEN_BYTES);
  datagram.writeUInt16BE(sequence, TYPE_BYTES + TOKEN_BYTES);
  packet.copy(datagram, VOICE_UP_HEADER_BYTES);
  return datagram;
}

/** Server -> listener VOICE_DOWN: type, speaker, sequence, then the Opus packet. */
export function voiceDownDatagram(speaker: number, sequence: number, packet: Buffer): Buffer {
  const datagram = Buffer.allocUnsafe(VOICE_DOWN_HEADER_BYTES + packet.length);
  datagram[0] = DatagramType.voiceDown;
  datagram.writeUInt16BE(speaker, TYPE_BYTES);
  datagram.writeUInt16BE(sequence, TYPE_BYTES + SPEAKER_BYTES);
  packet.copy(datagram, VOICE_DOWN_HEADER_BYTES);
  return datagram;
}

/**
 * What a forwarding server sends for a voice payload of stage 05's client layout (sequence +
 * packet, e.g. a VOICE_UP from offset 9 or a TCP VOICE payload): the speaker's id put in front.
 */
export function forwardedVoiceDown(speaker: number, clientVoicePayload: Buffer): Buffer {
  const datagram = Buffer.allocUnsafe(TYPE_BYTES + SPEAKER_BYTES + clientVoicePayload.length);
  datagram[0] = DatagramType.voiceDown;
  datagram.writeUInt16BE(speaker, TYPE_BYTES);
  clientVoicePayload.copy(datagram, TYPE_BYTES + SPEAKER_BYTES);
  return datagram;
}

/** Client -> server PING: type, token, ping number, the client's clock in ms (mod 2^32). */
export function pingDatagram(token: Buffer, ping: number, clientTimeMs: number): Buffer {
  const datagram = Buffer.allocUnsafe(PING_BYTES);
  datagram[0] = DatagramType.ping;
  token.copy(datagram, TYPE_BYTES, 0, TOKEN_BYTES);
  datagram.writeUInt32BE(ping >>> 0, TYPE_BYTES + TOKEN_BYTES);
  datagram.writeUInt32BE(clientTimeMs >>> 0, TYPE_BYTES + TOKEN_BYTES + 4);
  return datagram;
}

/** Server -> client PONG: the ping number and client time as received, and how many datagrams the server accepted from this user. */
export function pongDatagram(ping: number, clientTimeMs: number, received: number): Buffer {
  const datagram = Buffer.allocUnsafe(PONG_BYTES);
  datagram[0] = DatagramType.pong;
  datagram.writeUInt32BE(ping >>> 0, TYPE_BYTES);
  datagram.writeUInt32BE(clientTimeMs >>> 0, TYPE_BYTES + 4);
  datagram.writeUInt32BE(received >>> 0, TYPE_BYTES + 8);
  return datagram;
}

/** Client -> peer CALL_PROBE: type, call token, probe number, how many valid direct datagrams came from the peer. */
export function callProbeDatagram(token: Buffer, probe: number, received: number): Buffer {
  const datagram = Buffer.allocUnsafe(CALL_PROBE_BYTES);
  datagram[0] = DatagramType.callProbe;
  token.copy(datagram, TYPE_BYTES, 0, TOKEN_BYTES);
  datagram.writeUInt32BE(probe >>> 0, TYPE_BYTES + TOKEN_BYTES);
  datagram.writeUInt32BE(received >>> 0, TYPE_BYTES + TOKEN_BYTES + 4);
  return datagram;
}

/** Client -> peer CALL_VOICE: type, call token, sequence, then the Opus packet; one allocation. */
export function callVoiceDatagram(token: Buffer, sequence: number, packet: Buffer): Buffer {
  const datagram = Buffer.allocUnsafe(CALL_VOICE_HEADER_BYTES + packet.length);
  datagram[0] = DatagramType.callVoice;
  token.copy(datagram, TYPE_BYTES, 0, TOKEN_BYTES);
  datagram.writeUInt16BE(sequence, TYPE_BYTES + TOKEN_BYTES);
  packet.copy(datagram, CALL_VOICE_HEADER_BYTES);
  return datagram;
}

// ---------------------------------------------------------------- reading datagrams

/** A datagram a server may receive, parsed; `token` and `packet` are views of the datagram, not copies. */
export type ClientDatagram =
  | { type: 'voice_up'; token: Buffer; sequence: number; packet: Buffer; /** sequence + packet: stage 05's client VOICE payload */ voicePayload: Buffer }
  | { type: 'ping'; token: Buffer; ping: number; clientTime: number };

/**
 * Reads a datagram from a client, or says why it is dropped: `bad_type` for an empty datagram,
 * one longer than MAX_CLIENT_DATAGRAM_BYTES or of a type a client may not send to the server
 * (CALL_PROBE and CALL_VOICE among them: they go between clients); `bad_size` for a VOICE_UP
 * without a packet or a PING that is not exactly 17 bytes. (The token is not checked here.)
 */
export function parseClientDatagram(datagram: Buffer): ClientDatagram | { drop: 'bad_type' | 'bad_size' } {
  if (datagram.length < 1 || datagram.length > MAX_CLIENT_DATAGRAM_BYTES) return { drop: 'bad_type' };
  switch (datagram[0]) {
    case DatagramType.voiceUp:
      if (datagram.length < MIN_VOICE_UP_BYTES) return { drop: 'bad_size' };
      return {
        type: 'voice_up',
        token: datagram.subarray(TYPE_BYTES, TYPE_BYTES + TOKEN_BYTES),
        sequence: datagram.readUInt16BE(TYPE_BYTES + TOKEN_BYTES),
        packet: datagram.subarray(VOICE_UP_HEADER_BYTES),
        voicePayload: datagram.subarray(TYPE_BYTES + TOKEN_BYTES),
      };
    case DatagramType.ping:
      if (datagram.length !== PING_BYTES) return { drop: 'bad_size' };
      return {
        type: 'ping',
        token: datagram.subarray(TYPE_BYTES, TYPE_BYTES + TOKEN_BYTES),
        ping: datagram.readUInt32BE(TYPE_BYTES + TOKEN_BYTES),
        clientTime: datagram.readUInt32BE(TYPE_BYTES + TOKEN_BYTES + 4),
      };
    default:
      return { drop: 'bad_type' };
  }
}

/** A datagram a client may receive, parsed; `packet` is a view of the datagram. */
export type ServerDatagram =
  | { type: 'voice_down'; speaker: number; sequence: number; packet: Buffer }
  | { type: 'pong'; ping: number; clientTime: number; received: number };

/** Reads a datagram from the server; null for anything else (a client drops it silently). */
export function parseServerDatagram(datagram: Buffer): ServerDatagram | null {
  if (datagram.length < 1) return null;
  switch (datagram[0]) {
    case DatagramType.voiceDown:
      if (datagram.length < MIN_VOICE_DOWN_BYTES || datagram.length > MAX_VOICE_DOWN_BYTES) return null;
      return {
        type: 'voice_down',
        speaker: datagram.readUInt16BE(TYPE_BYTES),
        sequence: datagram.readUInt16BE(TYPE_BYTES + SPEAKER_BYTES),
        packet: datagram.subarray(VOICE_DOWN_HEADER_BYTES),
      };
    case DatagramType.pong:
      if (datagram.length !== PONG_BYTES) return null;
      return {
        type: 'pong',
        ping: datagram.readUInt32BE(TYPE_BYTES),
        clientTime: datagram.readUInt32BE(TYPE_BYTES + 4),
        received: datagram.readUInt32BE(TYPE_BYTES + 8),
      };
    default:
      return null;
  }
}

/** A datagram from the peer of a call, parsed; `token` and `packet` are views of the datagram, not copies. */
export type PeerDatagram =
  | { type: 'call_probe'; token: Buffer; probe: number; received: number }
  | { type: 'call_voice'; token: Buffer; sequence: number; packet: Buffer };

/**
 * Reads a direct datagram (one NOT from the server's address), or says why it is dropped:
 * `bad_type` for any type but CALL_PROBE and CALL_VOICE (or an empty datagram), `bad_size` for a
 * CALL_PROBE that is not exactly 17 bytes or a CALL_VOICE outside 12-1286. (The token is not checked here.)
 */
export function parsePeerDatagram(datagram: Buffer): PeerDatagram | { drop: 'bad_type' | 'bad_size' } {
  if (datagram.length < 1) return { drop: 'bad_type' };
  switch (datagram[0]) {
    case DatagramType.callProbe:
      if (datagram.length !== CALL_PROBE_BYTES) return { drop: 'bad_size' };
      return {
        type: 'call_probe',
        token: datagram.subarray(TYPE_BYTES, TYPE_BYTES + TOKEN_BYTES),
        probe: datagram.readUInt32BE(TYPE_BYTES + TOKEN_BYTES),
        received: datagram.readUInt32BE(TYPE_BYTES + TOKEN_BYTES + 4),
      };
    case DatagramType.callVoice:
      if (datagram.length < MIN_CALL_VOICE_BYTES || datagram.length > MAX_CALL_VOICE_BYTES) return { drop: 'bad_size' };
      return {
        type: 'call_voice',
        token: datagram.subarray(TYPE_BYTES, TYPE_BYTES + TOKEN_BYTES),
        sequence: datagram.readUInt16BE(TYPE_BYTES + TOKEN_BYTES),
        packet: datagram.subarray(CALL_VOICE_HEADER_BYTES),
      };
    default:
      return { drop: 'bad_type' };
  }
}
