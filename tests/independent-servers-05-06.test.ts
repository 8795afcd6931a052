// The grader passes correct servers it has never seen: the independent Python servers of stages
// 05 and 06 (tests/fixtures/python/stage05_server.py, stage06_server.py), written from the stage
// READMEs alone, must get every server check and every robustness check of their stage, with
// nothing failed and nothing skipped (issue 20: "all suites pass ... on the independent
// implementations in tests/fixtures"). The --slow check (session ids wrap) is left out: ~65 000
// connections take too long for every CI run; `npm run grade -- --stage 05 --slow --server ...`
// runs it by hand.
// The slow consumer (--slow-consumer) is graded too: about 21 s per stage, as the loud talkers take
// ~16 s to fill the kernels' 4 MB for the client that never reads, then the README's 5 s.
import t from 'tap';
import { expectFullServerGrade, pythonServer } from './support/independent-grading.ts';

t.setTimeout(600_000); // two gradings one after the other, each ~50-80 s on a busy 2-core machine, and any re-grading of a SKIP

for (const id of ['05', '06'] as const) {
  const file = `stage${id}_server.py`;
  t.test(`stage ${id}: the independent Python server (${file}) passes every server and robustness check, the slow consumer included`, async (t) => {
    const args = ['--stage', id, '--slow-consumer', '--server', pythonServer(file)];
    await expectFullServerGrade(t, id, file, args, 200_000);
  });
}
