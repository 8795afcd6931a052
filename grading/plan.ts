// What a grading run does: which commands play server and client, and which checks run.
import { clientCommand, serverCommand, settlerFor, withServerOptions, type Check, type CheckRunnerOptions, type CheckSubject } from '../conformance/harness/checks.ts';
import type { GradeOptions } from './options.ts';
import { setupCheck } from './setup-check.ts';
import { hostileChecks } from '../conformance/hostile/hostile-checks.ts';
import { slowConsumer } from '../conformance/hostile/slow-consumer-check.ts';

export interface GradingPlan {
  serverCommand: string;
  /** serverCommand without the stage's grading options: a slow check times the default they shorten. */
  serverCommandWithoutOptions: string;
  clientCommand: string;
  /** The subjects graded: a server and/or a client. */
  subjects: CheckSubject[];
  checks: Check[];
  /** The hostile checks (on by default from stage 02; --no-robustness skips them), graded and scored as a section of their own. */
  robustnessChecks: Check[];
  /** What the runner does between checks (stage 02: prove its one slot free). */
  settleBetweenChecks: CheckRunnerOptions['settleBetweenChecks'];
}

const REFERENCE_ONLY = {}; // an empty environment: SERVER_CMD / CLIENT_CMD do not leak into a grade

/** --only: a check is selected when its name contains any of the texts given (none given: all are). */
function selectedBy(only: string[] | undefined, name: string): boolean {
  return only === undefined || only.some((text) => name.includes(text));
}

export function planGrading(options: GradeOptions): GradingPlan {
  const { stage } = options;
  const neither = options.server === undefined && options.client === undefined;
  const subjects: CheckSubject[] = [];
  if (options.server !== undefined || neither || options.checkSetup) subjects.push('server');
  if ((options.client !== undefined || neither) && !options.checkSetup) subjects.push('client');

  const checks = options.checkSetup
    ? [setupCheck]
    : [...stage.checks, ...(options.slow ? stage.slowChecks ?? [] : [])].filter((check) => subjects.includes(check.subject ?? 'server') && selectedBy(options.only, check.name));
  const robustnessChecks = options.robustness && stage.wire !== undefined && !options.checkSetup && subjects.includes('server')
    ? [...hostileChecks(stage.wire), ...(options.slowConsumer ? [slowConsumer(stage.wire)] : [])].filter((check) => selectedBy(options.only, check.name))
    : [];
  return {
    robustnessChecks,
    // The stage's grading options (stage 08: --ring-timeout 2) go to any server, the student's too.
    serverCommand: withServerOptions(options.server ?? serverCommand(stage.folder, REFERENCE_ONLY), stage.serverOptions),
    serverCommandWithoutOptions: options.server ?? serverCommand(stage.folder, REFERENCE_ONLY),
    clientCommand: options.client ?? clientCommand(stage.folder, REFERENCE_ONLY),
    subjects,
    checks,
    settleBetweenChecks: settlerFor(stage.wire),
  };
}
