// The grader passes correct clients it has never seen: the independent Python clients of stages
// 05 and 06 (tests/fixtures/python/stage05_client.py, stage06_client.py), written from the stage
// READMEs alone, must get every client check of their stage against the reference server, with
// nothing failed and nothing skipped (issue 20: "all suites pass ... on the independent
// implementations in tests/fixtures"). Each grading runs grading/grade.ts as a child process,
// exactly as an instructor would. The clients encode and decode Opus with the system's libopus
// (libopus.so.0, through ctypes; .ci/run installs libopus0 where it is missing): without it they
// cannot work, and this file fails, first on the test that says so.
import t from 'tap';
import { repoRoot } from '../conformance/harness/checks.ts';
import { runCommand } from '../conformance/harness/run-command.ts';
import { expectFullClientGrade } from './support/independent-grading.ts';

t.setTimeout(600_000); // two gradings one after the other, each ~30-60 s on a busy 2-core machine, and any re-grading of a SKIP

t.test('libopus is installed: the Python clients load libopus.so.0 through ctypes', async (t) => {
  const loaded = await runCommand('python3', ['-c', 'import ctypes; ctypes.CDLL("libopus.so.0")'], { cwd: repoRoot, timeoutMs: 20_000 });
  t.equal(loaded.exitCode, 0, 'libopus.so.0 loads (missing: apt-get install libopus0, as .ci/run does)', { stderr: loaded.stderr });
});

for (const id of ['05', '06'] as const) {
  const file = `stage${id}_client.py`;
  t.test(`stage ${id}: the independent Python client (${file}) passes every client check against the reference server`, async (t) => {
    await expectFullClientGrade(t, id, file, 200_000);
  });
}
