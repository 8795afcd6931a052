// A fake clock and timer queue for tests: time moves only when the test says
// so, which lets a test run minutes of FrameClock ticks in milliseconds and
// check every due time exactly instead of timing real sleeps.

import type { Scheduler } from '#shared/audio/frame-clock.ts';

interface PendingTimer {
  id: number;
  at: number;
  callback: () => void;
}

export class ManualScheduler implements Scheduler {
  private time = 0;
  private nextId = 1;
  private pending: PendingTimer[] = [];

  /**
   * @param timerLateness extra milliseconds each timer fires after its delay,
   *   to model a busy event loop (real timers are never early, often late)
   */
  constructor(private readonly timerLateness: () => number = () => 0) {}

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, delayMs: number): unknown {
    const id = this.nextId++;
    this.pending.push({ id, at: this.time + Math.max(0, delayMs) + this.timerLateness(), callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending = this.pending.filter((timer) => timer.id !== handle);
  }

  /** Time passes with no timer firing, as when a callback does heavy work or the process stalls. */
  spend(ms: number): void {
    this.time += ms;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const next = this.earliest();
      if (next === undefined || next.at > end) break;
      this.pending = this.pending.filter((timer) => timer !== next);
      // A callback may have spent time: never move the clock backwards.
      this.time = Math.max(this.time, next.at);
      next.callback();
    }
    this.time = Math.max(this.time, end);
  }

  get pendingTimers(): number {
    return this.pending.length;
  }

  private earliest(): PendingTimer | undefined {
    let best: PendingTimer | undefined;
    for (const timer of this.pending) if (best === undefined || timer.at < best.at) best = timer;
    return best;
  }
}
