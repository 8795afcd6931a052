// A stage's checks are defined once, as plain async functions that throw CheckFailure;
// the tap suites run them (and a grader can run the same list against any implementation).
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { Test } from 'tap';
import { CheckFailure, showBytes } from './check-failure.ts';
import { startServerProcess, type ServerUnderTest } from './server-process.ts';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface CheckContext {
  /** The server under test (already printed its ready line). */
  server: ServerUnderTest;
  /** Command prefix that runs the client under test; options are appended. */
  clientCommand: string;
}

export interface Check {
  name: string;
  run(context: CheckContext): Promise<void>;
}

/** How to start the reference server of a stage; SERVER_CMD (with {port}) replaces it. */
export function serverCommand(stageFolder: string, env = process.env): string {
  return env.SERVER_CMD ?? `"${process.execPath}" --import tsx ${stageFolder}/main.ts server --host 127.0.0.1 --port {port}`;
}

/** How to run the reference client of a stage; CLIENT_CMD replaces it. */
export function clientCommand(stageFolder: string, env = process.env): string {
  return env.CLIENT_CMD ?? `"${process.execPath}" --import tsx ${stageFolder}/main.ts client`;
}

/**
 * Runs each check as a tap subtest against one server process. If a check leaves the server
 * dead, that is reported as a failure of the check, and a fresh server is started for the next.
 */
export function runChecksWithTap(t: Test, stageFolder: string, checks: Check[]): void {
  let server: ServerUnderTest | undefined;
  const start = async () => (server = await startServerProcess(serverCommand(stageFolder), { cwd: repoRoot }));
  t.teardown(async () => server?.stop());

  for (const check of checks) {
    t.test(check.name, async (t) => {
      try {
        if (!server || !server.isRunning()) await start();
        await check.run({ server: server!, clientCommand: clientCommand(stageFolder) });
        if (!server!.isRunning()) {
          throw new CheckFailure('the server stopped running during this check', {
            expected: 'the server keeps serving whatever one client does',
            actual: `server output ends with: ${JSON.stringify(server!.output().slice(-400))}`,
            hint: 'catch errors per connection; one client must never bring the server down',
          });
        }
        t.pass(check.name);
      } catch (error) {
        if (error instanceof CheckFailure) t.fail(error.summary, failureDiagnostics(error));
        else throw error;
      }
    });
  }
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
