// Silence: a participant who is connected but says nothing. Useful to test
// that a server mixes and forwards correctly when someone is quiet.

import { FRAME_BYTES } from './format.ts';
import { ClockedSource } from './clocked-source.ts';
import type { FrameClockOptions } from './frame-clock.ts';

/** A real-time source of all-zero frames that never ends. */
export function createSilenceSource(clockOptions?: FrameClockOptions): ClockedSource {
  // A fresh frame each time: whoever receives it may keep or modify it.
  return new ClockedSource('silence', () => Buffer.alloc(FRAME_BYTES), clockOptions);
}
