// The grade report's text: a subtotal per side graded, then the score line that scripts grep; with --repeat, the tally per check.
import t from 'tap';
import { runningText, scoreText, tallyText } from '../grading/report.ts';
import type { CheckOutcome } from '../conformance/harness/checks.ts';

const outcome = (name: string, subject: 'server' | 'client' | undefined, passed: boolean) =>
  ({ check: { name, subject }, passed, ms: 1 }) as unknown as CheckOutcome;

t.test('subtotals for the server and the client, then the score', async (t) => {
  const outcomes = [outcome('a', 'server', true), outcome('b', undefined, false), outcome('c', 'client', true), outcome('d', 'server', true)];
  t.equal(scoreText(outcomes), 'server checks: 2/3 passed\nclient checks: 1/1 passed\nscore: 3/4 checks passed');
});

t.test('a side that was not graded gets no subtotal', async (t) => {
  t.equal(scoreText([outcome('c', 'client', false)]), 'client checks: 0/1 passed\nscore: 0/1 checks passed');
});

t.test('the line shown while a check runs names it and where it stands', async (t) => {
  t.equal(runningText({ name: 'drops a silent client' }, 6, 20), '....  drops a silent client  (check 7 of 20, running)');
});

t.test('--repeat: the running line says which run, the score counts runs', async (t) => {
  t.equal(runningText({ name: 'tick' }, 0, 2, 7, 50), '....  tick  (check 1 of 2, run 7 of 50, running)');
  const runs = [outcome('tick', 'server', true), outcome('tick', 'server', false), outcome('hold', 'server', true), outcome('hold', 'server', true)];
  t.equal(scoreText(runs, 2), 'server runs: 3/4 passed\nscore: 3/4 runs (each check ran 2 times) passed');
});

t.test('--repeat: per check, in the order they ran, how many runs passed, failed and skipped', async (t) => {
  const skipped = { ...outcome('hold', 'server', false), skipped: 'the grader ran late' } as CheckOutcome;
  const runs = [
    outcome('tick', 'server', true), outcome('tick', 'server', true), outcome('tick', 'server', true),
    outcome('hold', 'server', false), skipped, outcome('hold', 'server', true),
  ];
  t.equal(tallyText(runs, 3), [
    'each check ran 3 times:',
    '3/3 PASS                  tick',
    '1 PASS, 1 FAIL, 1 SKIP of 3  hold',
  ].join('\n'));
});
