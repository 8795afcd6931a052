// The grader's stall watch (conformance/harness/stall-watch.ts): a timing failure stays a FAIL
// while the grader ran on time, and becomes a SKIP only when the grader itself stalled.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { CheckFailure, CheckSkipped } from '../conformance/harness/check-failure.ts';
import { StallWatch } from '../conformance/harness/stall-watch.ts';
import { SCHEDULING_NOISE_MS } from '../conformance/harness/tolerance.ts';

const late = () => {
  throw new CheckFailure('the guard is not 1 s: room voice came too early, after 16 ms', { expected: 'after 1 s' });
};

/** What `judgement` throws, or undefined. */
function thrownBy(judgement: () => void): unknown {
  try {
    judgement();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** Blocks this process (as a busy machine would) for `ms`. */
function stall(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy: no timer of this process runs
  }
}

t.test('a failure while the grader ran on time stays a failure; a passing judgement passes', async (t) => {
  const watch = new StallWatch();
  t.teardown(() => watch.stop());
  await sleep(100);
  t.ok(thrownBy(() => watch.judge(late)) instanceof CheckFailure, 'the failure stands');
  t.doesNotThrow(() => watch.judge(() => {}));
});

t.test('a failure while the grader itself stalled past the allowance is a SKIP that names both', async (t) => {
  const watch = new StallWatch();
  t.teardown(() => watch.stop());
  await sleep(30);
  stall(SCHEDULING_NOISE_MS + 100);
  await sleep(50); // the watch's timer runs, late
  t.ok(watch.worstLateMs > SCHEDULING_NOISE_MS, `the stall was seen (${Math.round(watch.worstLateMs)} ms late)`);
  const skipped = thrownBy(() => watch.judge(late));
  t.ok(skipped instanceof CheckSkipped, 'a SKIP');
  t.match((skipped as CheckSkipped).reason, /the guard is not 1 s[\s\S]*grader's own timers ran up to \d+ ms late/, 'naming the timing and the stall');
  await t.rejects(watch.during(Promise.reject(new CheckFailure('no VOICE_UP within 4.6 s', { expected: 'VOICE_UP' }))), CheckSkipped);
  t.doesNotThrow(() => watch.judge(() => {}), 'a passing judgement still passes');
});

t.test('reset() forgets a stall before the measurement started; an error that is not a check failure is never hidden', async (t) => {
  const watch = new StallWatch();
  t.teardown(() => watch.stop());
  await sleep(30);
  stall(SCHEDULING_NOISE_MS + 100);
  await sleep(50);
  watch.reset();
  await sleep(60);
  t.ok(thrownBy(() => watch.judge(late)) instanceof CheckFailure, 'the failure stands: the stall came before the measurement');
  stall(SCHEDULING_NOISE_MS + 100);
  await sleep(50);
  t.ok(thrownBy(() => watch.judge(() => {
    throw new TypeError('a bug in the check');
  })) instanceof TypeError, 'a bug in the check is never turned into a SKIP');
});

t.test('a judgement with wider margins names its own allowance: a stall under it leaves the failure standing', async (t) => {
  const watch = new StallWatch();
  t.teardown(() => watch.stop());
  await sleep(30);
  stall(SCHEDULING_NOISE_MS + 100);
  await sleep(50);
  t.ok(thrownBy(() => watch.judge(late, 2_000)) instanceof CheckFailure, 'a stall of about 200 ms under a 2 s allowance: the failure stands');
  const skipped = thrownBy(() => watch.judge(late, 50));
  t.ok(skipped instanceof CheckSkipped, 'over a 50 ms allowance: a SKIP');
  t.match((skipped as CheckSkipped).reason, /more than the 50 ms allowed/, 'naming the allowance');
});
