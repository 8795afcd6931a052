// The checks of every stage, tested: each mutant of a reference server or client (tests/fixtures/mutants.ts:
// the reference with one planted bug) is graded by grading/grade.ts as a child process, exactly as
// an instructor would grade a student, and must fail the check meant to catch its bug, with a
// message that names the bug, while the other checks it runs still pass.
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findStage } from '../conformance/stages.ts';
import { hostileChecks } from '../conformance/hostile/hostile-checks.ts';
import { slowConsumer } from '../conformance/hostile/slow-consumer-check.ts';
import type { CheckReport, GradeReport } from '../grading/report.ts';
import { mutants, type Mutant } from './fixtures/mutants.ts';
import { repoRoot } from '../conformance/harness/checks.ts';
import { buildMutant } from './support/mutant.ts';
import { runCommand, type CommandResult } from '../conformance/harness/run-command.ts';

// MUTANT_STAGES=07,08 grades only those stages' mutants (while working on a stage), MUTANT_NAMES=a,b
// only the mutants so named (while writing one); both given, a mutant must match both. CI grades them all.
const onlyStages = process.env.MUTANT_STAGES?.split(',').map((id) => id.trim().padStart(2, '0'));
const onlyNames = process.env.MUTANT_NAMES?.split(',').map((name) => name.trim());
const graded = mutants.filter((mutant) => (onlyStages === undefined || onlyStages.includes(mutant.stage)) && (onlyNames === undefined || onlyNames.includes(mutant.name)));

// Each grading takes 5-40 s (the slow-consumer and sender-stalled mutants about a minute), two at a
// time: the limit grows with the corpus, so adding a mutant never makes the file time out.
t.setTimeout(Math.max(480_000, graded.length * 20_000));

const scratch = mkdtempSync(join(tmpdir(), 'grading-mutants-'));
t.teardown(() => rmSync(scratch, { recursive: true, force: true }));

// Two gradings at a time (each runs a grader and a server): the checks pace audio at real time
// and have deadlines of a second, which a 2-core machine running more at once could miss.
const MAX_AT_ONCE = 2;
let running = 0;
const queue: (() => void)[] = [];
async function inTurn<T>(work: () => Promise<T>): Promise<T> {
  if (running >= MAX_AT_ONCE) await new Promise<void>((resolve) => queue.push(resolve));
  running++;
  try {
    return await work();
  } finally {
    running--;
    queue.shift()?.();
  }
}

interface Grading {
  run: CommandResult;
  report: GradeReport | null;
}

/** Gradings of a mutant whose catching check said SKIP (the machine was too busy to judge), before its test sees the SKIP. */
const SKIP_ATTEMPTS = 3;

/** Whether a check that must catch the mutant said SKIP (could not measure on this machine, now). */
function catchingCheckSkipped(mutant: Mutant, report: GradeReport | null): boolean {
  const checks = [...(report?.checks ?? []), ...(report?.robustness?.checks ?? [])];
  return mutant.caughtBy.some(({ check: start }) => checks.find((c) => c.name.startsWith(start))?.skipped !== undefined);
}

/**
 * Builds the mutant, grades it with its --only selection (again, up to SKIP_ATTEMPTS in all, while
 * a check that must catch it says SKIP: a busy machine, not the mutant), and deletes it again.
 */
function gradeMutant(mutant: Mutant): Promise<Grading> {
  return inTurn(async () => {
    const built = buildMutant(mutant);
    try {
      let grading: Grading;
      let attempt = 0;
      do grading = await gradeBuilt(mutant, built, ++attempt);
      while (attempt < SKIP_ATTEMPTS && catchingCheckSkipped(mutant, grading.report));
      return grading;
    } finally {
      built.cleanup();
    }
  });
}

/** One grading of a built mutant (the JSON report of each attempt in its own file). */
async function gradeBuilt(mutant: Mutant, built: ReturnType<typeof buildMutant>, attempt: number): Promise<Grading> {
  const json = join(scratch, `${mutant.name}-${attempt}.json`);
  const run = await runCommand(`"${process.execPath}" --import tsx grading/grade.ts`, ['--stage', mutant.stage, ...(mutant.subject === 'client' ? ['--client', built.clientCommand] : ['--server', built.serverCommand]), '--only', mutant.only, ...(mutant.robustness === undefined ? ['--no-robustness'] : mutant.robustness === 'with-slow-consumer' ? ['--slow-consumer'] : []), ...(mutant.slow ? ['--slow'] : []), '--json', json], {
    cwd: repoRoot,
    env: { ...process.env, INIT_CWD: repoRoot },
    timeoutMs: 120_000,
  });
  let report: GradeReport | null = null;
  try {
    report = JSON.parse(readFileSync(json, 'utf8')) as GradeReport;
  } catch {
    // no report: the test says so
  }
  return { run, report };
}

/** The checks of the mutant's stage and subject that its --only selects, as the grader plans them (the robustness section's last). */
function selectedChecks(mutant: Mutant): string[] {
  const stage = findStage(mutant.stage)!;
  const hostile = mutant.robustness === undefined ? [] : [...hostileChecks(stage.wire!), ...(mutant.robustness === 'with-slow-consumer' ? [slowConsumer(stage.wire!)] : [])];
  return [...stage.checks, ...(mutant.slow ? stage.slowChecks ?? [] : []), ...hostile].filter((check) => (check.subject ?? 'server') === (mutant.subject ?? 'server') && check.name.includes(mutant.only)).map((check) => check.name);
}

const failureText = (check: CheckReport | undefined) => (check?.failure ? Object.values(check.failure).join('\n') : '(no failure recorded)');

// Start every grading now; the tests below await them in turn.
const gradings = new Map(graded.map((mutant) => {
  const grading = gradeMutant(mutant);
  grading.catch(() => {}); // a mutant that cannot be built fails its own test below, not the whole file
  return [mutant.name, grading];
}));

t.test('MUTANT_NAMES names only mutants that exist (a misspelt name must not grade nothing quietly)', async (t) => {
  const unknown = (onlyNames ?? []).filter((name) => !mutants.some((mutant) => mutant.name === name));
  t.same(unknown, [], 'every name in MUTANT_NAMES is a mutant of tests/fixtures/mutants.ts');
});

t.test('every mutant selects exactly the checks it names: the ones that must catch it and the ones that must pass', async (t) => {
  t.equal(new Set(mutants.map((mutant) => mutant.name)).size, mutants.length, 'mutant names are unique (they name the folders)');
  for (const mutant of mutants) {
    const selected = selectedChecks(mutant);
    const named = [...mutant.caughtBy.map((caught) => caught.check), ...mutant.stillPasses];
    const matchedOnce = named.every((start) => selected.filter((name) => name.startsWith(start)).length === 1);
    t.ok(matchedOnce, `${mutant.name}: each named check is one of the checks --only "${mutant.only}" selects`, { selected, named });
    t.equal(selected.length, named.length, `${mutant.name}: and every selected check is named`, { selected, named });
    t.ok(mutant.caughtBy.length >= 1, `${mutant.name}: some check must catch it`);
  }
});

for (const mutant of graded) {
  t.test(`${mutant.stage} ${mutant.name}: ${mutant.why}`, async (t) => {
    const { run, report } = await gradings.get(mutant.name)!;
    t.equal(run.exitCode, 1, 'the grader exits 1: a check failed', { stdout: run.stdout, stderr: run.stderr });
    t.ok(report, 'the grader wrote its JSON report');
    const checks = [...(report?.checks ?? []), ...(report?.robustness?.checks ?? [])];
    t.same(checks.map((check) => check.name), selectedChecks(mutant), 'the selected checks ran, in order');
    for (const { check: start, says } of mutant.caughtBy) {
      const check = checks.find((c) => c.name.startsWith(start));
      t.equal(check?.passed, false, `"${start}" fails`);
      t.match(failureText(check), says, `"${start}" says what is wrong`);
      t.notMatch(check?.failure?.summary ?? '', /the check itself crashed|did not finish within|server did not start/, 'a real finding, not a crash, a hang or a server that would not start');
    }
    for (const start of mutant.stillPasses) {
      const check = checks.find((c) => c.name.startsWith(start));
      t.equal(check?.passed, true, `"${start}" still passes: the mutant is broken only where it says`, { failure: failureText(check) });
    }
  });
}

t.test('building a mutant fails loudly when its text is not in the reference exactly once, and leaves nothing behind', async (t) => {
  const base = mutants.find((mutant) => mutant.file === '03-multiuser/server.ts')!; // the messages below name its file
  const folder = join(repoRoot, `.mutant-${process.pid}-stale`);
  t.throws(() => buildMutant({ ...base, name: 'stale', find: 'text that the reference server does not contain' }), /mutant "stale": the text to find occurs 0 times in 03-multiuser\/server\.ts \(it must occur exactly once\)/);
  t.notOk(existsSync(folder), 'no folder left after a failed build');
  t.throws(() => buildMutant({ ...base, name: 'stale', find: 'import ' }), /occurs \d+ times/, 'ambiguous text (found more than once) fails too');
  t.notOk(existsSync(folder));
  t.throws(() => buildMutant({ ...base, name: 'stale', file: 'conformance/harness/checks.ts' }), /neither in 03-multiuser\/ nor in shared\//, 'only stage and shared files can be mutated');
});

t.test('a built mutant is the stage with one edit; a shared file is edited in a copy that the stage imports', async (t) => {
  const shared = mutants.find((mutant) => mutant.file.startsWith('shared/'))!;
  const wrap = { ...shared, name: 'layout' }; // its own folder: the graded mutant may be running
  const built = buildMutant(wrap);
  t.teardown(built.cleanup);
  t.match(built.folder, new RegExp(`^${repoRoot.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/\\.mutant-${process.pid}-${wrap.name}$`), 'a folder at the repository root');
  const copy = readFileSync(join(built.folder, 'mixer.ts'), 'utf8');
  t.ok(copy.includes(wrap.replace) && !copy.includes(wrap.find), 'the copy of shared/mixer.ts carries the edit');
  t.match(copy, "from '#shared/audio/format.ts'", 'and still imports the real shared code');
  t.ok(readFileSync(join(repoRoot, 'shared', 'mixer.ts'), 'utf8').includes(wrap.find), 'the real shared/mixer.ts is untouched');
  t.match(readFileSync(join(built.folder, 'server.ts'), 'utf8'), "import { RoomMixer } from './mixer.ts';", 'the server imports the copy');
  t.match(built.serverCommand, new RegExp(`--import tsx \\.mutant-${process.pid}-${wrap.name}/main\\.ts server --host 127\\.0\\.0\\.1 --port \\{port\\}$`));
  t.match(built.clientCommand, new RegExp(`--import tsx \\.mutant-${process.pid}-${wrap.name}/main\\.ts client$`), 'and as a client, for the client mutants');
  built.cleanup();
  t.notOk(existsSync(built.folder), 'cleanup deletes the folder');
});

t.test('mutant folders are neither committed nor type-checked', async (t) => {
  t.match(readFileSync(join(repoRoot, '.gitignore'), 'utf8'), /^\.mutant-\*\/$/m, '.gitignore lists .mutant-*/');
  const include = (JSON.parse(readFileSync(join(repoRoot, 'tsconfig.json'), 'utf8')) as { include: string[] }).include;
  t.ok(include.every((entry) => /^[\w-]+$/.test(entry)), `tsconfig includes named folders only, no pattern that could reach .mutant-*: ${include.join(', ')}`);
});
