// One talker's voice frames waiting for the server's mixer clock.
//
// Frames arrive when the network delivers them (in bursts, after a hiccup); the mixer takes at
// most one per 20 ms tick. The buffer absorbs that jitter, and bounds the delay it adds:
//   - overflow: a frame arrives while `capacity` are waiting -> the OLDEST is dropped;
//   - standing backlog: when more than one frame is left waiting after every tick for
//     `trimAfterTicks` ticks in a row, the oldest is dropped (20 ms less delay), so a talker
//     made late by a stall catches up instead of staying late while they speak.
// Underflow (nothing waiting on a tick) is not handled here: that talker is simply not mixed.
//
// Frames are copied into buffers allocated once, so a talker costs no allocation per frame
// and we keep no reference to the socket's (possibly large) chunks.

import { FRAME_BYTES } from './audio/format.ts';

/** Why a frame was thrown away: the buffer was full, or a standing backlog was cut. */
export type JitterDrop = 'overflow' | 'trim';

export interface JitterBufferOptions {
  /** Most frames waiting at once (at least 1). */
  capacity: number;
  /** Ticks in a row with a standing backlog before its oldest frame is dropped (at least 1). */
  trimAfterTicks: number;
  /** Told of every frame dropped, e.g. to count them; by default nobody is. */
  onDrop?: (reason: JitterDrop) => void;
}

export class JitterBuffer {
  private readonly slots: Buffer[];
  private readonly trimAfterTicks: number;
  private readonly onDrop: (reason: JitterDrop) => void;
  private oldest = 0; // index in `slots` of the oldest waiting frame
  private count = 0;
  /** Ticks in a row that left two or more frames waiting: latency that stays. */
  private backlogTicks = 0;
  /** Frames dropped because the buffer was full (the talker sent faster than real time). */
  overflows = 0;
  /** Frames dropped to cut a standing backlog. */
  trims = 0;

  constructor({ capacity, trimAfterTicks, onDrop }: JitterBufferOptions) {
    if (!(Number.isInteger(capacity) && capacity >= 1)) throw new RangeError(`capacity must be an integer >= 1, got ${capacity}`);
    if (!(Number.isInteger(trimAfterTicks) && trimAfterTicks >= 1)) {
      throw new RangeError(`trimAfterTicks must be an integer >= 1, got ${trimAfterTicks}`);
    }
    this.slots = Array.from({ length: capacity }, () => Buffer.alloc(FRAME_BYTES));
    this.trimAfterTicks = trimAfterTicks;
    this.onDrop = onDrop ?? (() => {});
  }

  /** Copies `frame` (FRAME_BYTES long) in; when the buffer is full the OLDEST frame is dropped, so latency stays bounded. */
  push(frame: Buffer): void {
    if (frame.length !== FRAME_BYTES) throw new RangeError(`a frame is ${FRAME_BYTES} bytes, got ${frame.length}`);
    if (this.count === this.slots.length) {
      this.dropOldest();
      this.overflows++;
      this.onDrop('overflow');
    }
    frame.copy(this.slots[(this.oldest + this.count) % this.slots.length]!);
    this.count++;
  }

  /**
   * Once per tick: the oldest frame, or null when none is waiting (the talker is silent this
   * tick). The frame is valid until the next push().
   */
  take(): Buffer | null {
    if (this.count === 0) return null;
    // One frame left waiting is the jitter buffer doing its job; two or more, tick after tick, is delay that stays.
    this.backlogTicks = this.count > 2 ? this.backlogTicks + 1 : 0;
    if (this.backlogTicks >= this.trimAfterTicks) {
      this.dropOldest(); // 20 ms less delay
      this.trims++;
      this.backlogTicks = 0;
      this.onDrop('trim');
    }
    const frame = this.slots[this.oldest]!;
    this.dropOldest();
    return frame;
  }

  /** Forgets every waiting frame (e.g. a user who moves must not be heard in the new room saying what they said in the old one). */
  clear(): void {
    this.count = 0;
    this.backlogTicks = 0;
  }

  private dropOldest(): void {
    this.oldest = (this.oldest + 1) % this.slots.length;
    this.count--;
  }
}
