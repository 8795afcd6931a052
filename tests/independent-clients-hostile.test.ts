// The independent Python clients of stages 02-08 (tests/fixtures/python/stageNN_client.py, written
// from the stage READMEs alone) against the hostile servers that tests/hostile-clients.test.ts sets
// on the reference clients (conformance/hostile/client-cases.ts): a server that resets, closes,
// sends junk or a 4 GB length, or names full of escape sequences. Each must first show it joined
// (after WELCOME it talks from a tone WAV, or 06 on PINGs WELCOME's udp_port), then end with one line on
// standard error and a non-zero exit, no stack trace, nothing unprintable on the terminal, as a
// student's client would be asked to (issue 20: "all suites pass ... on the independent
// implementations"). The 05-08 clients need libopus.so.0 (tests/independent-clients-05-06.test.ts
// says first when it is missing).
import t from 'tap';
import { wireStages } from '../conformance/stages.ts';
import { expectCleanFailuresAgainstHostileServers } from './support/hostile-clients.ts';
import { pythonClient } from './support/independent-grading.ts';

// The 06-08 clients import the earlier ones: they must leave no __pycache__ in the tree.
process.env.PYTHONDONTWRITEBYTECODE = '1';

for (const { id, wire } of wireStages) {
  const file = `stage${id}_client.py`;
  t.test(`stage ${id}: the independent Python client (${file})`, async (t) => {
    await expectCleanFailuresAgainstHostileServers(t, pythonClient(file), wire);
  });
}
