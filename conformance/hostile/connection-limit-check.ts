// Too many connections: past the README's maximum, the next connections are told ERROR server_full
// at once (not silence, and not a server that runs out of file descriptors), and the others are
// not disturbed. The real maximum is used: a thousand loopback sockets are cheap.
import { CheckFailure } from '../harness/check-failure.ts';
import type { Check } from '../harness/checks.ts';
import { sleep, withSteadyPair } from './check-helpers.ts';
import { expectServerServes } from './expectations.ts';
import { ListeningUser } from './listening-user.ts';
import { ERROR, type StageWire } from './wire-spec.ts';

export function connectionLimit(wire: StageWire): Check {
  const room = 'hostile-f';
  const extra = 3;
  return {
    name: `hostile ${wire.id}: past ${wire.maxConnections} connections, the next ones get ERROR server_full at once; the others are not disturbed`,
    run: async (context) => {
      await withSteadyPair(context, wire, 'cl', room, `${wire.maxConnections} connections at once`, async (pair) => {
        const open = wire.maxConnections - pair.names.length;
        const idlers: ListeningUser[] = [];
        // In batches, so the listen backlog never overflows.
        for (let i = 0; i < open + extra; i += 100) {
          const batch = Math.min(100, open + extra - i);
          idlers.push(...(await Promise.all(Array.from({ length: batch }, (_, j) => ListeningUser.connect(context, wire, `idler ${i + j}`)))));
        }
        // Which connections are over the limit depends on the order the server accepts them in.
        await sleep(1_500);
        const refused = idlers.filter((user) => user.frames.length > 0 || user.closed);
        const wellRefused = refused.filter((user) => user.frames[0]?.type === ERROR && user.frames[0]?.json?.code === 'server_full');
        if (refused.length !== extra || wellRefused.length !== extra) {
          const summary = refused.length !== extra
            ? `the connection limit is not ${wire.maxConnections}: with ${wire.maxConnections + extra} connections open, ${refused.length} were answered or closed, not the ${extra} over the limit`
            : `past ${wire.maxConnections} connections, the ${extra} over the limit were not told ERROR server_full (${wellRefused.length} were)`;
          throw new CheckFailure(summary, {
            expected: `exactly ${extra} connections (those over ${wire.maxConnections}) get ERROR server_full and are closed; the others wait for their HELLO`,
            actual: `${refused.length} connections got an answer or were closed; e.g. ${refused.slice(0, 3).map((u) => u.describe() + (u.closed ? ', closed' : '')).join(' | ') || '(none)'}`,
            hint: 'count open connections; past MAX_CONNECTIONS, answer ERROR server_full and close at once (not silence, and not a crash when file descriptors run out)',
          });
        }
        for (const user of idlers) user.socket.destroy();
      });
      // The slots are free again once the idle connections are gone.
      await expectServerServes(context, wire, 'after-full', room, [], 'a full server');
    },
  };
}
