// The grader passes correct clients it has never seen: the independent Python clients of stages
// 05 and 06 (tests/fixtures/python/stage05_client.py, stage06_client.py), written from the stage
// READMEs alone, must get every client check of their stage against the reference server, with
// nothing failed and nothing skipped (issue 20: "all suites pass ... on the independent
// implementations in tests/fixtures"). Each grading runs grading/grade.ts as a child process,
// exactly as an instructor would. The clients encode and decode Opus with the system's libopus
// (libopus.so.0, through ctypes; .ci/run installs libopus0 where it is missing): without it they
// cannot work, and this file fails, first on the test that says so.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../conformance/harness/checks.ts';
import { runCommand, shellQuote, type CommandResult } from '../conformance/harness/run-command.ts';
import { stage } from '../conformance/stages.ts';
import type { CheckReport, GradeReport } from '../grading/report.ts';

t.setTimeout(240_000); // two gradings at once, each ~30-60 s on a busy 2-core machine

const pythonClient = (file: string) => `python3 ${shellQuote(join(repoRoot, 'tests', 'fixtures', 'python', file))}`;

const scratch = mkdtempSync(join(tmpdir(), 'independent-clients-'));
t.teardown(() => rmSync(scratch, { recursive: true, force: true }));

interface Grading {
  run: CommandResult;
  /** null when the grader wrote no JSON. */
  report: GradeReport | null;
}

/** Runs the grader with `args` (plus --json) and returns what it printed, its exit code and its report. */
async function grade(args: string[], name: string): Promise<Grading> {
  const json = join(scratch, `${name}.json`);
  const run = await runCommand(`"${process.execPath}" --import tsx grading/grade.ts`, [...args, '--json', json], {
    cwd: repoRoot,
    env: { ...process.env, INIT_CWD: repoRoot, PYTHONDONTWRITEBYTECODE: '1' }, // no __pycache__ in the tree
    timeoutMs: 200_000,
  });
  let report: GradeReport | null = null;
  try {
    report = JSON.parse(readFileSync(json, 'utf8')) as GradeReport;
  } catch {
    // no report: the tests below fail on it
  }
  return { run, report };
}

const notPassed = (checks: CheckReport[]) => checks.filter((check) => !check.passed).map((check) => `${check.name}: ${check.failure?.summary ?? '(no failure recorded)'}`);
const skipped = (checks: CheckReport[]) => checks.filter((check) => check.skipped !== undefined).map((check) => `${check.name}: ${check.skipped}`);

t.test('libopus is installed: the Python clients load libopus.so.0 through ctypes', async (t) => {
  const loaded = await runCommand('python3', ['-c', 'import ctypes; ctypes.CDLL("libopus.so.0")'], { cwd: repoRoot, timeoutMs: 20_000 });
  t.equal(loaded.exitCode, 0, 'libopus.so.0 loads (missing: apt-get install libopus0, as .ci/run does)', { stderr: loaded.stderr });
});

const clients = [
  { id: '05', file: 'stage05_client.py' },
  { id: '06', file: 'stage06_client.py' },
] as const;

// Both gradings start now and overlap; the tests below await them.
const gradings = clients.map(({ id, file }) => ({ id, file, result: grade(['--stage', id, '--client', pythonClient(file)], `stage-${id}`) }));

for (const { id, file, result } of gradings) {
  t.test(`stage ${id}: the independent Python client (${file}) passes every client check against the reference server`, async (t) => {
    const { run, report } = await result;
    t.equal(run.exitCode, 0, 'exit 0 when every check passes', { output: run.stdout, stderr: run.stderr });
    t.ok(report, 'the grader wrote its JSON report');
    if (!report) return;
    t.equal(report.stage, id);
    t.match(report.client, new RegExp(file.replace('.', '\\.')), 'the report names the client graded');
    t.equal(report.server, null, 'no server was graded: the reference served the client checks');

    // stage() throws for a missing stage: a lost stage fails this file, never skips it.
    const clientChecks = stage(id).checks.filter((check) => check.subject === 'client').map((check) => check.name);
    t.ok(clientChecks.length >= 5, `stage ${id} has its client checks (${clientChecks.length})`);
    t.same(report.checks.map((check) => check.name), clientChecks, 'every client check of the stage ran, in order');
    t.same(notPassed(report.checks), [], 'no client check failed');
    t.same(skipped(report.checks), [], 'no client check was skipped');
    t.equal(report.passed, clientChecks.length);
    t.equal(report.skipped, 0);
  });
}
