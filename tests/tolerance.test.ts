// The timing rule (conformance/harness/tolerance.ts) for short durations judged with the grader's
// measured lateness: twice and half of the README's value always fail or are not judged, never pass.
import t from 'tap';
import { CheckFailure, CheckSkipped } from '../conformance/harness/check-failure.ts';
import { expectTimed, periodWindow, judgeDuration } from '../conformance/harness/tolerance.ts';
import { Unmeasured } from '../conformance/harness/unmeasured.ts';

const HOLD_MS = 200;
const TICK_MS = 20;

/** The verdict on a speaking hold measured as `measuredMs` while the grader ran `graderLateMs` late. */
function verdict(measuredMs: number, graderLateMs: number): 'pass' | 'fail' | 'skip' {
  const unmeasured = new Unmeasured();
  try {
    expectTimed(measuredMs, HOLD_MS, { pipelineMs: TICK_MS }, graderLateMs, unmeasured, 'the speaking hold', 'SPEAKING []', 'count ticks');
    unmeasured.settle();
    return 'pass';
  } catch (error) {
    if (error instanceof CheckSkipped) return 'skip';
    if (error instanceof CheckFailure) return 'fail';
    throw error;
  }
}

t.test('with the grader on time, a 200 ms hold passes and twice or half of it fails', async (t) => {
  t.equal(verdict(200, 0), 'pass');
  t.equal(verdict(215, 25), 'pass', 'a tick late');
  t.equal(verdict(400, 0), 'fail', 'twice the hold');
  t.equal(verdict(100, 0), 'fail', 'half the hold');
});

t.test('a late grader widens the window, but never so far that twice or half of the hold passes', async (t) => {
  for (const late of [40, 60, 100, 200, 1_000]) {
    t.not(verdict(400, late), 'pass', `twice the hold with the grader ${late} ms late`);
    t.not(verdict(100, late), 'pass', `half the hold with the grader ${late} ms late`);
  }
  t.equal(verdict(360, 60), 'pass', 'a hold 60 ms long with the grader 60 ms late');
  t.equal(verdict(390, 100), 'skip', 'not judged when the grader was later than a quarter of the hold');
  t.equal(verdict(2_000, 1_000), 'fail', 'far outside even the widened window: still a FAIL');
});

t.test('a period is judged by the rate rule: ±10% of its rate', async (t) => {
  const window = periodWindow(200);
  t.equal(judgeDuration(200, window), 'ok');
  t.equal(judgeDuration(240, window), 'late');
  t.equal(judgeDuration(170, window), 'early');
});
