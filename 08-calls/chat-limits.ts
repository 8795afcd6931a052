// Stage 07's numbers for text and files, in one place (README.md's limits table names the check
// behind each). No imports: protocol.ts (frame limits) and chat-messages.ts (layouts) both use them.

// ---------------------------------------------------------------- text

/** A chat line: 1-1000 Unicode code points (as names count them). Longer things are files. */
export const MAX_TEXT_CHARS = 1000;
/** Largest TEXT payload a client may declare (1000 code points of 4 bytes and the JSON around them). */
export const MAX_TEXT_PAYLOAD_BYTES = 8 * 1024;
/** TEXT bucket (issue 18): 10 at once, then one more per second. */
export const TEXT_BURST = 10;
export const TEXT_REFILL_MS = 1_000;
/** The 20th TEXT in a row refused rate_limited (no TEXT sent in between) gets ERROR rate_limited. */
export const MAX_TEXTS_REFUSED = 20;

// ---------------------------------------------------------------- offers

/** Largest OFFER payload a client may declare. */
export const MAX_OFFER_PAYLOAD_BYTES = 2 * 1024;
/** A file name is 1-255 bytes of UTF-8 (the longest name ext4, APFS and NTFS store). */
export const MAX_FILE_NAME_BYTES = 255;
/** Largest file: 64 MiB. */
export const MAX_FILE_BYTES = 64 * 1024 * 1024;
/** Transfers one user may send at once, and the server may run at once (64 x 256 KiB = 16 MiB of buffers). */
export const MAX_TRANSFERS_PER_SENDER = 2;
export const MAX_TRANSFERS_PER_SERVER = 64;
/** OFFER bucket (issue 18): 5 at once, then one more per 5 s; the 20th refusal in a row closes. */
export const OFFER_BURST = 5;
export const OFFER_REFILL_MS = 5_000;
export const MAX_OFFERS_REFUSED = 20;

// ---------------------------------------------------------------- chunks and flow control

/** Bytes of file data in one CHUNK: 1-16 384 (HTTP/2's default maximum frame size). */
export const MAX_CHUNK_DATA_BYTES = 16 * 1024;
/** CHUNK payload: transfer u16 + offset u32 + data. */
export const CHUNK_HEADER_BYTES = 6;
export const MIN_CHUNK_PAYLOAD_BYTES = CHUNK_HEADER_BYTES + 1;
export const MAX_CHUNK_PAYLOAD_BYTES = CHUNK_HEADER_BYTES + MAX_CHUNK_DATA_BYTES;
/** ACK and CREDIT payloads: transfer u16 + a u32, exactly. */
export const ACK_PAYLOAD_BYTES = 6;
export const CREDIT_PAYLOAD_BYTES = 6;
/** Receive window: the server sends a receiver a transfer's bytes only below its last ACK + 64 KiB. */
export const RECEIVE_WINDOW_BYTES = 64 * 1024;
/** Transfer buffer: the sender's credit is the slowest receiver's ACK + 256 KiB; the server never holds more. */
export const TRANSFER_BUFFER_BYTES = 256 * 1024;
/**
 * What the server counts for each chunk it holds besides its bytes (the Buffer and the map entry),
 * and the most a transfer's held chunks may cost with it: 2 x the buffer. Full 16 KiB chunks cost
 * ~259 KiB; only a sender of chunks under ~256 bytes reaches the limit (ERROR bad_chunk), so one
 * cannot make the server keep a Buffer per byte.
 */
export const CHUNK_BOOKKEEPING_BYTES = 256;
export const MAX_HELD_CHUNK_COST = 2 * 256 * 1024;
/** A receiver that, while it holds the transfer back, acknowledged under 256 KiB in 10 s is dropped: too_slow. */
export const TOO_SLOW_MS = 10_000;
export const TOO_SLOW_MIN_BYTES = 256 * 1024;
/** A sender with credit that sends no CHUNK for 30 s: sender_stalled. */
export const SENDER_STALL_MS = 30_000;
/** A CHUNK for one of a connection's last 4 ended transfers is discarded silently (it was in flight). */
export const RECENTLY_ENDED_TRANSFERS = 4;
/** Transfer ids are u16, 1-65535, increasing, skipping ids in use, wrapping. */
export const MIN_TRANSFER_ID = 1;
export const MAX_TRANSFER_ID = 0xffff;
