// Frames as bytes, written out here so the hostile cases do not trust any code under test:
//   type u8 | length u32 big-endian | payload
export const HEADER_BYTES = 5;

export function frame(type: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const out = Buffer.alloc(HEADER_BYTES + body.length);
  out[0] = type;
  out.writeUInt32BE(body.length, 1);
  body.copy(out, HEADER_BYTES);
  return out;
}

export function jsonFrame(type: number, value: unknown): Buffer {
  return frame(type, JSON.stringify(value));
}

/** Only a header: a frame that declares `length` payload bytes and sends none of them. */
export function header(type: number, length: number): Buffer {
  const out = Buffer.alloc(HEADER_BYTES);
  out[0] = type;
  out.writeUInt32BE(length >>> 0, 1);
  return out;
}
