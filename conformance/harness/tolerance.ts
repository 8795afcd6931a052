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
//   - noise: this process and the machine scheduling late (a busy 2-core grading machine).
// Rates: a README rate R (50 mixes a second) is met within ±10% over a window of seconds: a 30 ms
//   tick (33 a second, a third of the voice lost) fails; timer jitter of a millisecond does not.

import { CheckFailure } from './check-failure.ts';

/** The grader's own scheduling noise, in ms, allowed on top of every measured duration. */
export const SCHEDULING_NOISE_MS = 100;
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
export function timingWindow(documentedMs: number, options: { pipelineMs?: number; noiseMs?: number } = {}): TimingWindow {
  const noiseMs = options.noiseMs ?? SCHEDULING_NOISE_MS;
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
