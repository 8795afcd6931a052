// The grader on independent servers of stages 03 and 04: Python (standard library only), written
// from the stage READMEs without the reference code (tests/fixtures/python/stage03_server.py,
// stage04_server.py). Each must get a full grade, robustness section and slow consumer included,
// exactly as an instructor would run it: grading/grade.ts as a child process, its JSON report read.
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

// Two gradings one after the other (each about a minute and a half with the slow consumer): run
// side by side on a busy 2-core machine, their timing checks would judge the machine, not the server.
t.setTimeout(600_000);

const pythonServer = (file: string) => `python3 ${shellQuote(join(repoRoot, 'tests', 'fixtures', 'python', file))} --host 127.0.0.1 --port {port}`;

const scratch = mkdtempSync(join(tmpdir(), 'independent-servers-'));
t.teardown(() => rmSync(scratch, { recursive: true, force: true }));

interface Grading {
  run: CommandResult;
  /** null when the grader wrote no JSON. */
  report: GradeReport | null;
}

async function grade(args: string[]): Promise<Grading> {
  const json = join(scratch, `report-${args.join('-').replace(/[^\w-]+/g, '_').slice(0, 60)}.json`);
  const run = await runCommand(`"${process.execPath}" --import tsx grading/grade.ts`, [...args, '--json', json], {
    cwd: repoRoot,
    env: { ...process.env, INIT_CWD: repoRoot, PYTHONDONTWRITEBYTECODE: '1' }, // no __pycache__ in the tree
    timeoutMs: 280_000,
  });
  let report: GradeReport | null = null;
  try {
    report = JSON.parse(readFileSync(json, 'utf8')) as GradeReport;
  } catch {
    // no report: the assertions below say so
  }
  return { run, report };
}

const problems = (checks: CheckReport[]) =>
  checks.filter((check) => !check.passed || check.skipped !== undefined).map((check) => `${check.name}: ${check.skipped !== undefined ? `SKIP ${check.skipped}` : `FAIL ${check.failure?.summary ?? ''}`}`);

for (const [id, file] of [['03', 'stage03_server.py'], ['04', 'stage04_server.py']] as const) {
  t.test(`stage ${id}: the independent Python server (${file}) passes every server check and every robustness check`, async (t) => {
    // stage() throws for a missing stage: a lost stage fails this file, never skips it.
    const serverChecks = stage(id).checks.filter((check) => (check.subject ?? 'server') === 'server').map((check) => check.name);
    const args = ['--stage', id, '--slow-consumer', '--server', pythonServer(file)];
    const parsed = parseCommandLine(args, {});
    if (!('options' in parsed)) throw new Error(`the grader refuses its own arguments: ${JSON.stringify(parsed)}`);
    const robustnessChecks = planGrading(parsed.options).robustnessChecks.map((check) => check.name);
    t.ok(serverChecks.length >= 10, `stage ${id} has its server checks (${serverChecks.length})`);
    t.ok(robustnessChecks.some((name) => name.includes('never reads')), 'the robustness section includes the slow consumer');

    const { run, report } = await grade(args);
    t.equal(run.exitCode, 0, run.exitCode === 0 ? 'exit 0: every check passed' : `exit 0 when every check passes; output:\n${run.stdout}\n${run.stderr}`);
    t.equal(report?.stage, id, 'the report is of this stage');
    t.match(report?.server, new RegExp(file.replace('.', '\\.')), 'the report names the server graded');
    t.same(report?.checks.map((check) => check.name), serverChecks, 'every server check of the stage ran, in order');
    t.same(problems(report?.checks ?? []), [], 'no server check failed or skipped');
    t.equal(report?.skipped, 0, 'the report counts no SKIP');
    t.same(report?.robustness?.checks.map((check) => check.name), robustnessChecks, 'every robustness check ran, the slow consumer included');
    t.same(problems(report?.robustness?.checks ?? []), [], 'no robustness check failed or skipped');
    t.equal(report?.robustness?.skipped, 0, 'the robustness section counts no SKIP');
  });
}
