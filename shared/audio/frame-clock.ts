// A metronome for audio: calls onTick every 20 ms without drifting.
//
// Chaining setTimeout(20) drifts: each timer fires a little late (1-2 ms on a
// busy event loop) and the lateness adds up, so after a minute such a clock
// is seconds behind the sound card. Instead, tick n is DUE at
// start + n * period, and every timeout is computed from the next due time, so
// a late tick makes the next wait shorter and the error never accumulates.

import { FRAME_MS } from './format.ts';

/** Where the clock reads the time and sets its timers; tests pass a fake one. */
export interface Scheduler {
  /** A monotonic time in milliseconds (like performance.now()). */
  now(): number;
  setTimeout(callback: () => void, delayMs: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The real event loop's timers and the monotonic clock. */
export const realScheduler: Scheduler = {
  now: () => performance.now(),
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * @param tickIndex n for the tick due at start + n * period (skipped ticks keep their numbers)
 * @param lateness milliseconds between the tick's due time and the moment it ran
 */
export type TickHandler = (tickIndex: number, lateness: number) => void;

export interface FrameClockOptions {
  /** Milliseconds between ticks; default FRAME_MS (20). */
  periodMs?: number;
  /** Most overdue ticks run back to back after a stall; beyond that they are skipped. Default 10. */
  maxCatchUpTicks?: number;
  /** Told how many ticks were skipped after a long stall. */
  onSkip?: (skippedTicks: number) => void;
  scheduler?: Scheduler;
}

export class FrameClock {
  private readonly periodMs: number;
  private readonly maxCatchUpTicks: number;
  private readonly onSkip: ((skippedTicks: number) => void) | undefined;
  private readonly scheduler: Scheduler;
  private startTime = 0;
  private nextTick = 0;
  private timer: unknown = undefined;
  private running = false;

  constructor(private readonly onTick: TickHandler, options: FrameClockOptions = {}) {
    this.periodMs = options.periodMs ?? FRAME_MS;
    this.maxCatchUpTicks = options.maxCatchUpTicks ?? 10;
    this.onSkip = options.onSkip;
    this.scheduler = options.scheduler ?? realScheduler;
  }

  /** Starts ticking; tick 0 is due now. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.startTime = this.scheduler.now();
    this.nextTick = 0;
    this.scheduleNext();
  }

  /** Stops ticking; safe to call from inside onTick. */
  stop(): void {
    this.running = false;
    if (this.timer !== undefined) this.scheduler.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * Runs the ticks that are due now, without waiting for the timer: for a caller that is busy
   * with other callbacks (a server reading hundreds of sockets) and would otherwise make the
   * tick wait until the event loop reaches its timers. Cheap when nothing is due (a clock read).
   */
  runIfDue(): void {
    if (!this.running || this.scheduler.now() < this.dueTime(this.nextTick)) return;
    if (this.timer !== undefined) this.scheduler.clearTimeout(this.timer);
    this.runDueTicks();
  }

  get isRunning(): boolean {
    return this.running;
  }

  private dueTime(tick: number): number {
    return this.startTime + tick * this.periodMs;
  }

  private scheduleNext(): void {
    const delay = Math.max(0, this.dueTime(this.nextTick) - this.scheduler.now());
    this.timer = this.scheduler.setTimeout(this.runDueTicks, delay);
  }

  // An arrow function so it can be passed to setTimeout without bind().
  private readonly runDueTicks = (): void => {
    this.timer = undefined;
    const now = this.scheduler.now();
    // Ticks whose due time has passed: nextTick .. lastDue.
    const lastDue = Math.floor((now - this.startTime) / this.periodMs);
    const overdue = lastDue - this.nextTick + 1;
    if (overdue > this.maxCatchUpTicks) {
      // After a long stall, playing all missed frames at once would only add
      // latency: jump to the latest due tick.
      const skipped = overdue - 1;
      this.nextTick += skipped;
      this.onSkip?.(skipped);
    }
    // Only the ticks due on entry: if onTick is slow and more fall due
    // meanwhile, they run after the event loop has had a turn. (A timer may
    // also fire a hair early: then nothing is due and we just re-arm.)
    while (this.running && this.nextTick <= lastDue) {
      const tick = this.nextTick++;
      this.onTick(tick, this.scheduler.now() - this.dueTime(tick));
    }
    if (this.running) this.scheduleNext();
  };
}
