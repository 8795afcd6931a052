// Holds one client (the reference, CLIENT_CMD, or an independent implementation) to every hostile
// server case of conformance/hostile/client-cases.ts: first, that it was mid-session when the
// server turned hostile (after WELCOME it sent voice, or 06 on a PING with WELCOME's token), then
// one line on standard error, a non-zero exit, no stack trace, and no escape sequence from the
// server printed to the user's terminal.
// tests/hostile-clients.test.ts and tests/independent-clients-hostile.test.ts both call it.
import type { Test } from 'tap';
import { clientCases, controlCharacterProblem, oneLineFailureProblem, runClientCase } from '../../conformance/hostile/client-cases.ts';
import type { StageWire } from '../../conformance/hostile/wire-spec.ts';

/** Runs `command` against one fake server per case (all at once: each client spends most of its time starting up) and asserts each run. */
export async function expectCleanFailuresAgainstHostileServers(t: Test, command: string, wire: StageWire): Promise<void> {
  const runs = await Promise.all(clientCases.map((clientCase) => runClientCase(command, wire, clientCase)));
  clientCases.forEach((clientCase, i) => {
    const { result, handshakeProblem } = runs[i]!;
    const output = { stdout: result.stdout.slice(-600), stderr: result.stderr.slice(-600), exitCode: result.exitCode };
    // Without this the rest proves nothing: a client that refuses WELCOME fails "cleanly" in every case.
    t.equal(handshakeProblem, null, `${clientCase.name}: the client was mid-session (it sent voice or a PING after WELCOME)`, output);
    if (handshakeProblem !== null) return;
    const problem = oneLineFailureProblem(result) ?? controlCharacterProblem(result);
    t.equal(problem, null, `${clientCase.name}: one line, a non-zero exit, nothing unprintable`, output);
  });
}
