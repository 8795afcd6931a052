// The grader passes correct servers it has never seen: the independent Python servers of stages
// 05 and 06 (tests/fixtures/python/stage05_server.py, stage06_server.py), written from the stage
// READMEs alone, must get every server check and every robustness check of their stage, with
// nothing failed and nothing skipped (issue 20: "all suites pass ... on the independent
// implementations in tests/fixtures"). Each grading runs grading/grade.ts as a child process,
// exactly as an instructor would. The --slow check (session ids wrap) is left out: ~65 000
// connections take too long for every CI run; `npm run grade -- --stage 05 --slow --server ...`
// runs it by hand.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../conformance/harness/checks.ts';
import { runCommand, shellQuote, type CommandResult } from '../conformance/harness/run-command.ts';
import { stage } from '../conformance/stages.ts';
import type { CheckReport, GradeReport } from '../grading/report.ts';
import { parseCommandLine } from '../grading/options.ts';
import { planGrading } from '../grading/plan.ts';

t.setTimeout(240_000); // two gradings at once, each ~30-60 s on a busy 2-core machine

const pythonServer = (file: string) => `python3 ${shellQuote(join(repoRoot, 'tests', 'fixtures', 'python', file))} --host 127.0.0.1 --port {port}`;

const scratch = mkdtempSync(join(tmpdir(), 'independent-servers-'));
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

/** The robustness checks the grader plans for these arguments (the hostile cases of the stage). */
function plannedRobustness(args: string[]): string[] {
  const parsed = parseCommandLine(args, {});
  if (!('options' in parsed)) throw new Error(`not a plan: ${JSON.stringify(parsed)}`);
  return planGrading(parsed.options).robustnessChecks.map((check) => check.name);
}

const notPassed = (checks: CheckReport[]) => checks.filter((check) => !check.passed).map((check) => `${check.name}: ${check.failure?.summary ?? '(no failure recorded)'}`);
const skipped = (checks: CheckReport[]) => checks.filter((check) => check.skipped !== undefined).map((check) => `${check.name}: ${check.skipped}`);

const servers = [
  { id: '05', file: 'stage05_server.py' },
  { id: '06', file: 'stage06_server.py' },
] as const;

// Both gradings start now and overlap; the tests below await them.
const gradings = servers.map(({ id, file }) => {
  const args = ['--stage', id, '--server', pythonServer(file)];
  return { id, file, args, result: grade(args, `stage-${id}`) };
});

for (const { id, file, args, result } of gradings) {
  t.test(`stage ${id}: the independent Python server (${file}) passes every server and robustness check`, async (t) => {
    const { run, report } = await result;
    t.equal(run.exitCode, 0, 'exit 0 when every check passes', { output: run.stdout, stderr: run.stderr });
    t.ok(report, 'the grader wrote its JSON report');
    if (!report) return;
    t.equal(report.stage, id);
    t.match(report.server, new RegExp(file.replace('.', '\\.')), 'the report names the server graded');

    // stage() throws for a missing stage: a lost stage fails this file, never skips it.
    const serverChecks = stage(id).checks.filter((check) => (check.subject ?? 'server') === 'server').map((check) => check.name);
    t.ok(serverChecks.length >= 8, `stage ${id} has its server checks (${serverChecks.length})`);
    t.same(report.checks.map((check) => check.name), serverChecks, 'every server check of the stage ran, in order');
    t.same(notPassed(report.checks), [], 'no server check failed');
    t.same(skipped(report.checks), [], 'no server check was skipped');
    t.equal(report.passed, serverChecks.length);
    t.equal(report.skipped, 0);

    const robustness = plannedRobustness(args);
    t.ok(robustness.length >= 10, `the grade has a robustness section (${robustness.length} hostile checks)`);
    t.same(report.robustness?.checks.map((check) => check.name), robustness, 'every robustness check ran');
    t.same(notPassed(report.robustness?.checks ?? []), [], 'no robustness check failed');
    t.same(skipped(report.robustness?.checks ?? []), [], 'no robustness check was skipped');
    t.equal(report.robustness?.passed, robustness.length);
  });
}
