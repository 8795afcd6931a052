// The judgement of a README's token bucket by a burst (conformance/harness/bucket-limit.ts): the
// allowance grows with the time the GRADER took to send the burst (and the timing rule's noise),
// never with the server's lateness; a count over it fails unless the grader's own timers were late
// too (then a SKIP, or a FAIL beyond the refill of the whole window); an allowance large enough to
// let the broken server through is a SKIP, never a pass.
import t from 'tap';
import { expectBucketLimit, mostLetThrough, type BucketJudgement } from '../conformance/harness/bucket-limit.ts';
import { CheckFailure, CheckSkipped } from '../conformance/harness/check-failure.ts';
import { Unmeasured } from '../conformance/harness/unmeasured.ts';

const voice = { burst: 10, perSecond: 50 };
const judgement = (passed: number): BucketJudgement => ({
  bucket: voice,
  least: 10,
  brokenPasses: 20,
  broken: 'a server with a bucket per path',
  measures: 'whether both paths share one bucket',
  summary: 'not limited as one',
  expected: (range) => `${range} forwarded`,
  actual: `${passed} forwarded`,
  hint: 'one bucket',
});
interface Timing {
  /** How long the grader took to send the burst. */
  sendMs: number;
  /** When the last answer came, from the first item sent. */
  answeredMs: number;
  /** How late the grader's own timers ran meanwhile. */
  graderLateMs?: number;
}
/** What judging `passed` does: 'pass', 'fail' (with the failure) or 'skip' (with the reason). */
function judge(passed: number, { sendMs, answeredMs, graderLateMs = 0 }: Timing): { verdict: 'pass' | 'fail' | 'skip'; error?: unknown } {
  const unmeasured = new Unmeasured();
  try {
    expectBucketLimit({ passed, firstSentAt: 1_000, lastSentAt: 1_000 + sendMs, lastSeenAt: 1_000 + answeredMs }, judgement(passed), unmeasured, { worstLateMs: graderLateMs });
    unmeasured.settle();
    return { verdict: 'pass' };
  } catch (error) {
    if (error instanceof CheckSkipped) return { verdict: 'skip', error };
    if (error instanceof CheckFailure) return { verdict: 'fail', error };
    throw error;
  }
}

t.test('the allowance: the burst, the refill over the time rounded up, and one for timer granularity', async (t) => {
  t.equal(mostLetThrough(voice, 0), 11, 'nothing elapsed: the burst and one');
  t.equal(mostLetThrough(voice, 1), 12, 'a millisecond rounds up to a token');
  t.equal(mostLetThrough(voice, 20), 12, 'one refill period: one token');
  t.equal(mostLetThrough(voice, 120), 17, '120 ms: six tokens');
  t.equal(mostLetThrough({ burst: 5, perSecond: 5 }, 400), 8, '5 per second over 400 ms: two');
});

t.test('a server that reads at once gets the refill of the send time + 100 ms: the burst passes, a bucket per path fails', async (t) => {
  const quick = { sendMs: 2, answeredMs: 5 };
  t.equal(judge(10, quick).verdict, 'pass');
  t.equal(judge(17, quick).verdict, 'pass', '10 + 6 tokens of 102 ms + 1: the allowance itself passes');
  const over = judge(18, quick);
  t.equal(over.verdict, 'fail', 'one over the allowance fails');
  t.match((over.error as CheckFailure).details.expected, /10 to 17 forwarded \(10 at once \+ 50\/s × \(2 ms the grader took to send them \+ 100 ms/, 'naming the range and how it was reached');
  t.equal(judge(20, quick).verdict, 'fail', 'two buckets fail');
  t.equal(judge(9, quick).verdict, 'fail', 'less than the burst fails');
});

t.test('a server that answers late gets no more tokens for it: with the grader on time, a late count over the allowance FAILS naming the delay', async (t) => {
  const late = { sendMs: 2, answeredMs: 400 };
  t.equal(judge(12, late).verdict, 'pass', 'a count within the allowance is right however late it came');
  const failed = judge(20, late);
  t.equal(failed.verdict, 'fail', 'a bucket of 20 behind a 400 ms delay is no longer a SKIP');
  t.match((failed.error as CheckFailure).summary, /not limited as one; the answers came 398 ms after the burst was sent \(at once is within 100 ms\)/);
  t.match((failed.error as CheckFailure).details.actual, /the grader's own 20 ms timer was at most 0 ms late/, 'saying the grader was on time');
});

t.test('only the grader\'s own lateness makes a count over the allowance a SKIP, and never one over the whole window\'s refill', async (t) => {
  const stalled = { sendMs: 2, answeredMs: 400, graderLateMs: 250 };
  const skipped = judge(20, stalled);
  t.equal(skipped.verdict, 'skip', 'the machine stalled everyone: could not judge');
  t.match((skipped.error as CheckSkipped).reason, /whether both paths share one bucket could not be judged: 20 came through where a server that reads at once lets through 17.*the grader's own 20 ms timer was at most 250 ms late/);
  t.equal(judge(12, stalled).verdict, 'pass', 'a count within the allowance passes, stall or not');
  t.equal(judge(35, stalled).verdict, 'fail', 'more than 10 + the refill of 400 ms (31) fails even on a stalled machine');
  t.equal(judge(20, { ...stalled, graderLateMs: 100 }).verdict, 'fail', '100 ms late is within the noise allowance: not evidence');
});

t.test('a grader that took so long to send the burst that its allowance lets the broken server through SKIPs', async (t) => {
  const slowSend = judge(12, { sendMs: 90, answeredMs: 95 });
  t.equal(slowSend.verdict, 'skip', '190 ms of refill allows 21');
  t.match((slowSend.error as CheckSkipped).reason, /the grader took 90 ms to send the burst, so up to 21 could be correct/);
});
