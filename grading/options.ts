// The grader's command line, parsed into a plan or a usage error (exit code 2).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { dashDashHint, swallowedOptions } from '../shared/npm-swallowed.ts';
import { findStage, stages, type Stage } from '../conformance/stages.ts';

export const USAGE = `usage: npm run grade -- --stage NN [--server "CMD {port}"] [--client "CMD"] [--json FILE]
                      [--check-setup] [--only TEXT] [--no-robustness] [--slow-consumer] [--slow]
                      [--ready-timeout SECONDS] [--check-timeout SECONDS] [--repeat N]
       npm run grade -- --stage NN --list

  --stage NN          the stage to grade: ${stages.map((stage) => `${stage.id} (${stage.folder})`).join(', ')}
  --server "CMD"      the server under test, as a shell command; {port} becomes a free port.
                      It must print "listening on HOST:PORT" (and flush) once it accepts connections.
  --client "CMD"      the client under test; "--name N --host H --port P ..." are appended.
                      With neither option, the reference server and client are graded.
                      With --client only, the reference server serves the client checks.
  --json FILE         also write the report as JSON (for collecting a class's results)
  --check-setup       only start the server and check its ready line and that it accepts a connection
  --only TEXT         only the checks whose name contains TEXT; give it again for more
                      (--only tick --only "jitter buffer": the checks that contain either)
  --no-robustness     skip the robustness section: by default (stages 02 on) the server is also
                      graded against hostile clients (bad frames, a seeded fuzz sample, floods,
                      idle and excess connections, churn), as a separate section and score
                      (about a minute more); --only selects among those checks too
  --slow-consumer     add the slow-consumer check to the robustness section (a client that never
                      reads must be disconnected: up to a minute more, as the kernels buffer first)
  --slow              add the stage's checks that take long on purpose (stage 07: a transfer whose
                      sender stalls ends after the README's 30 s; stage 08: an unanswered call rings
                      the default 30 s on a server started without --ring-timeout; stages 05 to
                      08: 65 535 session ids, 07: transfer ids, 08: call ids, burnt through to see
                      them wrap)
  --list              print the stage's checks (what each grades) and exit
  --ready-timeout S   how long to wait for the ready line (default 20 s)
  --check-timeout S   the most one check may take before it counts as hung (default 60 s)
  --repeat N          run each selected check N times in a row (1-1000), to see whether a grade
                      depends on luck: prints every FAIL and SKIP as it happens, then per check how
                      many runs passed, failed and skipped (e.g. --repeat 50 --only "tick")
exit code: 0 when every check passes, 1 when one fails, 2 for a usage error,
           3 when none fails but some could not measure (SKIP, with the reason)`;

export interface GradeOptions {
  stage: Stage;
  /** The commands under test, as given (undefined: not graded). */
  server?: string;
  client?: string;
  json?: string;
  checkSetup: boolean;
  list: boolean;
  /** Also run the stage's hostile checks, reported as their own section (the default from stage 02 on). */
  robustness: boolean;
  /** Add the slow-consumer check (a minute) to the robustness section. */
  slowConsumer: boolean;
  /** Add the stage's slow checks (Stage.slowChecks) to its checks. */
  slow: boolean;
  /** Select the checks whose name contains any of these (undefined: every check). */
  only?: string[];
  readyTimeoutMs?: number;
  checkTimeoutMs?: number;
  /** How many times each selected check runs (1: a grade; more: a flakiness count). */
  repeat: number;
}

/** `dashDash`: npm took options meant for us (`npm run grade --stage 02`); one line says where "--" goes. */
export type ParsedCommandLine = { options: GradeOptions } | { help: true } | { usageError: string } | { dashDash: string };

const OPTIONS = {
  stage: { type: 'string' },
  server: { type: 'string' },
  client: { type: 'string' },
  json: { type: 'string' },
  'check-setup': { type: 'boolean', default: false },
  only: { type: 'string', multiple: true },
  list: { type: 'boolean', default: false },
  robustness: { type: 'boolean', default: false },
  'no-robustness': { type: 'boolean', default: false },
  'slow-consumer': { type: 'boolean', default: false },
  slow: { type: 'boolean', default: false },
  'ready-timeout': { type: 'string' },
  'check-timeout': { type: 'string' },
  repeat: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ParseArgsConfig['options'];

export function parseCommandLine(argv: string[], env: NodeJS.ProcessEnv = process.env): ParsedCommandLine {
  const swallowed = swallowedOptions(Object.keys(OPTIONS), argv, env);
  if (swallowed.length > 0) {
    const flags = Object.entries(OPTIONS).filter(([, option]) => option.type === 'boolean').map(([name]) => name);
    return { dashDash: dashDashHint({ swallowed, argv, positionals: 0, flags, env }) };
  }
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: OPTIONS }));
  } catch (error) {
    return { usageError: (error as Error).message };
  }
  if (values.help) return { help: true };
  if (values.stage === undefined) return { usageError: 'missing --stage NN' };
  const stage = findStage(values.stage);
  if (!stage) return { usageError: `unknown stage "${values.stage}"; known: ${stages.map((s) => s.id).join(', ')}` };
  if (values.server !== undefined && values.server.trim() === '') return { usageError: '--server needs a command' };
  if (values.client !== undefined && values.client.trim() === '') return { usageError: '--client needs a command' };
  if (values['check-setup'] && values.client !== undefined) return { usageError: '--check-setup checks a server: give --server, not --client' };
  if ((values.robustness || values['slow-consumer']) && stage.wire === undefined) return { usageError: `--robustness / --slow-consumer: stage ${stage.id} has no framed wire to attack (stages 02 on)` };
  if (values['no-robustness'] && (values.robustness || values['slow-consumer'])) return { usageError: '--no-robustness contradicts --robustness and --slow-consumer' };
  if (values.slow && stage.slowChecks === undefined) return { usageError: `--slow: stage ${stage.id} has no slow checks (stages ${stages.filter((entry) => entry.slowChecks !== undefined).map((entry) => entry.id).join(', ')} have)` };
  const readyTimeoutMs = milliseconds(values['ready-timeout']);
  const checkTimeoutMs = milliseconds(values['check-timeout']);
  if (Number.isNaN(readyTimeoutMs) || Number.isNaN(checkTimeoutMs)) return { usageError: '--ready-timeout and --check-timeout take a number of seconds above 0' };
  const repeat = values.repeat === undefined ? 1 : Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > MAX_REPEAT) return { usageError: `--repeat takes a whole number from 1 to ${MAX_REPEAT}` };
  return {
    options: {
      stage,
      server: values.server,
      client: values.client,
      json: values.json,
      checkSetup: values['check-setup'],
      list: values.list,
      // On by default: a server right on every protocol check that crashes on a malformed frame
      // must not get a full grade. (--robustness, the old opt-in, is still accepted.)
      robustness: stage.wire !== undefined && !values['no-robustness'],
      slowConsumer: values['slow-consumer'],
      slow: values.slow,
      only: values.only,
      readyTimeoutMs,
      checkTimeoutMs,
      repeat,
    },
  };
}

const MAX_REPEAT = 1000;

/** "2.5" (seconds) -> 2500; undefined stays undefined; anything else is NaN. */
function milliseconds(seconds: string | undefined): number | undefined {
  if (seconds === undefined) return undefined;
  const value = Number(seconds);
  return value > 0 ? value * 1000 : NaN;
}
