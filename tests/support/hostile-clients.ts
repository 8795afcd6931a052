// Holds one client (the reference, CLIENT_CMD, or an independent implementation) to every hostile
// server case of conformance/hostile/client-cases.ts: one line on standard error, a non-zero exit,
// no stack trace, and no escape sequence from the server printed to the user's terminal.
// tests/hostile-clients.test.ts and tests/independent-clients-hostile.test.ts both call it.
import type { Test } from 'tap';
import { clientCases, controlCharacterProblem, oneLineFailureProblem, runClientCase } from '../../conformance/hostile/client-cases.ts';
import type { StageWire } from '../../conformance/hostile/wire-spec.ts';

/** Runs `command` against one fake server per case (all at once: each client spends most of its time starting up) and asserts each run. */
export async function expectCleanFailuresAgainstHostileServers(t: Test, command: string, wire: StageWire): Promise<void> {
  const runs = await Promise.all(clientCases.map((clientCase) => runClientCase(command, wire, clientCase)));
  clientCases.forEach((clientCase, i) => {
    const { result } = runs[i]!;
    const problem = oneLineFailureProblem(result) ?? controlCharacterProblem(result);
    t.equal(problem, null, `${clientCase.name}: one line, a non-zero exit, nothing unprintable`, {
      stdout: result.stdout.slice(-600),
      stderr: result.stderr.slice(-600),
      exitCode: result.exitCode,
    });
  });
}
