// Sound cards and sockets hand over bytes in chunks of any size; the rest of
// the course works in whole 1920-byte frames. FrameChunker collects chunks
// and emits each complete frame exactly once, keeping the leftover bytes.

import { FRAME_BYTES } from './format.ts';

export class FrameChunker {
  private readonly pending = Buffer.alloc(FRAME_BYTES);
  private filled = 0;

  /** Appends `chunk` and calls onFrame for every frame it completes (a fresh Buffer each time). */
  push(chunk: Buffer, onFrame: (frame: Buffer) => void): void {
    let offset = 0;
    while (offset < chunk.length) {
      const copied = chunk.copy(this.pending, this.filled, offset, offset + FRAME_BYTES - this.filled);
      this.filled += copied;
      offset += copied;
      if (this.filled === FRAME_BYTES) {
        // Copy out: the consumer may keep the frame while we refill `pending`.
        onFrame(Buffer.from(this.pending));
        this.filled = 0;
      }
    }
  }

  /** Bytes waiting for the rest of their frame. */
  get bufferedBytes(): number {
    return this.filled;
  }
}
