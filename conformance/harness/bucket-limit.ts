// Judging a token bucket from a README ("50/s, bursts of 10") by a burst sent at once: how many of
// it a correct server may let through depends on how long the server took the tokens over, since
// the bucket refills meanwhile. That time is bounded by what the grader saw: the server took no
// token before the first item was SENT, and took each token it used before the answer it gave for
// it ARRIVED. So a correct bucket lets through at most
//
//   burst + rate × (last answer arrived - first item sent), rounded up, + 1 for timer granularity
//
// (the server's clock may read a little more time than passed). A slow grader or a busy machine
// only widens that allowance, so it never fails a correct server; a fast one keeps it tight. Once
// the allowance reaches what the broken server it guards against would let through anyway (a
// bucket per path, no limit at all), the count proves nothing: a SKIP with the reason, never a pass.
import { expect } from './checks.ts';
import type { StallWatch } from './stall-watch.ts';
import { RATE_TOLERANCE, rateWindow, SCHEDULING_NOISE_MS, showMs } from './tolerance.ts';
import type { Unmeasured } from './unmeasured.ts';

/** A README's bucket: `burst` at once, then `perSecond`. */
export interface DocumentedBucket {
  burst: number;
  perSecond: number;
}

/** Tokens a server's timer may read on top of the time that passed (a coarse clock rounds up). */
export const GRANULARITY_TOKENS = 1;

/** The most a correct `bucket` lets through when it took its tokens within `elapsedMs`. */
export function mostLetThrough(bucket: DocumentedBucket, elapsedMs: number): number {
  return bucket.burst + Math.ceil((bucket.perSecond * Math.max(0, elapsedMs)) / 1_000) + GRANULARITY_TOKENS;
}

export interface BucketCount {
  /** How many were let through (forwarded, answered). */
  passed: number;
  /** performance.now() when the first item of the burst was sent. */
  firstSentAt: number;
  /** performance.now() when the last answer arrived (or when the last item was sent, if none came). */
  lastSeenAt: number;
}

export interface BucketJudgement {
  bucket: DocumentedBucket;
  /** The fewest a correct server lets through (its burst, or less where earlier traffic may have used tokens). */
  least: number;
  /** What the broken server this guards against lets through at least: an allowance this large proves nothing. */
  brokenPasses: number;
  /** Who is broken how, for the SKIP: "a server with a bucket per path". */
  broken: string;
  /** What the count tells, for the SKIP: "whether TCP VOICE and VOICE_UP share one bucket". */
  measures: string;
  /** The failure's summary, expected (given the accepted range, "10 to 12"), actual and hint. */
  summary: string;
  expected: (allowed: string) => string;
  actual: string;
  hint: string;
}

/**
 * Fails when `count.passed` is outside `least` to the measured allowance; notes a SKIP reason in
 * `unmeasured` when it is inside but the allowance would have let `judgement.broken` through too.
 */
export function expectBucketLimit(count: BucketCount, judgement: BucketJudgement, unmeasured: Unmeasured): void {
  const { bucket } = judgement;
  const elapsedMs = count.lastSeenAt - count.firstSentAt;
  const allowed = mostLetThrough(bucket, elapsedMs);
  const how = `${bucket.burst} at once + ${bucket.perSecond}/s × ${showMs(elapsedMs)} from the first sent to the last answer, rounded up, + ${GRANULARITY_TOKENS} for timer granularity`;
  expect(count.passed >= judgement.least && count.passed <= allowed, judgement.summary, {
    expected: `${judgement.expected(`${judgement.least} to ${allowed}`)} (${how})`,
    actual: judgement.actual,
    hint: judgement.hint,
  });
  if (allowed >= judgement.brokenPasses) {
    unmeasured.note(`${judgement.measures} could not be judged: the answers took ${showMs(elapsedMs)} to come, so up to ${allowed} could be correct (${how}), and ${judgement.broken} lets through ${judgement.brokenPasses}; the machine was too busy, grade again on a quieter one`);
  }
}

/**
 * A bucket's refill, judged by a sender faster than the rate for seconds (the rate rule's window):
 * the bucket stays nearly empty, so a correct server lets through its burst plus the rate over the
 * time. At most: the allowance above, at the rate rule's highest rate (+10%). At least: the burst
 * plus the lowest rate (-10%) over `sendingMs`, the time the grader spent sending, less its
 * scheduling noise and the granularity token. Too few is the side a stalled grader can cause: a
 * bucket fills in burst / rate and then overflows, so a grader whose timers stalled longer than
 * that while sending cost a correct server tokens; a failure on that side is then a SKIP.
 */
export function expectRefill(
  count: BucketCount,
  /** The sender: `total` items at `perSecond` (the burst included) over `ms`; `bucket` names whose bucket it measures ("the voice bucket"). */
  sending: { total: number; perSecond: number; ms: number; bucket: string },
  judgement: Omit<BucketJudgement, 'least' | 'brokenPasses' | 'broken' | 'measures'>,
  watch: StallWatch,
  unmeasured: Unmeasured,
): void {
  const { bucket } = judgement;
  const sendingMs = sending.ms;
  const rate = rateWindow(bucket.perSecond);
  const tolerance = `${100 * RATE_TOLERANCE}%`;
  const least = bucket.burst + Math.floor((rate.lowest * Math.max(0, sendingMs - SCHEDULING_NOISE_MS)) / 1_000) - GRANULARITY_TOKENS;
  const judge = () =>
    expectBucketLimit(count, {
      ...judgement,
      brokenPasses: sending.total,
      broken: `a bucket refilling at ${sending.perSecond} a second or faster`,
      measures: `whether ${sending.bucket} refills at ${bucket.perSecond} a second`,
      bucket: { burst: bucket.burst, perSecond: rate.highest },
      least,
      expected: (range) => `${judgement.expected(range)}: at least ${bucket.burst} at once + ${rate.lowest}/s (${bucket.perSecond}/s - ${tolerance}) × ${showMs(sendingMs)} of sending less ${SCHEDULING_NOISE_MS} ms, - ${GRANULARITY_TOKENS}; at most, with ${rate.highest}/s (${bucket.perSecond}/s + ${tolerance})`,
    }, unmeasured);
  if (count.passed < least) watch.judge(judge, (1_000 * bucket.burst) / bucket.perSecond);
  else judge();
}

/**
 * Sends items 0..total-1 at `perSecond`, paced by the clock rather than by counting timer ticks: a
 * late tick sends everything that fell due meanwhile, so the rate holds on a busy machine.
 * `send(from, to)` sends items from..to-1. Returns when the first went, and how long sending took.
 */
export async function sendAtRate(total: number, perSecond: number, send: (from: number, to: number) => void): Promise<{ firstSentAt: number; sendingMs: number }> {
  const firstSentAt = performance.now();
  for (let sent = 0; sent < total; await new Promise((resolve) => setTimeout(resolve, 1_000 / perSecond))) {
    const due = Math.min(total, 1 + Math.floor(((performance.now() - firstSentAt) * perSecond) / 1_000));
    send(sent, due);
    sent = due;
  }
  return { firstSentAt, sendingMs: performance.now() - firstSentAt };
}
