// The grader passes a correct stage 07 client it has never seen: the independent Python client
// tests/fixtures/python/stage07_client.py, written from 07-chat-files/README.md alone (extending
// stage06_client.py), must get every client check of stage 07 against the reference server, with
// nothing failed and nothing skipped (issue 20: "all suites pass ... on the independent
// implementations in tests/fixtures"). The grading runs grading/grade.ts as a child process,
// exactly as an instructor would. The client encodes and decodes Opus with the system's libopus
// (libopus.so.0, through ctypes; .ci/run installs libopus0 where it is missing): without it the
// client cannot work, and this file fails, first on the test that says so.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../conformance/harness/checks.ts';
import { runCommand, shellQuote } from '../conformance/harness/run-command.ts';
import { stage } from '../conformance/stages.ts';
import type { CheckReport, GradeReport } from '../grading/report.ts';

t.setTimeout(240_000); // one grading, ~50-90 s on a busy 2-core machine

const file = 'stage07_client.py';
const client = `python3 ${shellQuote(join(repoRoot, 'tests', 'fixtures', 'python', file))}`;

const scratch = mkdtempSync(join(tmpdir(), 'independent-client-07-'));
t.teardown(() => rmSync(scratch, { recursive: true, force: true }));

const notPassed = (checks: CheckReport[]) => checks.filter((check) => !check.passed).map((check) => `${check.name}: ${check.failure?.summary ?? '(no failure recorded)'}`);
const skipped = (checks: CheckReport[]) => checks.filter((check) => check.skipped !== undefined).map((check) => `${check.name}: ${check.skipped}`);

t.test('libopus is installed: the Python client loads libopus.so.0 through ctypes', async (t) => {
  const loaded = await runCommand('python3', ['-c', 'import ctypes; ctypes.CDLL("libopus.so.0")'], { cwd: repoRoot, timeoutMs: 20_000 });
  t.equal(loaded.exitCode, 0, 'libopus.so.0 loads (missing: apt-get install libopus0, as .ci/run does)', { stderr: loaded.stderr });
});

t.test(`stage 07: the independent Python client (${file}) passes every client check against the reference server`, async (t) => {
  const json = join(scratch, 'stage-07.json');
  const run = await runCommand(`"${process.execPath}" --import tsx grading/grade.ts`, ['--stage', '07', '--client', client, '--json', json], {
    cwd: repoRoot,
    env: { ...process.env, INIT_CWD: repoRoot, PYTHONDONTWRITEBYTECODE: '1' }, // no __pycache__ in the tree
    timeoutMs: 200_000,
  });
  t.equal(run.exitCode, 0, 'exit 0 when every check passes', { output: run.stdout, stderr: run.stderr });
  let report: GradeReport | null = null;
  try {
    report = JSON.parse(readFileSync(json, 'utf8')) as GradeReport;
  } catch {
    // no report: the next assertion fails on it
  }
  t.ok(report, 'the grader wrote its JSON report');
  if (!report) return;
  t.equal(report.stage, '07');
  t.match(report.client, /stage07_client\.py/, 'the report names the client graded');
  t.equal(report.server, null, 'no server was graded: the reference served the client checks');

  // stage() throws for a missing stage: a lost stage fails this file, never skips it. Stage 07's
  // client checks include stage 06's, on the 07 wire.
  const clientChecks = stage('07').checks.filter((check) => check.subject === 'client').map((check) => check.name);
  t.ok(clientChecks.length >= 10, `stage 07 has its client checks, its own and stage 06's (${clientChecks.length})`);
  t.same(report.checks.map((check) => check.name), clientChecks, 'every client check of the stage ran, in order');
  t.same(notPassed(report.checks), [], 'no client check failed');
  t.same(skipped(report.checks), [], 'no client check was skipped');
  t.equal(report.passed, clientChecks.length);
  t.equal(report.skipped, 0);
});
