// The frame layout used on the wire from stage 02 on:
//
//   offset 0: type    u8
//   offset 1: length  u32 big-endian  (payload length in bytes, header not included)
//   offset 5: payload (length bytes)
//
// A fixed-size header that announces the payload length lets the receiver know
// exactly how many bytes to wait for, however TCP splits or merges the stream.

/** Bytes before the payload: 1 type byte + 4 length bytes. */
export const FRAME_HEADER_BYTES = 5;
/** Largest value of the type byte. */
export const MAX_FRAME_TYPE = 0xff;
/** Largest length a u32 can declare (the real limit per type is much smaller). */
export const MAX_DECLARED_LENGTH = 0xffff_ffff;

/** Formats a type byte the way protocol docs write it: 7 -> "0x07". */
export function formatFrameType(type: number): string {
  return '0x' + type.toString(16).padStart(2, '0');
}
