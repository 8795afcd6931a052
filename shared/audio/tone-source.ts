// A sine tone: the simplest test signal, easy to recognise by ear and to
// check by counting zero crossings.

import { FRAME_BYTES, FRAME_SAMPLES, SAMPLE_MAX, SAMPLE_RATE } from './format.ts';
import { ClockedSource } from './clocked-source.ts';
import type { FrameClockOptions } from './frame-clock.ts';

/** 0.25 of full scale is about -12 dBFS: clearly audible, far from clipping. */
export const DEFAULT_TONE_AMPLITUDE = 0.25;

/** Computes consecutive frames of a sine wave. */
export class ToneGenerator {
  private phase = 0; // radians, kept in [0, 2π) so precision never degrades
  private readonly phaseStep: number;

  /** @param amplitude fraction of full scale, 0..1 */
  constructor(
    readonly frequencyHz: number,
    private readonly amplitude = DEFAULT_TONE_AMPLITUDE,
  ) {
    this.phaseStep = (2 * Math.PI * frequencyHz) / SAMPLE_RATE;
  }

  /** The next frame; the phase carries over, so frames join without a click. */
  nextFrame(): Buffer {
    const frame = Buffer.alloc(FRAME_BYTES);
    const scale = this.amplitude * SAMPLE_MAX;
    for (let i = 0; i < FRAME_SAMPLES; i++) {
      frame.writeInt16LE(Math.round(scale * Math.sin(this.phase)), i * 2);
      this.phase += this.phaseStep;
      if (this.phase >= 2 * Math.PI) this.phase -= 2 * Math.PI;
    }
    return frame;
  }
}

/** A real-time source of a sine tone ("tone 440 Hz"). */
export function createToneSource(
  frequencyHz: number,
  amplitude = DEFAULT_TONE_AMPLITUDE,
  clockOptions?: FrameClockOptions,
): ClockedSource {
  const generator = new ToneGenerator(frequencyHz, amplitude);
  return new ClockedSource(`tone ${frequencyHz} Hz`, () => generator.nextFrame(), clockOptions);
}
