// What a server that follows the README must answer to a byte stream from one connection, worked
// out from the README's rules alone (frame type and length first, then the message's own checks,
// in the documented order). The fuzzer compares the real answer with this.
import { HEADER_BYTES } from './frames.ts';
import { ACCEPT, ACK, AUDIO, BYE, CANCEL, CHUNK, DECLINE, HANGUP, HELLO, INVITE, JOIN, LIST_ROOMS, LOOKUP, nameIsValid, OFFER, PATH, roomIsValid, type StageWire, TEXT } from './wire-spec.ts';

export type Expectation =
  /** The stream breaks the protocol: ERROR with one of `codes`, then a close. */
  | { kind: 'error'; codes: string[]; joined: boolean; reason: string }
  /** The stream ends with BYE: the server closes without an ERROR. */
  | { kind: 'bye'; joined: true }
  /** Nothing wrong so far, the session is open (joined or still waiting for more bytes). */
  | { kind: 'open'; joined: boolean };

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

type Parsed = { object: Record<string, unknown> } | { code: 'bad_utf8' | 'bad_json' };

function parseControl(payload: Buffer): Parsed {
  let text: string;
  try {
    text = strictUtf8.decode(payload);
  } catch {
    return { code: 'bad_utf8' };
  }
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return { object: value as Record<string, unknown> };
  } catch {
    // falls through
  }
  return { code: 'bad_json' };
}

const own = (object: Record<string, unknown>, field: string): unknown => (Object.hasOwn(object, field) ? object[field] : undefined);

/** The codes a HELLO payload earns, or [] when it is valid. */
function helloProblems(wire: StageWire, payload: Buffer): string[] {
  const parsed = parseControl(payload);
  if ('code' in parsed) return [parsed.code];
  // Stage 05 on checks the protocol right after the JSON, before the name and room.
  if (wire.protocol !== undefined && own(parsed.object, 'protocol') !== wire.protocol) return ['wrong_protocol'];
  const name = own(parsed.object, 'name');
  const room = own(parsed.object, 'room');
  if (typeof name !== 'string') return ['bad_field'];
  const nameCodes = nameIsValid(name) ? [] : ['bad_name'];
  if (wire.moves === undefined) return nameCodes;
  // The README orders "fields, then rules"; when the room is missing AND the name is bad, another
  // implementation may check the name first: either code is right.
  if (typeof room !== 'string') return ['bad_field', ...nameCodes];
  return [...nameCodes, ...(roomIsValid(room) ? [] : ['bad_room'])];
}

/** The codes a JOIN payload (stage 04) earns; a bad room id is JOIN_REFUSED, not an error. */
function joinProblems(payload: Buffer): string[] {
  const parsed = parseControl(payload);
  if ('code' in parsed) return [parsed.code];
  return typeof own(parsed.object, 'room') === 'string' ? [] : ['bad_field'];
}

const isId = (value: unknown) => Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 0xffff;

/**
 * Stage 07: the codes a TEXT, OFFER or CANCEL payload earns as an ERROR (bad_utf8, bad_json,
 * bad_field), or [] when its fields are right (what follows is a REFUSED or an answer: the
 * connection stays).
 */
function chatProblems(type: number, payload: Buffer): string[] {
  const parsed = parseControl(payload);
  if ('code' in parsed) return [parsed.code];
  const object = parsed.object;
  const to = own(object, 'to');
  if (type === TEXT) return typeof own(object, 'text') === 'string' && (to === undefined || isId(to)) ? [] : ['bad_field'];
  if (type === CANCEL) return isId(own(object, 'transfer')) ? [] : ['bad_field'];
  const size = own(object, 'size');
  const sha = own(object, 'sha256');
  const ok = typeof own(object, 'name') === 'string' && Number.isSafeInteger(size) && (size as number) >= 0 && typeof sha === 'string' && /^[0-9a-f]{64}$/.test(sha) && (to === undefined || isId(to));
  return ok ? [] : ['bad_field'];
}

/**
 * Stage 08: the codes a LOOKUP, INVITE, ACCEPT, DECLINE or HANGUP payload earns as an ERROR, or []
 * when its fields are right (then a REFUSED, an answer, or nothing: the connection stays; a fuzz
 * connection never sends the 20 refused INVITEs or LOOKUPs in a row that would be an ERROR).
 */
function callProblems(type: number, payload: Buffer): string[] {
  const parsed = parseControl(payload);
  if ('code' in parsed) return [parsed.code];
  const object = parsed.object;
  if (type === LOOKUP) return typeof own(object, 'name') === 'string' ? [] : ['bad_field'];
  if (type === INVITE) {
    const relayOnly = own(object, 'relay_only');
    return typeof own(object, 'to') === 'string' && (relayOnly === undefined || typeof relayOnly === 'boolean') ? [] : ['bad_field'];
  }
  const relayOnly = own(object, 'relay_only');
  return isId(own(object, 'call')) && (type !== ACCEPT || relayOnly === undefined || typeof relayOnly === 'boolean') ? [] : ['bad_field'];
}

/** Walks the stream frame by frame, as the README's server would. */
export function expectationFor(wire: StageWire, bytes: Buffer): Expectation {
  let joined = false;
  let offset = 0;
  const error = (codes: string[], reason: string): Expectation => ({ kind: 'error', codes, joined, reason });
  for (let index = 0; ; index++) {
    if (offset >= bytes.length) return { kind: 'open', joined };
    const type = bytes[offset]!;
    const limit = wire.clientLimits.get(type);
    if (limit === undefined) return error(['unknown_type'], `frame ${index} has type 0x${type.toString(16)}`);
    if (bytes.length - offset < HEADER_BYTES) return { kind: 'open', joined };
    const length = bytes.readUInt32BE(offset + 1);
    if (length > limit) return error(['frame_too_large'], `frame ${index} declares ${length} bytes (limit ${limit})`);
    // Stage 05 on: a VOICE too short for a sequence number and a packet is refused on its header.
    if (wire.opusVoice && type === AUDIO && length < 3) return error(['bad_voice_size'], `frame ${index} is VOICE declaring ${length} bytes`);
    // Stage 07: a CHUNK without a data byte, or an ACK of under 6 bytes, is refused on its header too.
    if (wire.chat && type === CHUNK && length < 7) return error(['bad_chunk'], `frame ${index} is CHUNK declaring ${length} bytes`);
    if (wire.chat && type === ACK && length < 6) return error(['bad_ack'], `frame ${index} is ACK declaring ${length} bytes`);
    if (bytes.length - offset - HEADER_BYTES < length) return { kind: 'open', joined };
    const payload = bytes.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + length);
    offset += HEADER_BYTES + length;

    if (type === HELLO) {
      if (joined) return error(['already_joined'], `frame ${index} is a second HELLO`);
      const codes = helloProblems(wire, payload);
      if (codes.length > 0) return error(codes, `frame ${index} is a bad HELLO`);
      joined = true;
    } else if (!joined) {
      return error(['not_joined'], `frame ${index} (type 0x${type.toString(16)}) comes before HELLO`);
    } else if (type === AUDIO) {
      if (!wire.opusVoice && length !== limit) return error(['bad_audio_size'], `frame ${index} is AUDIO of ${length} bytes`);
    } else if (type === BYE) {
      return { kind: 'bye', joined: true };
    } else if (type === JOIN) {
      const codes = joinProblems(payload);
      if (codes.length > 0) return error(codes, `frame ${index} is a bad JOIN`);
    } else if (type === PATH) {
      // Stage 06: exactly {"path": "udp"} or {"path": "tcp"}; anything else, bad UTF-8 and JSON included, is bad_path.
      const parsed = parseControl(payload);
      const path = 'object' in parsed ? own(parsed.object, 'path') : undefined;
      if (path !== 'udp' && path !== 'tcp') return error(['bad_path'], `frame ${index} is a bad PATH`);
    } else if (type === TEXT || type === OFFER || type === CANCEL) {
      const codes = chatProblems(type, payload);
      if (codes.length > 0) return error(codes, `frame ${index} is a bad ${type === TEXT ? 'TEXT' : type === OFFER ? 'OFFER' : 'CANCEL'}`);
    } else if (type === CHUNK) {
      // A fuzz connection is alone in its room: its OFFERs are refused (no_receivers), so no CHUNK is ever its own.
      return error(['bad_chunk'], `frame ${index} is a CHUNK for a transfer this connection does not send`);
    } else if (wire.calls !== undefined && (type === LOOKUP || type === INVITE || type === ACCEPT || type === DECLINE || type === HANGUP)) {
      const codes = callProblems(type, payload);
      if (codes.length > 0) return error(codes, `frame ${index} is a bad ${wire.typeNames[type]}`);
    } else if (type === ACK) {
      // An ACK for a transfer you do not receive is ignored (a race with TRANSFER_END).
    } else if (type !== LIST_ROOMS) {
      throw new Error(`the model does not know client type 0x${type.toString(16)}`);
    }
  }
}
