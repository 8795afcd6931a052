// The clients of stages 02-08 (the references, or CLIENT_CMD) against a server that vanishes or
// turns hostile mid-session (conformance/hostile/client-cases.ts): one line on standard error, a non-zero
// exit, no stack trace, and no escape sequence from the server printed to the user's terminal.
// tests/independent-clients-hostile.test.ts holds the independent Python clients to the same cases.
import t from 'tap';
import { clientCommand } from '../conformance/harness/checks.ts';
import { wireStages } from '../conformance/stages.ts';
import { expectCleanFailuresAgainstHostileServers } from './support/hostile-clients.ts';

for (const { id, folder, wire } of wireStages) {
  t.test(`stage ${id} client`, async (t) => {
    await expectCleanFailuresAgainstHostileServers(t, clientCommand(folder), wire);
  });
}
