// The grade report's text: a subtotal per side graded, then the score line that scripts grep.
import t from 'tap';
import { runningText, scoreText } from '../grading/report.ts';
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
