// The grader on the independent server of stage 02: Python (standard library only), written from
// 02-echo/README.md without the reference code (tests/fixtures/python/stage02_server.py). It must
// get a full grade, robustness section and slow consumer included (issue 20: "all suites pass ...
// on the independent implementations in tests/fixtures"). Its client is graded in
// tests/grading.test.ts ("stage 02").
import t from 'tap';
import { expectFullServerGrade, pythonServer } from './support/independent-grading.ts';

// About 40 s with the slow consumer on a quiet machine; the rest is for a busy CI machine and any
// re-grading of a SKIP.
t.setTimeout(600_000);

const file = 'stage02_server.py';
t.test(`stage 02: the independent Python server (${file}) passes every server check and every robustness check, the slow consumer included`, async (t) => {
  const args = ['--stage', '02', '--slow-consumer', '--server', pythonServer(file)];
  await expectFullServerGrade(t, '02', file, args, 280_000);
});
