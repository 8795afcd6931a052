// The judgement of a README's token bucket by a burst (conformance/harness/bucket-limit.ts): the
// allowance grows with the time the answers took, a count over it fails, and an allowance large
// enough to let the broken server through is a SKIP, never a pass.
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
/** What judging `passed` let through in `elapsedMs` does: 'pass', 'fail' (with the failure) or 'skip' (with the reason). */
function judge(passed: number, elapsedMs: number): { verdict: 'pass' | 'fail' | 'skip'; error?: unknown } {
  const unmeasured = new Unmeasured();
  try {
    expectBucketLimit({ passed, firstSentAt: 1_000, lastSeenAt: 1_000 + elapsedMs }, judgement(passed), unmeasured);
    unmeasured.settle();
    return { verdict: 'pass' };
  } catch (error) {
    if (error instanceof CheckSkipped) return { verdict: 'skip', error };
    if (error instanceof CheckFailure) return { verdict: 'fail', error };
    throw error;
  }
}

t.test('the allowance: the burst, the refill over the measured time rounded up, and one for timer granularity', async (t) => {
  t.equal(mostLetThrough(voice, 0), 11, 'nothing elapsed: the burst and one');
  t.equal(mostLetThrough(voice, 1), 12, 'a millisecond rounds up to a token');
  t.equal(mostLetThrough(voice, 20), 12, 'one refill period: one token');
  t.equal(mostLetThrough(voice, 120), 17, '120 ms: six tokens');
  t.equal(mostLetThrough({ burst: 5, perSecond: 5 }, 400), 8, '5 per second over 400 ms: two');
});

t.test('a quick grader judges tightly: the burst passes, a bucket per path fails', async (t) => {
  t.equal(judge(10, 2).verdict, 'pass');
  t.equal(judge(12, 2).verdict, 'pass', 'the allowance itself passes');
  const over = judge(13, 2);
  t.equal(over.verdict, 'fail', 'one over the allowance fails');
  t.match((over.error as CheckFailure).details.expected, /10 to 12 forwarded \(10 at once \+ 50\/s × 2 ms/, 'naming the range and how it was reached');
  t.equal(judge(20, 2).verdict, 'fail', 'two buckets fail');
  t.equal(judge(9, 2).verdict, 'fail', 'less than the burst fails');
});

t.test('a slow grader or server widens the allowance, and once it lets the broken server through the check SKIPs', async (t) => {
  t.equal(judge(17, 120).verdict, 'pass', 'six tokens refilled in 120 ms are correct');
  t.equal(judge(18, 120).verdict, 'fail', 'seven are not');
  const skipped = judge(12, 400);
  t.equal(skipped.verdict, 'skip', 'even a count a correct server gives proves nothing once 20 were allowed');
  t.match((skipped.error as CheckSkipped).reason, /whether both paths share one bucket could not be judged: the answers took 400 ms.*up to 31 could be correct.*a server with a bucket per path lets through 20/);
  t.equal(judge(35, 400).verdict, 'fail', 'more than even the wide allowance still fails');
});
