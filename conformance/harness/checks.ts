// A stage's checks are defined once, as plain async functions that throw CheckFailure;
// the tap suites run them and so does the grader (grading/grade.ts), through the same CheckRunner,
// so both judge a server the same way.
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { Test } from 'tap';
import { CheckFailure, CheckSkipped, showBytes } from './check-failure.ts';
import { shellQuote } from './run-command.ts';
import { startServerProcess, type ServerUnderTest } from './server-process.ts';
import { servesOneUser, waitForFreeSlot } from '../hostile/free-slot.ts';
import type { StageWire } from '../hostile/wire-spec.ts';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** No check needs this long; past it the check is reported as hung and the grader moves on. */
export const CHECK_TIMEOUT_MS = 60_000;

export interface CheckContext {
  /** The server under test (already printed its ready line). */
  server: ServerUnderTest;
  /** Command prefix that runs the client under test; options are appended. */
  clientCommand: string;
  /**
   * Starts another process of the server under test WITHOUT the stage's grading options (stage 08's
   * --ring-timeout 2), for a check that times the default those options shorten; the check stops it.
   */
  startServerWithoutOptions(): Promise<ServerUnderTest>;
}

/** What a check grades: the server (default) or the client (which may also talk to the server). */
export type CheckSubject = 'server' | 'client';

export interface Check {
  name: string;
  subject?: CheckSubject;
  /** A check that takes longer than the runner's limit by design (the slow consumer) says how long. */
  timeLimitMs?: number;
  run(context: CheckContext): Promise<void>;
}

/** How to start the reference server of a stage; SERVER_CMD (with {port}) replaces it. */
export function serverCommand(stageFolder: string, env = process.env): string {
  return env.SERVER_CMD ?? `${referenceCommand(stageFolder)} server --host 127.0.0.1 --port {port}`;
}

/**
 * `command` with the server options a stage's README makes part of its command line for grading
 * appended (stage 08: `--ring-timeout 2`, so the ring timeout is checked in 2 s, not 30), to the
 * reference and to a student's server alike: the grader's --server, SERVER_CMD.
 */
export function withServerOptions(command: string, options: readonly string[] = []): string {
  return options.length === 0 ? command : [command, ...options.map(shellQuote)].join(' ');
}

/** How to run the reference client of a stage; CLIENT_CMD replaces it. */
export function clientCommand(stageFolder: string, env = process.env): string {
  return env.CLIENT_CMD ?? `${referenceCommand(stageFolder)} client`;
}

/** The reference program of a stage, runnable from any directory (tsx is found from the repository). */
function referenceCommand(stageFolder: string): string {
  return `cd ${shellQuote(repoRoot)} && "${process.execPath}" --import tsx ${stageFolder}/main.ts`;
}

export interface CheckOutcome {
  check: Check;
  passed: boolean;
  ms: number;
  failure?: CheckFailure;
  /** Set when the check could not measure what it claims (CheckSkipped): neither a pass nor a failure. */
  skipped?: string;
  /** An error that is not a CheckFailure: a bug in the check or the harness, not in the code under test. */
  crash?: unknown;
}

export interface CheckRunnerOptions {
  serverCommand: string;
  /** serverCommand before the stage's grading options were appended (default: serverCommand). */
  serverCommandWithoutOptions?: string;
  clientCommand: string;
  /** Where the server command runs (the client command runs where the checks' process runs). */
  cwd?: string;
  readyTimeoutMs?: number;
  checkTimeoutMs?: number;
  /**
   * Run before a check on a server that an earlier check used (not on a fresh one): stage 02 proves
   * its one slot free (conformance/hostile/free-slot.ts says why). It judges nothing.
   */
  settleBetweenChecks?: (server: ServerUnderTest) => Promise<void>;
}

/**
 * Runs checks one after another against one server process: starts it when it is not running,
 * fails a check that leaves it dead, restarts it after any failure, and bounds every check in
 * time. A server that cannot start fails every check with that reason, without retrying.
 */
export class CheckRunner {
  private server: ServerUnderTest | undefined;
  private startFailure: CheckFailure | undefined;
  /** The server the previous check ran against. */
  private usedServer: ServerUnderTest | undefined;

  constructor(private readonly options: CheckRunnerOptions) {}

  async run(check: Check): Promise<CheckOutcome> {
    const started = performance.now();
    const outcome = (result: Partial<CheckOutcome>): CheckOutcome => ({ check, passed: false, ms: Math.round(performance.now() - started), ...result });
    try {
      const server = await this.runningServer();
      if (server === this.usedServer) await this.options.settleBetweenChecks?.(server).catch(() => {});
      this.usedServer = server;
      const startServerWithoutOptions = () => startServerProcess(this.options.serverCommandWithoutOptions ?? this.options.serverCommand, { cwd: this.options.cwd, readyTimeoutMs: this.options.readyTimeoutMs });
      await this.withinTimeLimit(check, check.run({ server, clientCommand: this.options.clientCommand, startServerWithoutOptions }));
      if (!server.isRunning()) throw serverDied(server);
      return outcome({ passed: true });
    } catch (error) {
      // Not measuring is no excuse for a server that died meanwhile.
      const diedMeanwhile = this.server !== undefined && !this.server.isRunning();
      // A failed (or skipped) check may leave the server in any state (a user still joined, say): the
      // next check gets a fresh server, so one bug is reported once instead of failing every check after it.
      await this.server?.stop();
      if (error instanceof CheckFailure) return outcome({ failure: withCommonHint(error) });
      if (error instanceof CheckSkipped) return diedMeanwhile ? outcome({ failure: serverDied(this.server!) }) : outcome({ skipped: error.reason });
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      const failure = new CheckFailure('the check itself crashed', {
        expected: 'the check runs to completion',
        actual: message,
        hint: 'this is probably a bug in the tests, not in the code under test: please report it',
      });
      return outcome({ failure, crash: error });
    }
  }

  /** Stops the server's whole process group. Safe to call more than once. */
  async stop(): Promise<void> {
    await this.server?.stop();
  }

  private async runningServer(): Promise<ServerUnderTest> {
    if (this.startFailure) {
      throw new CheckFailure(`not run: ${this.startFailure.summary}`, { expected: this.startFailure.details.expected, hint: 'see the first failed check for what the server printed' });
    }
    if (this.server?.isRunning()) return this.server;
    try {
      this.server = await startServerProcess(this.options.serverCommand, { cwd: this.options.cwd, readyTimeoutMs: this.options.readyTimeoutMs });
      return this.server;
    } catch (error) {
      if (error instanceof CheckFailure) this.startFailure = error;
      throw error;
    }
  }

  private async withinTimeLimit(check: Check, running: Promise<void>): Promise<void> {
    const limitMs = Math.max(this.options.checkTimeoutMs ?? CHECK_TIMEOUT_MS, check.timeLimitMs ?? 0);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timed out'>((resolve) => (timer = setTimeout(() => resolve('timed out'), limitMs)));
    running.catch(() => {}); // if it fails after we gave up on it, nobody is listening any more
    try {
      if ((await Promise.race([running, timedOut])) !== 'timed out') return;
    } finally {
      clearTimeout(timer);
    }
    // The check may still be talking to this server: the next check gets a fresh one.
    await this.server?.stop();
    throw new CheckFailure(`the check "${check.name}" did not finish within ${limitMs / 1000} s`, {
      expected: 'every step of the check to finish or fail within its own deadline',
      actual: `still running after ${limitMs / 1000} s`,
      hint: 'something waited forever: a client that never exits, or a server that accepts bytes but never answers',
    });
  }
}

function serverDied(server: ServerUnderTest): CheckFailure {
  return new CheckFailure('the server stopped running during this check', {
    expected: 'the server keeps serving whatever one client does',
    actual: `server output ends with: ${JSON.stringify(server.output().slice(-400))}`,
    hint: 'catch errors per connection; one client must never bring the server down',
  });
}

/** A failure without a hint of its own gets the usual advice for its kind, if it has a known kind. */
function withCommonHint(failure: CheckFailure): CheckFailure {
  if (failure.details.hint) return failure;
  const hint = commonHint(failure.summary);
  return hint ? new CheckFailure(failure.summary, { ...failure.details, hint }) : failure;
}

function commonHint(summary: string): string | undefined {
  if (/^could not connect/.test(summary)) return 'connection refused: is the server listening on the port it was given?';
  if (/^connection closed/.test(summary)) return 'the other side closed the connection early: look for an exception or an early close() in its output';
  if (/^timed out/.test(summary)) return 'nothing (or not enough) came back in time: is the reply flushed, and is the data read in a loop?';
  if (/^server did not start/.test(summary)) return 'print "listening on HOST:PORT" and flush standard output once listen() succeeds';
  return undefined;
}

/**
 * Runs each check as a tap subtest, through a CheckRunner against the server from SERVER_CMD
 * (default: the stage's reference server) and the client from CLIENT_CMD. `checks` defaults to
 * the stage's protocol checks (conformance/stages.ts); the hostile suites pass their own.
 */
export function runChecksWithTap(t: Test, stage: { folder: string; checks: Check[]; serverOptions?: readonly string[]; wire?: StageWire }, checks: Check[] = stage.checks): void {
  const runner = new CheckRunner({
    serverCommand: withServerOptions(serverCommand(stage.folder), stage.serverOptions),
    serverCommandWithoutOptions: serverCommand(stage.folder),
    clientCommand: clientCommand(stage.folder),
    cwd: repoRoot,
    settleBetweenChecks: settlerFor(stage.wire),
  });
  t.teardown(() => runner.stop());
  // Each check has its own time limit (the runner fails one that runs past it); tap's limit for the
  // whole file is their sum, so a suite that grows (stage 08 has 33 checks, ~2 minutes on a busy
  // machine) is never cut off while every check keeps to its own.
  t.setTimeout(checks.reduce((sum, check) => sum + Math.max(CHECK_TIMEOUT_MS, check.timeLimitMs ?? 0), CHECK_TIMEOUT_MS));

  for (const check of checks) {
    t.test(check.name, async (t) => {
      const outcome = await runner.run(check);
      if (outcome.crash !== undefined) throw outcome.crash;
      if (outcome.passed) t.pass(check.name);
      else if (outcome.skipped !== undefined) t.pass(check.name, { skip: `could not measure: ${outcome.skipped}` });
      else t.fail(outcome.failure!.summary, failureDiagnostics(outcome.failure!));
    });
  }
}

/** What the runner does between two checks of a stage: prove a one-user stage's slot free; otherwise nothing. */
export function settlerFor(wire: StageWire | undefined): CheckRunnerOptions['settleBetweenChecks'] {
  if (wire === undefined || !servesOneUser(wire)) return undefined;
  return (server) => waitForFreeSlot(server.host, server.port, wire);
}

/** The details of a failure as tap diagnostics (printed as YAML under the "not ok" line). */
function failureDiagnostics({ details }: CheckFailure): Record<string, string | null> {
  // at/stack: null: the place in the harness is noise to a student; the details say it all.
  const diagnostics: Record<string, string | null> = { expected: details.expected, at: null, stack: null };
  if (details.actual !== undefined) diagnostics.actual = details.actual;
  if (details.sent !== undefined) diagnostics.sent = showBytes(details.sent);
  if (details.received !== undefined) diagnostics.received = showBytes(details.received);
  if (details.hint) diagnostics.hint = details.hint;
  return diagnostics;
}

/** Throws a CheckFailure unless `condition` holds. */
export function expect(condition: boolean, summary: string, details: ConstructorParameters<typeof CheckFailure>[1]): asserts condition {
  if (!condition) throw new CheckFailure(summary, details);
}
