// A source whose frames are computed rather than captured (a tone, silence,
// a file) has no sound card to pace it, so a FrameClock does: one frame
// every 20 ms, in real time, as a microphone would deliver them.

import { FrameClock, type FrameClockOptions } from './frame-clock.ts';
import type { AudioSource } from './types.ts';

/** Returns the next 1920-byte frame, or null when there are no more. */
export type FrameGenerator = () => Buffer | null;

export class ClockedSource implements AudioSource {
  private clock: FrameClock | undefined;

  constructor(
    readonly description: string,
    private readonly nextFrame: FrameGenerator,
    private readonly clockOptions: FrameClockOptions = {},
  ) {}

  start(onFrame: (frame: Buffer) => void, onEnd: () => void): void {
    if (this.clock) throw new Error(`${this.description}: already started`);
    const clock = new FrameClock(() => {
      const frame = this.nextFrame();
      if (frame === null) {
        clock.stop();
        onEnd();
      } else {
        onFrame(frame);
      }
    }, this.clockOptions);
    this.clock = clock;
    clock.start();
  }

  async stop(): Promise<void> {
    this.clock?.stop();
  }
}
