// The jitter buffer between the network and the speaker. Frames arrive in
// irregular bursts; the sound card takes them at a steady pace. The buffer
// holds at most maxFrames: if frames pile up (the sender's clock is a bit
// fast, or a burst arrives after a stall) the OLDEST is dropped, so the delay
// between speaking and hearing stays bounded. If it runs dry, the speaker
// gets silence instead of waiting.

import { FRAME_BYTES } from './format.ts';

export class PlaybackBuffer {
  private readonly frames: (Buffer | undefined)[];
  private head = 0; // index of the oldest frame
  private count = 0;
  /** Shared by every underrun: returned to the caller read-only. */
  private readonly silence = Buffer.alloc(FRAME_BYTES);
  /** Frames thrown away because the buffer was full. */
  droppedFrames = 0;
  /** pull() calls that found the buffer empty and returned silence. */
  underruns = 0;

  constructor(readonly maxFrames: number) {
    if (!Number.isInteger(maxFrames) || maxFrames < 1) throw new RangeError('maxFrames must be a positive integer');
    this.frames = new Array<Buffer | undefined>(maxFrames);
  }

  /** Frames waiting to be played. */
  get length(): number {
    return this.count;
  }

  /** Appends a frame; when full, the oldest frame makes room. */
  push(frame: Buffer): void {
    if (this.count === this.maxFrames) {
      this.head = (this.head + 1) % this.maxFrames;
      this.count--;
      this.droppedFrames++;
    }
    this.frames[(this.head + this.count) % this.maxFrames] = frame;
    this.count++;
  }

  /** The oldest frame, or a silent frame (do not modify it) if there is none. */
  pull(): Buffer {
    if (this.count === 0) {
      this.underruns++;
      return this.silence;
    }
    const frame = this.frames[this.head]!;
    this.frames[this.head] = undefined; // let it be garbage-collected
    this.head = (this.head + 1) % this.maxFrames;
    this.count--;
    return frame;
  }
}
