// The grader on independent servers of stages 03 and 04: Python (standard library only), written
// from the stage READMEs without the reference code (tests/fixtures/python/stage03_server.py,
// stage04_server.py). Each must get a full grade, robustness section and slow consumer included
// (issue 20: "all suites pass ... on the independent implementations in tests/fixtures").
import t from 'tap';
import { expectFullServerGrade, pythonServer } from './support/independent-grading.ts';

// Two gradings one after the other (each about a minute and a half with the slow consumer): run
// side by side on a busy 2-core machine, their timing checks would judge the machine, not the server.
t.setTimeout(900_000); // and any re-grading of a SKIP

for (const [id, file] of [['03', 'stage03_server.py'], ['04', 'stage04_server.py']] as const) {
  t.test(`stage ${id}: the independent Python server (${file}) passes every server check and every robustness check, the slow consumer included`, async (t) => {
    const args = ['--stage', id, '--slow-consumer', '--server', pythonServer(file)];
    await expectFullServerGrade(t, id, file, args, 280_000);
  });
}
