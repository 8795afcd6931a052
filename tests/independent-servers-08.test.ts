// The grader passes a correct stage 08 server it has never seen: the independent Python server
// (tests/fixtures/python/stage08_server.py, extending stage07_server.py), written from
// 08-calls/README.md alone, must get every server check of the stage (stage 08's calls, stage 07's
// chat and file checks and stage 06's voice checks on the 08 wire, stage 05's TCP voice checks) and every robustness check, with nothing
// failed and nothing skipped (issue 20). The grader appends --ring-timeout 2 to the server's command.
// The --slow checks (the default 30 s ring, call ids and session ids burnt through to their wrap)
// are left out; `npm run grade -- --stage 08 --slow --server ...` runs them by hand.
// The slow consumer (--slow-consumer) is graded too: about 21 s per stage, as the loud talkers take
// ~16 s to fill the kernels' 4 MB for the client that never reads, then the README's 5 s.
import t from 'tap';
import { expectFullServerGrade, pythonServer } from './support/independent-grading.ts';

t.setTimeout(600_000); // one grading, ~150 s on a busy 2-core machine (07's file checks move 100s of MiB), and any re-grading of a SKIP

t.test('stage 08: the independent Python server (stage08_server.py) passes every server and robustness check, the slow consumer included', async (t) => {
  const args = ['--stage', '08', '--slow-consumer', '--server', pythonServer('stage08_server.py')];
  await expectFullServerGrade(t, '08', 'stage08_server.py', args, 350_000);
});
