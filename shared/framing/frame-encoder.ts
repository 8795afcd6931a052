// Building frames to send. See frame-format.ts for the layout.

import { FRAME_HEADER_BYTES, MAX_DECLARED_LENGTH, MAX_FRAME_TYPE } from './frame-format.ts';

export { FRAME_HEADER_BYTES };

/**
 * Writes the 5-byte header at `target[offset]`, for callers that build frames in
 * place (e.g. one big buffer holding many frames). Throws RangeError on a bad
 * type, length or offset: that is a bug in our own code, not the peer's.
 */
export function writeFrameHeader(target: Buffer, offset: number, type: number, length: number): void {
  if (!Number.isInteger(type) || type < 0 || type > MAX_FRAME_TYPE) {
    throw new RangeError(`frame type must be an integer 0..255, got ${type}`);
  }
  if (!Number.isInteger(length) || length < 0 || length > MAX_DECLARED_LENGTH) {
    throw new RangeError(`frame length must be an integer 0..${MAX_DECLARED_LENGTH}, got ${length}`);
  }
  if (!Number.isInteger(offset) || offset < 0 || offset + FRAME_HEADER_BYTES > target.length) {
    throw new RangeError(`no room for a ${FRAME_HEADER_BYTES}-byte header at offset ${offset} of a ${target.length}-byte buffer`);
  }
  target[offset] = type;
  target.writeUInt32BE(length, offset + 1);
}

/**
 * Returns one Buffer holding header + payload (a single allocation, so one
 * socket.write sends the whole frame). Strings are encoded as UTF-8.
 */
export function encodeFrame(type: number, payload: Buffer | string): Buffer {
  const length = typeof payload === 'string' ? Buffer.byteLength(payload, 'utf8') : payload.length;
  // allocUnsafe skips zero-filling: every byte is overwritten just below.
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length);
  writeFrameHeader(frame, 0, type, length);
  if (typeof payload === 'string') {
    frame.write(payload, FRAME_HEADER_BYTES, 'utf8');
  } else {
    payload.copy(frame, FRAME_HEADER_BYTES);
  }
  return frame;
}
