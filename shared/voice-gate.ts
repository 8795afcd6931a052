// Client-side voice gate: decide, frame by frame, whether the microphone is
// carrying voice worth sending. Not sending silence saves bandwidth and keeps
// the server's mix free of everyone's background hiss.
//
// The level is the RMS of the last few frames (a sliding mean, so one quiet
// frame inside a word does not count as silence), in dBFS. Two thresholds
// (hysteresis) stop the gate from flickering when the level hovers near one
// of them, and a hang-over keeps it open a little after the voice drops so the
// quiet ends of words are not chopped off.

import { FRAME_BYTES, FRAME_MS, FRAME_SAMPLES } from './audio/format.ts';

export interface VoiceGateOptions {
  /** A closed gate opens when the level reaches this (dBFS). */
  openDb: number;
  /** An open gate stays open while the level is at least this (dBFS); must be <= openDb. */
  closeDb: number;
  /** How long the gate stays open after the level falls below closeDb (ms, rounded up to frames). */
  hangoverMs: number;
  /** The level is the RMS over this many most recent frames (>= 1). */
  windowFrames: number;
}

export const DEFAULT_GATE: VoiceGateOptions = Object.freeze({
  openDb: -40,
  closeDb: -50,
  hangoverMs: 300,
  windowFrames: 2,
});

/** Full scale for dBFS: a square wave at +-32768 is 0 dBFS. */
const FULL_SCALE = 32_768;

/** Sum of squared samples of one frame. An integer below 2^40, so exact as a double. */
function sumOfSquares(frame: Buffer): number {
  if (frame.length !== FRAME_BYTES) {
    throw new RangeError(`frame must be ${FRAME_BYTES} bytes, got ${frame.length}`);
  }
  let total = 0;
  // readInt16LE works at any byteOffset on any host; one frame per 20 ms makes its cost irrelevant.
  for (let offset = 0; offset < FRAME_BYTES; offset += 2) {
    const s = frame.readInt16LE(offset);
    total += s * s;
  }
  return total;
}

/** Level in dBFS of a mean square; silence gives -Infinity. */
function meanSquareToDb(meanSquare: number): number {
  return 20 * Math.log10(Math.sqrt(meanSquare) / FULL_SCALE);
}

/** RMS level of one 1920-byte frame in dBFS (20*log10(rms/32768)); silence gives -Infinity. */
export function frameRmsDb(frame: Buffer): number {
  return meanSquareToDb(sumOfSquares(frame) / FRAME_SAMPLES);
}

export class VoiceGate {
  private readonly openDb: number;
  private readonly closeDb: number;
  private readonly hangoverFrames: number;
  /** Sum of squares of each of the last windowFrames frames; frames before the first count as silence. */
  private readonly window: Float64Array;
  private windowIndex = 0;
  /** Running total of `window`, updated incrementally. Exact: it only adds and subtracts integers. */
  private windowTotal = 0;
  private hangoverLeft = 0;
  private open = false;
  private level = -Infinity;

  constructor(options: Partial<VoiceGateOptions> = {}) {
    const { openDb, closeDb, hangoverMs, windowFrames } = { ...DEFAULT_GATE, ...options };
    // Written as !(ok) so that NaN is rejected too.
    if (!(closeDb <= openDb)) {
      throw new RangeError(`closeDb (${closeDb}) must be <= openDb (${openDb}) for hysteresis`);
    }
    if (!(hangoverMs >= 0 && Number.isFinite(hangoverMs))) {
      throw new RangeError(`hangoverMs must be a finite number >= 0, got ${hangoverMs}`);
    }
    if (!(Number.isInteger(windowFrames) && windowFrames >= 1)) {
      throw new RangeError(`windowFrames must be an integer >= 1, got ${windowFrames}`);
    }
    this.openDb = openDb;
    this.closeDb = closeDb;
    this.hangoverFrames = Math.ceil(hangoverMs / FRAME_MS);
    this.window = new Float64Array(windowFrames);
  }

  /** Level in dBFS over the window, as of the last accepted frame (for display). */
  get levelDb(): number {
    return this.level;
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** Feed one 1920-byte frame; returns true if this frame should be sent. */
  accept(frame: Buffer): boolean {
    this.level = this.updateLevel(sumOfSquares(frame));
    if (this.open) {
      if (this.level >= this.closeDb) {
        this.hangoverLeft = this.hangoverFrames; // still talking: re-arm the hang-over
      } else if (this.hangoverLeft > 0) {
        this.hangoverLeft--;
      } else {
        this.open = false;
      }
    } else if (this.level >= this.openDb) {
      this.open = true;
      this.hangoverLeft = this.hangoverFrames;
    }
    return this.open;
  }

  /** Slide the window by one frame without rescanning it; returns the window's level in dBFS. */
  private updateLevel(frameSumOfSquares: number): number {
    this.windowTotal += frameSumOfSquares - this.window[this.windowIndex];
    this.window[this.windowIndex] = frameSumOfSquares;
    this.windowIndex = (this.windowIndex + 1) % this.window.length;
    return meanSquareToDb(this.windowTotal / (this.window.length * FRAME_SAMPLES));
  }
}
