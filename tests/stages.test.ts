// The stage list (conformance/stages.ts) is the one registry of stages: each entry must point at a
// real stage folder and be run by its own tap suite, so a stage added there is graded AND tested.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot, withServerOptions } from '../conformance/harness/checks.ts';
import { parseCommandLine } from '../grading/options.ts';
import { planGrading } from '../grading/plan.ts';
import { findStage, stage, stages, wireStages } from '../conformance/stages.ts';

t.test('ids are two digits, unique and in order; every stage has checks', async (t) => {
  t.same(stages.map((entry) => entry.id), [...new Set(stages.map((entry) => entry.id))].sort(), 'unique, ascending');
  for (const entry of stages) {
    t.match(entry.id, /^\d\d$/, `${entry.id}: two digits`);
    t.ok(entry.folder.startsWith(`${entry.id}-`), `${entry.folder} starts with its id`);
    t.ok(entry.checks.length > 0, `${entry.id}: has checks`);
  }
});

t.test('every stage has its folder (main.ts, README.md) and a suite that runs stage(ID)', async (t) => {
  for (const entry of stages) {
    t.ok(existsSync(join(repoRoot, entry.folder, 'main.ts')), `${entry.folder}/main.ts exists`);
    t.ok(existsSync(join(repoRoot, entry.folder, 'README.md')), `${entry.folder}/README.md exists`);
    const suite = join(repoRoot, 'tests', `${entry.folder}.test.ts`);
    t.ok(existsSync(suite), `tests/${entry.folder}.test.ts exists`);
    if (existsSync(suite)) t.match(readFileSync(suite, 'utf8'), `runChecksWithTap(t, stage('${entry.id}'))`, `tests/${entry.folder}.test.ts runs stage('${entry.id}')`);
  }
});

t.test('look-ups', async (t) => {
  t.equal(findStage('4')?.folder, '04-rooms', '"4" finds 04');
  t.equal(findStage('99'), undefined, 'an unknown id is undefined');
  t.throws(() => stage('99'), /no stage 99/, 'stage() throws on an unknown id');
  t.same(wireStages.map((entry) => entry.id), ['02', '03', '04', '05', '06', '07', '08'], 'stages 02-08 have a framed wire for the hostile cases');
});

t.test("a stage's server options (08: --ring-timeout 2) go to every server the grader starts, the student's too", async (t) => {
  t.same(stage('08').serverOptions, ['--ring-timeout', '2'], 'the 08 README: the grader runs the server with --ring-timeout 2');
  t.same(stages.filter((entry) => entry.serverOptions !== undefined).map((entry) => entry.id), ['08'], 'no other stage has any');
  t.equal(withServerOptions('python3 s.py --port {port}', ['--ring-timeout', '2']), 'python3 s.py --port {port} --ring-timeout 2', 'appended (shell-quoted where needed)');
  t.equal(withServerOptions('python3 s.py --port {port}'), 'python3 s.py --port {port}', 'nothing to append: the command unchanged');
  const plan = (...args: string[]) => {
    const parsed = parseCommandLine(args, {});
    if (!('options' in parsed)) throw new Error(`not a plan: ${JSON.stringify(parsed)}`);
    return planGrading(parsed.options);
  };
  t.match(plan('--stage', '08').serverCommand, /08-calls\/main\.ts server --host 127\.0\.0\.1 --port \{port\} --ring-timeout 2$/, 'the reference');
  t.equal(plan('--stage', '08', '--server', 'python3 s.py --port {port}').serverCommand, 'python3 s.py --port {port} --ring-timeout 2', "a student's --server");
  t.equal(plan('--stage', '07', '--server', 'python3 s.py --port {port}').serverCommand, 'python3 s.py --port {port}', 'stage 07: nothing added');
});
