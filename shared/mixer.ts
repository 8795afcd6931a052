// Server-side mixing of one room for one 20 ms tick.
//
// Each listener hears the SUM of everyone else's frame, never their own voice.
// Samples are added, not averaged (a voice keeps its level as others join),
// and the result is clipped to 16 bits (clipping distorts a little; wrapping
// around would turn a loud peak into a loud click of the opposite sign).
//
// Cost grows with users, not users squared: the room's sum is computed ONCE
// per tick, then each talker's mix is clip(sum - own), and every listener who
// did not talk gets the same clip(sum), computed once and shared.
//
// Usage, once per tick:
//   mixer.begin();
//   for (const frame of framesThisTick) mixer.add(frame);
//   for (const listener of room) mixer.mixFor(listener.frameThisTick ?? null, listener.outPayload);

import os from 'node:os';
import { FRAME_BYTES, FRAME_SAMPLES, SAMPLE_MAX, SAMPLE_MIN } from './audio/format.ts';

// The loops below run 960 times per frame, for every user, 50 times a second. They read these
// module-local copies: V8 re-reads an IMPORTED binding on every use (it could change, or not be
// initialised yet), which made the sample loops about twice as slow (bench/mixer-bench.ts).
const SAMPLES = FRAME_SAMPLES;
const MAX = SAMPLE_MAX;
const MIN = SAMPLE_MIN;

// The two hot loops (add, mixFor) handle four samples per turn: V8 does not unroll loops, and
// doing it by hand cut the whole server's CPU per frame by ~15% at 200 users (BENCHMARKS.md).
if (SAMPLES % 4 !== 0) throw new Error(`the mixer's loops take 4 samples per turn; a frame has ${SAMPLES}`);

/** Saturate a sample to the 16-bit range: clip, never wrap around. */
export function clipSample(v: number): number {
  return v > MAX ? MAX : v < MIN ? MIN : v;
}

// Int16Array views read the host's byte order; the wire format is little-endian.
const HOST_IS_LITTLE_ENDIAN = os.endianness() === 'LE';

export class RoomMixer {
  /** The room's sum for this tick. 32 bits: no overflow below 65 536 full-scale talkers. */
  private readonly sum = new Int32Array(FRAME_SAMPLES);
  /** Where a mix is computed before being copied into the caller's buffer. */
  private readonly mix = new Int16Array(FRAME_SAMPLES);
  private readonly mixBytes = new Uint8Array(this.mix.buffer);
  /** clip(sum): what every silent listener hears; computed on first need, then reused. */
  private readonly everyoneMix = new Int16Array(FRAME_SAMPLES);
  private readonly everyoneMixBytes = new Uint8Array(this.everyoneMix.buffer);
  private everyoneMixReady = false;
  /** Aligned copy of an input frame whose byteOffset is odd. */
  private readonly alignedScratch = new Int16Array(FRAME_SAMPLES);
  private readonly alignedScratchBytes = new Uint8Array(this.alignedScratch.buffer);
  /** True once mixFor() ran this tick: adding more would make earlier mixes wrong. */
  private mixing = false;

  constructor() {
    if (!HOST_IS_LITTLE_ENDIAN) {
      throw new Error(
        'RoomMixer reads s16le frames through Int16Array views, which needs a little-endian host; ' +
          `this host is ${os.endianness()}`,
      );
    }
  }

  /** Start a tick: clears the sum. */
  begin(): void {
    this.sum.fill(0);
    this.everyoneMixReady = false;
    this.mixing = false;
  }

  /** Add one talker's frame (1920 bytes, s16le) to this tick's sum. */
  add(frame: Buffer): void {
    if (this.mixing) {
      throw new Error('RoomMixer.add() after mixFor() in the same tick: call begin() to start a new tick');
    }
    const samples = this.samplesOf(frame, 'frame');
    const sum = this.sum;
    for (let i = 0; i < SAMPLES; i += 4) {
      sum[i] += samples[i];
      sum[i + 1] += samples[i + 1];
      sum[i + 2] += samples[i + 2];
      sum[i + 3] += samples[i + 3];
    }
  }

  /**
   * Write the mix for one listener into `out` (exactly 1920 bytes, e.g. the payload area of
   * a frame buffer that already has its header; any byteOffset is fine).
   * `own` is the frame this listener added this tick, or null if they did not talk.
   */
  mixFor(own: Buffer | null, out: Buffer): void {
    if (out.length !== FRAME_BYTES) {
      throw new RangeError(`mix output must be ${FRAME_BYTES} bytes, got ${out.length}`);
    }
    this.mixing = true;
    if (own === null) {
      this.computeEveryoneMixOnce();
      out.set(this.everyoneMixBytes);
      return;
    }
    // Subtract from the UNCLIPPED sum: clip(clip(sum) - own) would lose the others' voices
    // whenever the total clipped.
    const ownSamples = this.samplesOf(own, 'own frame');
    const sum = this.sum;
    const mix = this.mix;
    for (let i = 0; i < SAMPLES; i += 4) {
      mix[i] = clipSample(sum[i] - ownSamples[i]);
      mix[i + 1] = clipSample(sum[i + 1] - ownSamples[i + 1]);
      mix[i + 2] = clipSample(sum[i + 2] - ownSamples[i + 2]);
      mix[i + 3] = clipSample(sum[i + 3] - ownSamples[i + 3]);
    }
    // Always computing into our own aligned array, then copying 1920 bytes, keeps one code
    // path for any `out` offset (a payload after a 5-byte header sits at an odd offset).
    out.set(this.mixBytes);
  }

  private computeEveryoneMixOnce(): void {
    if (this.everyoneMixReady) return;
    const sum = this.sum;
    const everyoneMix = this.everyoneMix;
    for (let i = 0; i < SAMPLES; i++) everyoneMix[i] = clipSample(sum[i]);
    this.everyoneMixReady = true;
  }

  /**
   * The frame's samples as an Int16Array without copying when possible. An Int16Array view
   * must start at an even byte offset, so an odd-offset frame is copied into a scratch array
   * (valid until the next call).
   */
  private samplesOf(frame: Buffer, what: string): Int16Array {
    if (frame.length !== FRAME_BYTES) {
      throw new RangeError(`${what} must be ${FRAME_BYTES} bytes, got ${frame.length}`);
    }
    if (frame.byteOffset % 2 === 0) {
      return new Int16Array(frame.buffer, frame.byteOffset, FRAME_SAMPLES);
    }
    this.alignedScratchBytes.set(frame);
    return this.alignedScratch;
  }
}
