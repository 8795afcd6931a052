// THE rule for judging a measured time or rate against a number in a stage README, used by every
// check that times something (timeouts, holds, tick rates), so "about 5 s" means the same
// everywhere. GRADING.md ("Timing tolerances") states it for students; change it here only.
//
// Durations: a README value D is met by anything from 0.8 × D - noise to 1.5 × D + pipeline + noise.
//   - 0.8 × D: an implementation 20% early is wrong (a 5 s timeout firing at 4 s), while the
//     grader's own start-of-measure, taken a little after the server's, never makes a correct one
//     look early;
//   - 1.5 × D: half as long again is a difference a user notices (a 1 s speaking hold instead of
//     200 ms fails, 30 s instead of a 5 s timeout fails);
//   - pipeline: what the protocol itself adds on top (a tick, the jitter buffer), named per check;
//   - noise: this process and the machine scheduling late (a busy 2-core grading machine): what
//     the grader measured of its own lateness while it timed (stall-watch.ts), at least
//     NOISE_FLOOR_MS. A check that cannot measure it assumes SCHEDULING_NOISE_MS, which is fair
//     only to a D of 500 ms or more (0.8 × D - 100 ms still fails half of D, 1.5 × D + 100 ms
//     still fails twice D); a shorter D is judged with the measured noise (expectTimed), and when
//     the grader was so late that the window would let through twice or half D, it is not judged:
//     SKIP ("could not judge"), never a pass.
// Rates: a README rate R (50 mixes a second) is met within ±10% over a window of seconds: a 30 ms
//   tick (33 a second, a third of the voice lost) fails; timer jitter of a millisecond does not.

import { CheckFailure } from './check-failure.ts';
import type { Unmeasured } from './unmeasured.ts';

/** The grader's own scheduling noise, in ms, assumed on top of a duration when it was not measured. */
export const SCHEDULING_NOISE_MS = 100;
/** The least noise allowed even when the grader ran on time: a read is timestamped a few ms late. */
export const NOISE_FLOOR_MS = 30;
/** The most noise a window may absorb, as a share of D, and still fail twice and half of D. */
const MOST_NOISE_SHARE = 0.25;
export const EARLY_FACTOR = 0.8;
export const LATE_FACTOR = 1.5;
export const RATE_TOLERANCE = 0.1;

export interface TimingWindow {
  /** The README's value, in ms. */
  documentedMs: number;
  earliestMs: number;
  latestMs: number;
}

/** The accepted range for a duration documented as `documentedMs` (see the rule above). */
export function timingWindow(documentedMs: number, options: { pipelineMs?: number; noiseMs?: number; graderLateMs?: number } = {}): TimingWindow {
  // graderLateMs: how late the grader's own timers ran while it timed (0: a plan for a grader on time, which the check then confirms).
  const noiseMs = options.noiseMs ?? (options.graderLateMs === undefined ? SCHEDULING_NOISE_MS : Math.max(NOISE_FLOOR_MS, options.graderLateMs));
  return {
    documentedMs,
    earliestMs: Math.max(0, EARLY_FACTOR * documentedMs - noiseMs),
    latestMs: LATE_FACTOR * documentedMs + (options.pipelineMs ?? 0) + noiseMs,
  };
}

/** "between 3.9 s and 7.6 s" / "between 60 ms and 400 ms". */
export function describeWindow(window: TimingWindow): string {
  return `between ${showMs(window.earliestMs)} and ${showMs(window.latestMs)}`;
}

/** Where `measuredMs` falls: 'early', 'late', or 'ok'. */
export function judgeDuration(measuredMs: number, window: TimingWindow): 'early' | 'late' | 'ok' {
  if (measuredMs < window.earliestMs) return 'early';
  if (measuredMs > window.latestMs) return 'late';
  return 'ok';
}

/** The accepted range of a rate documented as `perSecond`. */
export function rateWindow(perSecond: number): { lowest: number; highest: number } {
  const round = (x: number) => Math.round(x * 100) / 100;
  return { lowest: round(perSecond * (1 - RATE_TOLERANCE)), highest: round(perSecond * (1 + RATE_TOLERANCE)) };
}

/**
 * The accepted range of the gap between events documented to come every `periodMs` (a PING every
 * 2 s): the rate rule, ±10% of 1/period, so a median gap of 1.82-2.22 s meets 2 s.
 */
export function periodWindow(periodMs: number): TimingWindow {
  const rate = rateWindow(1_000 / periodMs);
  return { documentedMs: periodMs, earliestMs: Math.round(1_000 / rate.highest), latestMs: Math.round(1_000 / rate.lowest) };
}

export function showMs(ms: number): string {
  return ms >= 1_000 ? `${(ms / 1_000).toFixed(ms % 1_000 === 0 ? 0 : 1)} s` : `${Math.round(ms)} ms`;
}

/**
 * Fails the check unless `measuredMs` is inside `window`, naming the README's number and how far
 * off it was: `what` is the number's name ("the handshake timeout"), `event` what was timed.
 */
export function expectDuration(measuredMs: number, window: TimingWindow, what: string, event: string, hint: string): void {
  const verdict = judgeDuration(measuredMs, window);
  if (verdict === 'ok') return;
  throw new CheckFailure(`${what} is not ${showMs(window.documentedMs)}: ${event} came ${verdict === 'early' ? 'too early' : 'too late'}, after ${showMs(measuredMs)}`, {
    expected: `${event} after ${showMs(window.documentedMs)} (accepted: ${describeWindow(window)})`,
    actual: `after ${Math.round(measuredMs)} ms`,
    hint,
  });
}

/**
 * Judges a measured duration against a README value with the noise the grader measured of itself
 * (`graderLateMs`, StallWatch.worstLateMs): FAIL (expectDuration) outside the window that allows
 * that much noise; a pass only inside the window that still fails twice and half of D. Between the
 * two, the grader was too late to tell: the reason is noted in `unmeasured` (a SKIP at the end).
 */
export function expectTimed(
  measuredMs: number,
  documentedMs: number,
  options: { pipelineMs?: number },
  graderLateMs: number,
  unmeasured: Unmeasured,
  what: string,
  event: string,
  hint: string,
): void {
  const window = timingWindow(documentedMs, { ...options, graderLateMs });
  const lateNote = graderLateMs > NOISE_FLOOR_MS ? ` (the grader's own timers ran up to ${Math.round(graderLateMs)} ms late meanwhile)` : '';
  expectDuration(measuredMs, window, what, event + lateNote, hint);
  const judgeable = timingWindow(documentedMs, { ...options, noiseMs: Math.max(NOISE_FLOOR_MS, MOST_NOISE_SHARE * documentedMs) });
  if (judgeDuration(measuredMs, judgeable) === 'ok') return;
  unmeasured.note(`${what} could not be judged: ${event} came after ${showMs(measuredMs)}, outside ${describeWindow(judgeable)}, while the grader's own timers ran up to ${Math.round(graderLateMs)} ms late (a window that wide would let through twice or half of ${showMs(documentedMs)}): the machine was too busy, grade again on a quieter one`);
}

/**
 * Waits for `waiting` (which gives up at window.latestMs), and turns its giving up into a failure
 * that names the README's number: "the greeting timeout is not 10 s: no ERR timeout within 16.1 s",
 * keeping the bytes and the details of the original failure.
 */
export async function expectWithinWindow<T>(waiting: Promise<T>, window: TimingWindow, what: string, event: string): Promise<T> {
  try {
    return await waiting;
  } catch (error) {
    if (!(error instanceof CheckFailure) || !/timed out/.test(error.summary)) throw error;
    throw new CheckFailure(`${what} is not ${showMs(window.documentedMs)}: no ${event} within ${showMs(window.latestMs)}`, {
      ...error.details,
      expected: `${event} after ${showMs(window.documentedMs)} (accepted: ${describeWindow(window)})`,
    });
  }
}
