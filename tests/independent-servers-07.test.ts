// The grader passes a correct stage 07 server it has never seen: the independent Python server
// (tests/fixtures/python/stage07_server.py, extending stage06_server.py), written from
// 07-chat-files/README.md alone, must get every server check of the stage (stage 07's text and
// file checks, stage 06's voice checks on the 07 wire, stage 05's TCP voice checks) and every
// robustness check, with nothing failed and nothing skipped (issue 20). The --slow checks (a 30 s
// sender stall, transfer ids and session ids burnt through to their wrap) are left out: they take
// minutes on a busy machine; `npm run grade -- --stage 07 --slow --server ...` runs them by hand.
// The slow consumer (--slow-consumer) is graded too: about 21 s per stage, as the loud talkers take
// ~16 s to fill the kernels' 4 MB for the client that never reads, then the README's 5 s.
import t from 'tap';
import { expectFullServerGrade, pythonServer } from './support/independent-grading.ts';

t.setTimeout(480_000); // one grading, ~70-90 s on a busy 2-core machine, and any re-grading of a SKIP

t.test('stage 07: the independent Python server (stage07_server.py) passes every server and robustness check, the slow consumer included', async (t) => {
  const args = ['--stage', '07', '--slow-consumer', '--server', pythonServer('stage07_server.py')];
  await expectFullServerGrade(t, '07', 'stage07_server.py', args, 200_000);
});
