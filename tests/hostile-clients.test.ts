// The clients of stages 02-04 (the references, or CLIENT_CMD) against a server that vanishes or
// turns hostile mid-session (conformance/hostile/client-cases.ts): one line on standard error, a non-zero
// exit, no stack trace, and no escape sequence from the server printed to the user's terminal.
import t from 'tap';
import { clientCases, controlCharacterProblem, oneLineFailureProblem, runClientCase } from '../conformance/hostile/client-cases.ts';
import { clientCommand } from '../conformance/harness/checks.ts';
import { wireStages } from '../conformance/stages.ts';

for (const { id, folder, wire } of wireStages) {
  t.test(`stage ${id} client`, async (t) => {
    const command = clientCommand(folder);
    // One fake server per case, all at once: each client spends most of its time starting up.
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
  });
}
