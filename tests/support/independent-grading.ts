// Grading the independent implementations (tests/fixtures/python/: servers and clients written
// from the stage READMEs alone, without the reference code) exactly as an instructor would: the
// grader runs as a child process and its JSON report is read. Issue 20 asks that every suite pass
// on them; the tests/independent-*.test.ts files hold each one to a full grade with these helpers.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { repoRoot } from '../../conformance/harness/checks.ts';
import { runCommand, shellQuote, type CommandResult } from '../../conformance/harness/run-command.ts';
import { stage } from '../../conformance/stages.ts';
import { parseCommandLine } from '../../grading/options.ts';
import { planGrading } from '../../grading/plan.ts';
import type { CheckReport, GradeReport } from '../../grading/report.ts';

const fixture = (file: string) => shellQuote(join(repoRoot, 'tests', 'fixtures', 'python', file));

/** The --server command of an independent Python server ({port} is the grader's). */
export const pythonServer = (file: string) => `python3 ${fixture(file)} --host 127.0.0.1 --port {port}`;

/** The --client command of an independent Python client (the grader appends --name, --host, --port ...). */
export const pythonClient = (file: string) => `python3 ${fixture(file)}`;

export interface Grading {
  run: CommandResult;
  /** null when the grader wrote no JSON. */
  report: GradeReport | null;
}

/**
 * Runs `npm run grade` with `args` (plus --json into a scratch folder) and returns its exit code,
 * output and report. PYTHONDONTWRITEBYTECODE: the fixtures import each other, and must leave no
 * __pycache__ in the tree.
 */
export async function grade(args: string[], timeoutMs: number): Promise<Grading> {
  const scratch = mkdtempSync(join(tmpdir(), 'independent-grading-'));
  try {
    const json = join(scratch, 'report.json');
    const run = await runCommand(`"${process.execPath}" --import tsx grading/grade.ts`, [...args, '--json', json], {
      cwd: repoRoot,
      env: { ...process.env, INIT_CWD: repoRoot, PYTHONDONTWRITEBYTECODE: '1' },
      timeoutMs,
    });
    let report: GradeReport | null = null;
    try {
      report = JSON.parse(readFileSync(json, 'utf8')) as GradeReport;
    } catch {
      // no report: the assertions fail on it and show the output
    }
    return { run, report };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** What failed or was skipped, one line each (an empty list is the full grade). */
const problems = (checks: CheckReport[]) =>
  checks.filter((check) => !check.passed || check.skipped !== undefined).map((check) => `${check.name}: ${check.skipped !== undefined ? `SKIP ${check.skipped}` : `FAIL ${check.failure?.summary ?? '(no failure recorded)'}`}`);

/** The robustness checks the grader plans for these arguments (the stage's hostile cases). */
function plannedRobustness(args: string[]): string[] {
  const parsed = parseCommandLine(args, {});
  if (!('options' in parsed)) throw new Error(`the grader refuses its own arguments: ${JSON.stringify(parsed)}`);
  return planGrading(parsed.options).robustnessChecks.map((check) => check.name);
}

/**
 * A full grade of a server: exit 0, every server check of the stage and every planned robustness
 * check ran, in order, none failed, none skipped. stage() throws for a missing stage, so a lost
 * stage fails the test, never skips it.
 */
export function expectFullServerGrade(t: Test, id: string, file: string, args: string[], { run, report }: Grading): void {
  const serverChecks = stage(id).checks.filter((check) => (check.subject ?? 'server') === 'server').map((check) => check.name);
  const robustness = plannedRobustness(args);
  t.equal(run.exitCode, 0, 'exit 0 when every check passes', { output: run.stdout, stderr: run.stderr });
  t.equal(report?.stage, id, 'the report is of this stage');
  t.match(report?.server, new RegExp(file.replace('.', '\\.')), 'the report names the server graded');
  t.ok(serverChecks.length >= 8, `stage ${id} has its server checks (${serverChecks.length})`);
  t.same(report?.checks.map((check) => check.name), serverChecks, 'every server check of the stage ran, in order');
  t.same(problems(report?.checks ?? []), [], 'no server check failed or was skipped');
  t.equal(report?.passed, serverChecks.length);
  t.ok(robustness.length >= 10, `the grade has a robustness section (${robustness.length} hostile checks)`);
  t.same(report?.robustness?.checks.map((check) => check.name), robustness, 'every robustness check ran');
  t.same(problems(report?.robustness?.checks ?? []), [], 'no robustness check failed or was skipped');
  t.equal(report?.robustness?.passed, robustness.length);
}

/** A full grade of a client against the reference server: exit 0, every client check of the stage ran, in order, none failed, none skipped. */
export function expectFullClientGrade(t: Test, id: string, file: string, { run, report }: Grading): void {
  const clientChecks = stage(id).checks.filter((check) => check.subject === 'client').map((check) => check.name);
  t.equal(run.exitCode, 0, 'exit 0 when every check passes', { output: run.stdout, stderr: run.stderr });
  t.equal(report?.stage, id, 'the report is of this stage');
  t.match(report?.client, new RegExp(file.replace('.', '\\.')), 'the report names the client graded');
  t.equal(report?.server, null, 'no server was graded: the reference served the client checks');
  t.ok(clientChecks.length >= 5, `stage ${id} has its client checks (${clientChecks.length})`);
  t.same(report?.checks.map((check) => check.name), clientChecks, 'every client check of the stage ran, in order, and nothing else');
  t.same(problems(report?.checks ?? []), [], 'no client check failed or was skipped');
  t.equal(report?.passed, clientChecks.length);
}
