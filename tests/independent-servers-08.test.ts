// The grader passes a correct stage 08 server it has never seen: the independent Python server
// (tests/fixtures/python/stage08_server.py, extending stage07_server.py), written from
// 08-calls/README.md alone, must get every server check of the stage (stage 08's directory, call,
// relay and presence checks, and stage 06's voice checks and stage 05's flood window on the 08
// wire) and every robustness check, with nothing failed and nothing skipped (issue 20: "all suites
// pass ... on the independent implementations in tests/fixtures"). The grading runs
// grading/grade.ts as a child process, exactly as an instructor would; it appends
// --ring-timeout 2 to the server command. The --slow checks (the default 30 s ring, call ids and
// session ids burnt through to their wrap) are left out: they take minutes on a busy machine;
// `npm run grade -- --stage 08 --slow --server ...` runs them by hand.
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

t.setTimeout(240_000); // one grading, ~75-80 s on a 2-core machine (more when it is busy)

const file = 'stage08_server.py';
const serverCommand = `python3 ${shellQuote(join(repoRoot, 'tests', 'fixtures', 'python', file))} --host 127.0.0.1 --port {port}`;
const args = ['--stage', '08', '--server', serverCommand];

const scratch = mkdtempSync(join(tmpdir(), 'independent-server-08-'));
t.teardown(() => rmSync(scratch, { recursive: true, force: true }));

interface Grading {
  run: CommandResult;
  /** null when the grader wrote no JSON. */
  report: GradeReport | null;
}

/** Runs the grader with `args` (plus --json) and returns what it printed, its exit code and its report. */
async function grade(): Promise<Grading> {
  const json = join(scratch, 'stage-08.json');
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
function plannedRobustness(): string[] {
  const parsed = parseCommandLine(args, {});
  if (!('options' in parsed)) throw new Error(`not a plan: ${JSON.stringify(parsed)}`);
  return planGrading(parsed.options).robustnessChecks.map((check) => check.name);
}

const notPassed = (checks: CheckReport[]) => checks.filter((check) => !check.passed).map((check) => `${check.name}: ${check.failure?.summary ?? '(no failure recorded)'}`);
const skipped = (checks: CheckReport[]) => checks.filter((check) => check.skipped !== undefined).map((check) => `${check.name}: ${check.skipped}`);

t.test(`stage 08: the independent Python server (${file}) passes every server and robustness check`, async (t) => {
  const { run, report } = await grade();
  t.equal(run.exitCode, 0, 'exit 0 when every check passes', { output: run.stdout, stderr: run.stderr });
  t.ok(report, 'the grader wrote its JSON report');
  if (!report) return;
  t.equal(report.stage, '08');
  t.match(report.server, /stage08_server\.py/, 'the report names the server graded');

  // stage() throws for a missing stage: a lost stage fails this file, never skips it. The --slow
  // checks (stage('08').slowChecks) are not run without --slow.
  const serverChecks = stage('08').checks.filter((check) => (check.subject ?? 'server') === 'server').map((check) => check.name);
  t.ok(serverChecks.length >= 20, `stage 08 has its server checks, its own, stage 06's and stage 05's flood window (${serverChecks.length})`);
  t.same(report.checks.map((check) => check.name), serverChecks, 'every server check of the stage ran, in order');
  t.same(notPassed(report.checks), [], 'no server check failed');
  t.same(skipped(report.checks), [], 'no server check was skipped');
  t.equal(report.passed, serverChecks.length);
  t.equal(report.skipped, 0);

  const robustness = plannedRobustness();
  t.ok(robustness.length >= 10, `the grade has a robustness section (${robustness.length} hostile checks)`);
  t.same(report.robustness?.checks.map((check) => check.name), robustness, 'every robustness check ran');
  t.same(notPassed(report.robustness?.checks ?? []), [], 'no robustness check failed');
  t.same(skipped(report.robustness?.checks ?? []), [], 'no robustness check was skipped');
  t.equal(report.robustness?.passed, robustness.length);
});
