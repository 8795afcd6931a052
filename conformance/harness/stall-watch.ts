// The grader's own punctuality while it times something: when this process does not run for a
// while (a busy 2-core grading machine), the datagrams it timestamps look late and its own sends go
// out late, so a correct program can look wrong. A timing judgement that fails while the grader
// itself stalled past the noise allowance is reported as SKIP ("could not judge"), with both facts;
// one that fails while the grader ran on time is the program's fault and stays a FAIL.
import { CheckFailure, CheckSkipped } from './check-failure.ts';
import { SCHEDULING_NOISE_MS } from './tolerance.ts';

const PERIOD_MS = 20;

export class StallWatch {
  private worstMs = 0;
  private last = performance.now();
  private readonly timer: NodeJS.Timeout;

  /** Starts watching at once; stop() when the measurement is over. */
  constructor() {
    this.timer = setInterval(() => {
      const now = performance.now();
      this.worstMs = Math.max(this.worstMs, now - this.last - PERIOD_MS);
      this.last = now;
    }, PERIOD_MS);
    this.timer.unref(); // a check that failed half-way must not keep the grader alive
  }

  /** The longest the grader's own 20 ms timer was late since the start, in ms. */
  get worstLateMs(): number {
    return this.worstMs;
  }

  /** Forgets what came before: the measurement starts now (a stall while a client started up does not void it). */
  reset(): void {
    this.worstMs = 0;
    this.last = performance.now();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Waits for `waiting`, judged as judge() judges: a wait that gave up while the grader stalled is a SKIP. */
  async during<T>(waiting: Promise<T>): Promise<T> {
    try {
      return await waiting;
    } catch (error) {
      this.judge(() => {
        throw error;
      });
      throw error;
    }
  }

  /**
   * Runs a timing judgement: its failure becomes a SKIP when the grader itself stalled past
   * `allowanceMs` (the noise allowance; more for a judgement whose margins are wider, so that a
   * harmless stall on a busy machine does not void a real finding).
   */
  judge(judgement: () => void, allowanceMs = SCHEDULING_NOISE_MS): void {
    try {
      judgement();
    } catch (error) {
      if (!(error instanceof CheckFailure) || this.worstMs <= allowanceMs) throw error;
      throw new CheckSkipped(
        `${error.summary}; but the grader's own timers ran up to ${Math.round(this.worstMs)} ms late meanwhile (more than the ${allowanceMs} ms allowed): the machine was too busy to judge this timing; grade again on a quieter machine`,
      );
    }
  }
}

/** Runs a timing check's steps with a StallWatch, stopped however they end. */
export async function withStallWatch<T>(steps: (watch: StallWatch) => Promise<T>): Promise<T> {
  const watch = new StallWatch();
  try {
    return await steps(watch);
  } finally {
    watch.stop();
  }
}
