// Stages 02-04 against a client that never reads (conformance/hostile/slow-consumer-check.ts): its memory
// stays bounded, the others keep their mixes, and it is disconnected in the end. The kernels hold
// about 4 MB before a server notices anything, so each stage takes most of a minute: the three
// run at once, each against its own server. One stage only: --grep "stage 03".
import t from 'tap';
import { SLOW_CONSUMER_DEADLINE_MS, slowConsumer } from '../conformance/hostile/slow-consumer-check.ts';
import { CheckRunner, clientCommand, repoRoot, serverCommand, withServerOptions } from '../conformance/harness/checks.ts';
import { wireStages } from '../conformance/stages.ts';

t.setTimeout(SLOW_CONSUMER_DEADLINE_MS + 60_000);
t.jobs = wireStages.length;

for (const { id, folder, wire, serverOptions } of wireStages) {
  t.test(`stage ${id}`, { buffered: true }, async (t) => {
    const runner = new CheckRunner({
      serverCommand: withServerOptions(serverCommand(folder), serverOptions),
      clientCommand: clientCommand(folder),
      cwd: repoRoot,
      checkTimeoutMs: SLOW_CONSUMER_DEADLINE_MS + 30_000,
    });
    t.teardown(() => runner.stop());
    const outcome = await runner.run(slowConsumer(wire));
    if (outcome.crash !== undefined) throw outcome.crash;
    if (outcome.passed) {
      t.pass(outcome.check.name);
      return;
    }
    const { expected, actual, hint } = outcome.failure!.details;
    const diagnostics: Record<string, string | null> = { expected, actual: actual ?? null, hint: hint ?? null, at: null, stack: null };
    t.fail(`${outcome.check.name}: ${outcome.failure!.summary}`, diagnostics);
  });
}
