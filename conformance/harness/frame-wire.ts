// Helpers for checks of the framed protocols (stage 02 on): every message is
//   type u8 | length u32 big-endian | payload (length bytes)
// They read frames off a WireClient, so failures carry the transcript of bytes, and they know
// nothing about any stage's message types: each stage's checks name their own.
import { CheckFailure } from './check-failure.ts';
import { DEFAULT_WAIT_MS, WireClient } from './wire-client.ts';
import { SeededRandom } from './seeded-random.ts';

export const HEADER_BYTES = 5;
/** No message in the course is anywhere near this; a larger declared length means garbage. */
const SANE_PAYLOAD_LIMIT = 1 << 20;

export interface WireFrame {
  type: number;
  payload: Buffer;
}

/** One frame as bytes (the encoder is written out here so checks do not trust the code under test). */
export function frameBytes(type: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const header = Buffer.alloc(HEADER_BYTES);
  header[0] = type;
  header.writeUInt32BE(body.length, 1);
  return Buffer.concat([header, body]);
}

/** A frame whose payload is `value` as UTF-8 JSON. */
export function jsonFrameBytes(type: number, value: unknown): Buffer {
  return frameBytes(type, JSON.stringify(value));
}

/**
 * `fields` plus a "pad" string that makes their JSON exactly `bytes` long (the READMEs: unknown
 * fields are ignored): the largest payload a limit allows, as any client may send it.
 */
export function paddedToBytes<T extends Record<string, unknown>>(fields: T, bytes: number): T & { pad: string } {
  const base = Buffer.byteLength(JSON.stringify({ ...fields, pad: '' }));
  if (base > bytes) throw new Error(`the fields alone take ${base} bytes, more than ${bytes}`);
  return { ...fields, pad: 'x'.repeat(bytes - base) };
}

/** A JSON frame of `type` whose payload is exactly `bytes` long: `fields`, padded (paddedToBytes). */
export function paddedJsonFrameBytes(type: number, fields: Record<string, unknown>, bytes: number): Buffer {
  return jsonFrameBytes(type, paddedToBytes(fields, bytes));
}

/** "0x03" */
export function hexType(type: number): string {
  return '0x' + type.toString(16).padStart(2, '0');
}

/** Reads the next whole frame, however the bytes were split. */
export async function readFrame(client: WireClient, what: string, options: { timeoutMs?: number; hint?: string } = {}): Promise<WireFrame> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS;
  const deadline = Date.now() + timeoutMs;
  const header = await client.readBytes(HEADER_BYTES, timeoutMs, `${what} (its 5-byte header)`, options.hint);
  const type = header[0]!;
  const length = header.readUInt32BE(1);
  if (length > SANE_PAYLOAD_LIMIT) {
    throw new CheckFailure(`a frame header declares ${length} payload bytes`, {
      expected: what,
      actual: `header type ${hexType(type)}, length ${length}`,
      sent: client.sent,
      received: client.received,
      hint: 'the length is a u32 in big-endian byte order and counts the payload only, not the 5 header bytes',
    });
  }
  const payload = await client.readBytes(length, Math.max(1, deadline - Date.now()), `${what} (${length} payload bytes after a ${hexType(type)} header)`, options.hint);
  return { type, payload };
}

/** The payload parsed as a JSON object, or a description of why it is not one. */
export function jsonObjectOf(payload: Buffer): { object: Record<string, unknown> } | { problem: string } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(payload);
  } catch {
    return { problem: 'the payload is not valid UTF-8' };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { problem: `the payload is not JSON: ${JSON.stringify(text.slice(0, 200))}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { problem: `the payload is JSON but not an object: ${JSON.stringify(text.slice(0, 200))}` };
  }
  return { object: value as Record<string, unknown> };
}

/** Reads a frame, requires its type, and returns its payload as a JSON object. */
export async function readJsonFrame(client: WireClient, type: number, what: string, hint?: string): Promise<Record<string, unknown>> {
  const frame = await readFrame(client, what, { hint });
  const parsed = jsonObjectOf(frame.payload);
  if (frame.type !== type || 'problem' in parsed) {
    throw new CheckFailure(`expected ${what}`, {
      expected: `${what}: a frame of type ${hexType(type)} with a UTF-8 JSON object as payload`,
      actual: frame.type !== type ? `a frame of type ${hexType(frame.type)}, ${frame.payload.length} payload bytes` : (parsed as { problem: string }).problem,
      sent: client.sent,
      received: client.received,
      hint,
    });
  }
  return parsed.object;
}

/** Splits bytes at the given offsets (ascending): splitAt(b, [1, 5]) -> b[0..1], b[1..5], b[5..]. */
export function splitAt(bytes: Buffer, offsets: number[]): Buffer[] {
  const pieces: Buffer[] = [];
  let start = 0;
  for (const offset of [...offsets, bytes.length]) {
    pieces.push(bytes.subarray(start, offset));
    start = offset;
  }
  return pieces.filter((piece) => piece.length > 0);
}

/** Sends each piece in its own write, a few ms apart, so they travel as separate TCP segments. */
export async function sendInPieces(client: WireClient, pieces: Buffer[], pauseMs = 5): Promise<void> {
  for (const piece of pieces) {
    client.send(piece);
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
}

/** All whole frames in a byte transcript (e.g. everything a client sent to a fake server). */
export function framesIn(bytes: Buffer): { frames: WireFrame[]; leftover: number } {
  const frames: WireFrame[] = [];
  let offset = 0;
  while (offset + HEADER_BYTES <= bytes.length) {
    const length = bytes.readUInt32BE(offset + 1);
    if (offset + HEADER_BYTES + length > bytes.length) break;
    frames.push({ type: bytes[offset]!, payload: bytes.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + length) });
    offset += HEADER_BYTES + length;
  }
  return { frames, leftover: bytes.length - offset };
}

/**
 * `count` frames of `frameBytes` each, all different and not periodic (a seeded pseudo-random
 * walk), so an echo that repeats, reorders or shifts a frame is caught.
 */
export function distinctivePcm(count: number, frameBytes: number, seed: number): Buffer {
  const pcm = Buffer.alloc(count * frameBytes);
  const random = new SeededRandom(seed);
  for (let i = 0; i + 4 <= pcm.length; i += 4) pcm.writeUInt32LE(random.uint32(), i);
  return pcm;
}

/** Where two buffers first differ, for failure messages: "byte 17: expected 0x3a, got 0x3b". */
export function firstDifference(expected: Buffer, actual: Buffer): string {
  const shorter = Math.min(expected.length, actual.length);
  for (let i = 0; i < shorter; i++) {
    if (expected[i] !== actual[i]) return `byte ${i}: expected 0x${expected[i]!.toString(16).padStart(2, '0')}, got 0x${actual[i]!.toString(16).padStart(2, '0')}`;
  }
  if (expected.length !== actual.length) return `length: expected ${expected.length} bytes, got ${actual.length}`;
  return 'no difference';
}
