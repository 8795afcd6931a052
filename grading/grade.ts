// npm run grade -- --stage NN [--server "CMD {port}"] [--client "CMD"] [--json FILE] [--check-setup]
// Grades a server and/or a client written in any language, by running a stage's checks against
// the commands given. Prints PASS/FAIL per check and a score; exit 0 only when every check passes.
import { writeFileSync } from 'node:fs';
import { CheckRunner, type CheckOutcome } from '../conformance/harness/checks.ts';
import { USAGE, parseCommandLine, type GradeOptions } from './options.ts';
import { planGrading } from './plan.ts';
import { hostileChecks, SAMPLE_CASES } from '../conformance/hostile/hostile-checks.ts';
import { slowConsumer } from '../conformance/hostile/slow-consumer-check.ts';
import { checkReport, outcomeText, runningText, scoreText, tallyText, type GradeReport } from './report.ts';

const EXIT_ALL_PASSED = 0;
const EXIT_SOME_FAILED = 1;
const EXIT_USAGE = 2;
/** Nothing failed, but some check could not measure (SKIP): grade again where it can. */
const EXIT_SOME_SKIPPED = 3;

async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(argv);
  if ('help' in parsed) {
    console.log(USAGE);
    return EXIT_ALL_PASSED;
  }
  if ('dashDash' in parsed) {
    console.error(`error: ${parsed.dashDash}`);
    return EXIT_USAGE;
  }
  if ('usageError' in parsed) {
    console.error(`error: ${parsed.usageError}\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  const { options } = parsed;
  if (options.list) {
    for (const check of options.stage.checks) console.log(`- [${check.subject ?? 'server'}] ${check.name}`);
    for (const check of options.stage.slowChecks ?? []) console.log(`- [${check.subject ?? 'server'}, --slow] ${check.name}`);
    // The READMEs name hostile checks as "hostile ..." in their limits tables: list them too.
    if (options.stage.wire !== undefined) {
      for (const check of hostileChecks(options.stage.wire)) console.log(`- [server, robustness] ${check.name}`);
      console.log(`- [server, robustness, --slow-consumer] ${slowConsumer(options.stage.wire).name}`);
    }
    return EXIT_ALL_PASSED;
  }
  return grade(options);
}

async function grade(options: GradeOptions): Promise<number> {
  const plan = planGrading(options);
  if (plan.checks.length === 0 && plan.robustnessChecks.length === 0) {
    console.error(`error: no check of stage ${options.stage.id} matches ${options.only?.map((text) => `--only ${JSON.stringify(text)}`).join(' or ')}`);
    return EXIT_USAGE;
  }
  if (options.server !== undefined && !options.server.includes('{port}')) {
    console.error('note: --server has no {port}: the server must pick a port itself and report it in its ready line');
  }

  // Commands are relative to where the instructor typed them (npm run moves to the package root).
  process.chdir(process.env.INIT_CWD ?? process.cwd());
  const runner = new CheckRunner({
    serverCommand: plan.serverCommand,
    serverCommandWithoutOptions: plan.serverCommandWithoutOptions,
    clientCommand: plan.clientCommand,
    cwd: process.cwd(),
    readyTimeoutMs: options.readyTimeoutMs,
    checkTimeoutMs: options.checkTimeoutMs,
    settleBetweenChecks: plan.settleBetweenChecks,
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void runner.stop().finally(() => process.exit(130)));
  }

  const started = new Date();
  console.log(`stage ${options.stage.id} (${options.stage.folder}): grading ${plan.subjects.join(' and ')}`);
  console.log(`  server: ${plan.serverCommand}`);
  if (plan.subjects.includes('client')) console.log(`  client: ${plan.clientCommand}`);
  console.log('');

  const outcomes: CheckOutcome[] = [];
  const robustness: CheckOutcome[] = [];
  try {
    // On a terminal, say which check is running, then replace that line with its result.
    const live = process.stdout.isTTY === true;
    for (const [index, check] of plan.checks.entries()) {
      for (let run = 1; run <= options.repeat; run++) {
        if (live) process.stdout.write(runningText(check, index, plan.checks.length, run, options.repeat).slice(0, (process.stdout.columns || 80) - 1)); // one row, so \r can clear it
        const outcome = await runner.run(check);
        outcomes.push(outcome);
        if (live) process.stdout.write('\r\x1b[2K'); // back to the line's start, and clear it
        showOutcome(outcome, run, options.repeat);
      }
    }
    if (plan.robustnessChecks.length > 0) {
      // A section of its own: a protocol grade and a robustness grade, so a server that is right
      // but crashes on a malformed frame cannot get a full grade. The fuzz sample's seeds are fixed.
      console.log(`\nrobustness (hostile clients; the fuzz sample plays seeds 1-${SAMPLE_CASES}: npm run fuzz -- --stage ${options.stage.id} --seed N --cases 1 replays one):`);
      for (const check of plan.robustnessChecks) {
        for (let run = 1; run <= options.repeat; run++) {
          const outcome = await runner.run(check);
          robustness.push(outcome);
          showOutcome(outcome, run, options.repeat);
        }
      }
    }
  } finally {
    await runner.stop();
  }

  if (options.repeat > 1) console.log(`\n${tallyText([...outcomes, ...robustness], options.repeat)}`);
  if (outcomes.length > 0) console.log(`\n${scoreText(outcomes, options.repeat)}`);
  if (robustness.length > 0) console.log(`robustness ${scoreText(robustness, options.repeat)}`);
  else if (options.stage.wire !== undefined && !options.checkSetup) console.log('robustness: not graded (--no-robustness, or --only selected none of the hostile checks)');
  const passed = outcomes.filter((outcome) => outcome.passed).length;
  const skipped = outcomes.filter((outcome) => outcome.skipped !== undefined).length;
  if (options.json !== undefined) {
    const report: GradeReport = {
      stage: options.stage.id,
      server: options.server ?? null,
      client: options.client ?? null,
      started: started.toISOString(),
      finished: new Date().toISOString(),
      passed,
      skipped,
      total: outcomes.length,
      ...(options.repeat > 1 ? { repeat: options.repeat } : {}),
      checks: outcomes.map(checkReport),
      robustness: options.robustness ? {
        passed: robustness.filter((outcome) => outcome.passed).length,
        skipped: robustness.filter((outcome) => outcome.skipped !== undefined).length,
        total: robustness.length,
        checks: robustness.map(checkReport),
      } : null,
    };
    writeFileSync(options.json, JSON.stringify(report, null, 2) + '\n');
  }
  const all = [...outcomes, ...robustness];
  if (all.every((outcome) => outcome.passed)) return EXIT_ALL_PASSED;
  return all.every((outcome) => outcome.passed || outcome.skipped !== undefined) ? EXIT_SOME_SKIPPED : EXIT_SOME_FAILED;
}

/** One grade prints every outcome; a repeated one (a flakiness count) only what did not pass, with its run. */
function showOutcome(outcome: CheckOutcome, run: number, repeat: number): void {
  if (repeat === 1) console.log(outcomeText(outcome));
  else if (!outcome.passed) console.log(`run ${run} of ${repeat}: ${outcomeText(outcome)}`);
}

const exitCode = await main(process.argv.slice(2));
// Exit explicitly (a check that timed out may still hold sockets or timers), once stdout is flushed.
process.stdout.write('', () => process.exit(exitCode));
