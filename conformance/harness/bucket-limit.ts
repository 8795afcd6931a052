// Judging a token bucket from a README ("50/s, bursts of 10") by a burst sent at once: how many of
// it a correct server may let through depends on how long the server took the tokens over, since
// the bucket refills meanwhile. A correct server reads what it is sent AT ONCE, so it takes its
// tokens while the grader sends the burst and within the timing rule's noise after it
// (tolerance.ts: "at once" is 0 ms, judged within SCHEDULING_NOISE_MS). So it lets through at most
//
//   burst + rate × (the time the grader took to send the burst + the noise), rounded up, + 1
//
// (+ 1 for timer granularity: the server's clock may read a little more time than passed). That
// allowance grows with the GRADER's slowness only, never with the server's: a server that reads
// late, or forwards late, gets no more tokens for it. When more than that came through, either the
// bucket is wrong or the server read the burst late; either is the server's fault unless the
// grader's own timers (a StallWatch running over the whole window) were late too, which is the
// evidence that the machine stalled everyone: only then is it a SKIP ("could not judge").
// Whatever the timing, a correct server took no token before the first item was sent and none
// after the last answer it gave arrived, so a count over the burst + the refill of that whole
// window fails even on a stalled machine.
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
  /** performance.now() once the grader had sent the last item of the burst. */
  lastSentAt: number;
  /** performance.now() when the last answer arrived (or when the last item was sent, if none came). */
  lastSeenAt: number;
  /** Set when lastSeenAt is when the count was read later (a client's next probe), not an answer to the burst: it is not then "late". */
  readLater?: true;
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
 * Fails when `count.passed` is under `least`, or over the allowance for a server that reads the
 * burst at once (see above) while the grader's own timers (`watch`, started before the burst was
 * sent) ran on time. Notes a SKIP reason in `unmeasured` when the count is over that allowance but
 * `watch` saw the grader stall (and the count is still within the refill of the whole window), or
 * when the grader took so long to send the burst that its allowance lets `judgement.broken` through.
 */
export function expectBucketLimit(count: BucketCount, judgement: BucketJudgement, unmeasured: Unmeasured, watch: Pick<StallWatch, 'worstLateMs'>): void {
  const { bucket } = judgement;
  const sendMs = count.lastSentAt - count.firstSentAt;
  const answeredMs = count.lastSeenAt - count.firstSentAt;
  const allowed = mostLetThrough(bucket, sendMs + SCHEDULING_NOISE_MS);
  const widest = mostLetThrough(bucket, answeredMs);
  const how = `${bucket.burst} at once + ${bucket.perSecond}/s × (${showMs(sendMs)} the grader took to send them + ${SCHEDULING_NOISE_MS} ms the timing rule allows for "at once"), rounded up, + ${GRANULARITY_TOKENS} for timer granularity`;
  const lateMs = count.lastSeenAt - count.lastSentAt;
  const seen = count.readLater ? 'the count was read' : 'the last answer came';
  const timing = `${seen} ${showMs(lateMs)} after the grader had sent the whole burst; the grader's own 20 ms timer was at most ${Math.round(watch.worstLateMs)} ms late meanwhile`;
  const stalled = watch.worstLateMs > SCHEDULING_NOISE_MS;
  const within = (most: number) => count.passed >= judgement.least && count.passed <= most;
  if (!within(allowed)) {
    if (stalled && within(widest)) {
      unmeasured.note(`${judgement.measures} could not be judged: ${count.passed} came through where a server that reads at once lets through ${allowed} (${how}), but ${timing} (more than the ${SCHEDULING_NOISE_MS} ms allowed): the machine was too busy, grade again on a quieter one`);
      return;
    }
    // Stalled, only the refill of the whole window bounds a correct server; on time, the grader's allowance does.
    const [most, why] = stalled ? [widest, `${bucket.burst} at once + ${bucket.perSecond}/s × ${showMs(answeredMs)} from the first sent until ${count.readLater ? 'the count was read' : 'the last answer'}, rounded up, + ${GRANULARITY_TOKENS}: the most even a stalled machine allows`] : [allowed, how];
    const late = !count.readLater && lateMs > SCHEDULING_NOISE_MS;
    expect(false, late ? `${judgement.summary}; the answers came ${showMs(lateMs)} after the burst was sent (at once is within ${SCHEDULING_NOISE_MS} ms)` : judgement.summary, {
      expected: `${judgement.expected(`${judgement.least} to ${most}`)} (${why})`,
      actual: `${judgement.actual}; ${timing}`,
      hint: `${judgement.hint}; read what arrives at once: a server that reads a burst late, or holds what it forwards, is given no more tokens for it`,
    });
  }
  if (allowed >= judgement.brokenPasses) {
    unmeasured.note(`${judgement.measures} could not be judged: the grader took ${showMs(sendMs)} to send the burst, so up to ${allowed} could be correct (${how}), and ${judgement.broken} lets through ${judgement.brokenPasses}; the machine was too busy, grade again on a quieter one`);
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
  /** The count; the burst's "last sent" is the end of the sending. */
  count: Omit<BucketCount, 'lastSentAt'>,
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
    expectBucketLimit({ ...count, lastSentAt: count.firstSentAt + sendingMs }, {
      ...judgement,
      brokenPasses: sending.total,
      broken: `a bucket refilling at ${sending.perSecond} a second or faster`,
      measures: `whether ${sending.bucket} refills at ${bucket.perSecond} a second`,
      bucket: { burst: bucket.burst, perSecond: rate.highest },
      least,
      expected: (range) => `${judgement.expected(range)}: at least ${bucket.burst} at once + ${rate.lowest}/s (${bucket.perSecond}/s - ${tolerance}) × ${showMs(sendingMs)} of sending less ${SCHEDULING_NOISE_MS} ms, - ${GRANULARITY_TOKENS}; at most, with ${rate.highest}/s (${bucket.perSecond}/s + ${tolerance})`,
    }, unmeasured, watch);
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
