// The stage 03 and 04 client checks, graded on clients written in another language from the
// READMEs alone (tests/fixtures/python/stage03_client.py, stage04_client.py: Python, standard
// library only, without reading the reference code). Each must pass every client check of its
// stage against the reference server, as an instructor would grade a student's client: this proves
// the README is enough to write a passing client, and that no client check leans on what only the
// reference client happens to do.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../conformance/harness/checks.ts';
import { runCommand, shellQuote, type CommandResult } from '../conformance/harness/run-command.ts';
import { stage } from '../conformance/stages.ts';
import type { GradeReport } from '../grading/report.ts';

t.setTimeout(300_000);

const scratch = mkdtempSync(join(tmpdir(), 'independent-clients-'));
t.teardown(() => rmSync(scratch, { recursive: true, force: true }));

/** Runs the grader with `args` (plus --json), exactly as an instructor would, and returns its exit code, output and report. */
async function grade(args: string[]): Promise<{ run: CommandResult; report: GradeReport | null }> {
  const json = join(scratch, `report-${args.join('-').replace(/[^\w-]/g, '_').slice(0, 40)}.json`);
  const run = await runCommand(`"${process.execPath}" --import tsx grading/grade.ts`, [...args, '--json', json], {
    cwd: repoRoot,
    env: { ...process.env, INIT_CWD: repoRoot, PYTHONDONTWRITEBYTECODE: '1' }, // no __pycache__ in the tree
    timeoutMs: 150_000,
  });
  let report: GradeReport | null = null;
  try {
    report = JSON.parse(readFileSync(json, 'utf8')) as GradeReport;
  } catch {
    // no report: the assertions below fail and show the output
  }
  return { run, report };
}

for (const [id, file] of [
  ['03', 'stage03_client.py'],
  ['04', 'stage04_client.py'],
] as const) {
  // stage() throws for a missing stage: a lost stage fails this file, never skips it.
  const clientChecks = stage(id).checks.filter((check) => check.subject === 'client').map((check) => check.name);

  t.test(`stage ${id}: the Python client written from the README passes every client check`, async (t) => {
    const client = `python3 ${shellQuote(join(repoRoot, 'tests', 'fixtures', 'python', file))}`;
    const { run, report } = await grade(['--stage', id, '--client', client]);
    const output = { stdout: run.stdout, stderr: run.stderr }; // shown only when an assertion fails
    t.equal(run.exitCode, 0, 'exit 0 when every check passes', output);
    t.ok(clientChecks.length > 0, `stage ${id} has client checks`);
    t.equal(report?.stage, id);
    t.match(report?.client, new RegExp(file.replace('.', '\\.')), 'the report names the client graded');
    t.equal(report?.server, null, 'no server was graded: the reference served the client checks');
    t.same(
      report?.checks.map((check) => check.name),
      clientChecks,
      'every client check of the stage ran, in order, and nothing else',
    );
    t.same(
      report?.checks.filter((check) => !check.passed).map((check) => check.name),
      [],
      'none failed',
      output,
    );
    t.same(
      report?.checks.filter((check) => check.skipped !== undefined).map((check) => `${check.name}: ${check.skipped}`),
      [],
      'none skipped',
    );
    t.equal(report?.passed, clientChecks.length);
    t.equal(report?.total, clientChecks.length);
  });
}
