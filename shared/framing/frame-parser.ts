// Incremental parser for the frame layout in frame-format.ts.
//
// TCP delivers a byte stream, not messages: one chunk may hold half a header,
// three whole frames, or the tail of one frame and the start of the next. The
// parser is an explicit state machine that remembers where it stopped:
//
//   'header'  : collecting the 5 header bytes. The type is checked on its first
//               byte, the length against that type's limit once all 5 are in,
//               so a bad frame is rejected BEFORE any of its payload is kept.
//   'payload' : collecting `length` payload bytes, then the frame is emitted.
//               A payload that straddles chunks is kept as copies of the pieces that
//               arrived and assembled once complete (as ws's receiver does): memory grows
//               with what the peer sent, never with what it merely declared.
//
// It never touches a socket: callers push bytes in and receive frames through
// onFrame. That keeps it easy to test with any split of the stream.

import { FRAMING_ERROR_CODES, ProtocolError } from '../protocol-error.ts';
import { FRAME_HEADER_BYTES, formatFrameType } from './frame-format.ts';

/** Max payload bytes for a frame type; undefined means the type is unknown. */
export type PayloadLimit = (type: number) => number | undefined;

export interface FrameParserOptions {
  maxPayload: PayloadLimit;
  /**
   * Called once per complete frame, in stream order.
   *
   * The payload MAY SHARE MEMORY with a chunk given to push() (when a frame lies
   * whole inside one chunk it is a zero-copy view of it). Do not modify it, and
   * copy it (Buffer.from(payload)) if you keep it for long: a small view keeps
   * the whole chunk alive, and a caller that reuses chunk buffers would change it.
   */
  onFrame: (type: number, payload: Buffer) => void;
  /**
   * Optional: called once a header is whole and within its limit, before any payload byte is
   * kept, with the type and declared length. Throw a ProtocolError to refuse the frame on its
   * header (stage 05: a VOICE too short to hold a packet), as the limit check does.
   */
  onHeader?: (type: number, length: number) => void;
}

type State = 'header' | 'payload';

// Shared by all empty frames: a zero-length Buffer cannot be modified.
const EMPTY_PAYLOAD = Buffer.alloc(0);

export class FrameParser {
  private readonly maxPayload: PayloadLimit;
  private readonly onFrame: (type: number, payload: Buffer) => void;
  private readonly onHeader: ((type: number, length: number) => void) | undefined;

  private state: State = 'header';
  // The header is copied here byte by byte, so it may arrive in any split.
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerFilled = 0;
  private type = 0;
  private limit = 0;
  private payloadLength = 0;
  // Only used when a payload straddles chunks: copies of the pieces received so far.
  private payloadPieces: Buffer[] = [];
  private payloadFilled = 0;
  // Set on the first error; the parser's position in the stream is then lost.
  private failure: { error: unknown } | null = null;

  constructor(options: FrameParserOptions) {
    this.maxPayload = options.maxPayload;
    this.onFrame = options.onFrame;
    this.onHeader = options.onHeader;
  }

  /**
   * Bytes held while waiting for the rest of a frame: what arrived of it, never
   * more (so at most 5 + the largest limit). Non-zero when the stream ends means
   * the last frame was truncated.
   */
  get bufferedBytes(): number {
    return this.headerFilled + this.payloadFilled;
  }

  /**
   * Feeds the next bytes of the stream. Calls onFrame for every frame completed
   * by this chunk, then returns. Throws ProtocolError on a protocol violation;
   * after any error (including one thrown by onFrame) every later push()
   * rethrows it: the connection should be closed anyway.
   */
  push(chunk: Buffer): void {
    if (this.failure !== null) throw this.failure.error;
    try {
      let offset = 0;
      while (offset < chunk.length) {
        offset = this.state === 'header' ? this.readHeader(chunk, offset) : this.readPayload(chunk, offset);
      }
    } catch (error) {
      this.failure = { error };
      throw error;
    }
  }

  /** Consumes header bytes from chunk[offset]; returns the new offset. */
  private readHeader(chunk: Buffer, offset: number): number {
    const isFirstByte = this.headerFilled === 0;
    const take = Math.min(FRAME_HEADER_BYTES - this.headerFilled, chunk.length - offset);
    chunk.copy(this.header, this.headerFilled, offset, offset + take);
    this.headerFilled += take;
    offset += take;

    if (isFirstByte) {
      // Fail on the type byte alone: without a known type there is no limit to check.
      this.type = this.header[0]!;
      const limit = this.maxPayload(this.type);
      if (limit === undefined) {
        throw new ProtocolError(FRAMING_ERROR_CODES.UNKNOWN_TYPE, `unknown frame type ${formatFrameType(this.type)}`);
      }
      this.limit = limit;
    }
    if (this.headerFilled < FRAME_HEADER_BYTES) return offset; // wait for the rest

    this.payloadLength = this.header.readUInt32BE(1);
    if (this.payloadLength > this.limit) {
      // Checked before buffering anything: a peer cannot make us hold 4 GB.
      throw new ProtocolError(
        FRAMING_ERROR_CODES.FRAME_TOO_LARGE,
        `frame type ${formatFrameType(this.type)} declares ${this.payloadLength} payload bytes, limit is ${this.limit}`,
      );
    }
    this.onHeader?.(this.type, this.payloadLength);
    if (this.payloadLength === 0) {
      this.emit(EMPTY_PAYLOAD); // emit now: no more bytes may ever arrive
    } else {
      this.state = 'payload';
    }
    return offset;
  }

  /** Consumes payload bytes from chunk[offset]; returns the new offset. */
  private readPayload(chunk: Buffer, offset: number): number {
    const available = chunk.length - offset;
    if (this.payloadFilled === 0 && available >= this.payloadLength) {
      // Fast path: the whole payload is in this chunk, hand out a view (no copy).
      const end = offset + this.payloadLength;
      this.emit(chunk.subarray(offset, end));
      return end;
    }
    // The payload straddles chunks: keep a COPY of this piece (the caller may reuse its chunk).
    const take = Math.min(this.payloadLength - this.payloadFilled, available);
    this.payloadPieces.push(Buffer.from(chunk.subarray(offset, offset + take)));
    this.payloadFilled += take;
    if (this.payloadFilled === this.payloadLength) this.emit(Buffer.concat(this.payloadPieces, this.payloadLength));
    return offset + take;
  }

  /** Resets for the next frame, then delivers this one. */
  private emit(payload: Buffer): void {
    this.state = 'header';
    this.headerFilled = 0;
    this.payloadFilled = 0;
    this.payloadPieces = [];
    this.onFrame(this.type, payload);
  }
}
