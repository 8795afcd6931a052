// Between two checks of stage 02 the runner proves the one slot free (conformance/hostile/free-slot.ts).
// The race it closes: a check's user has just closed its connection, and a threaded server reads
// the next check's HELLO before that FIN, so it fairly answers busy. The fake server below plays
// such a server: it notices a FIN only LATE_FIN_MS later (BYE at once).
import t, { type Test } from 'tap';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { jsonFrame, HEADER_BYTES } from '../conformance/hostile/frames.ts';
import { servesOneUser, waitForFreeSlot } from '../conformance/hostile/free-slot.ts';
import { BYE, ERROR, HELLO, WELCOME, WIRES } from '../conformance/hostile/wire-spec.ts';
import { CheckRunner, serverCommand } from '../conformance/harness/checks.ts';

const LATE_FIN_MS = 300;

/** A one-slot server that reads a closed connection's FIN LATE_FIN_MS late. */
async function lateFinServer(t: Test): Promise<{ port: number; welcomes: () => number }> {
  let holder: Socket | undefined;
  let welcomes = 0;
  const server: Server = createServer((socket) => {
    let pending = Buffer.alloc(0);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= HEADER_BYTES && pending.length >= HEADER_BYTES + pending.readUInt32BE(1)) {
        const type = pending[0];
        pending = pending.subarray(HEADER_BYTES + pending.readUInt32BE(1));
        if (type === HELLO && holder !== undefined) socket.end(jsonFrame(ERROR, { code: 'busy', message: 'someone else is talking' }));
        else if (type === HELLO) (holder = socket), welcomes++, socket.write(jsonFrame(WELCOME, { name: 'x', sample_rate: 48000, frame_samples: 960 }));
        else if (type === BYE && holder === socket) (holder = undefined), socket.end();
      }
    });
    socket.on('end', () => setTimeout(() => (holder === socket ? (holder = undefined) : undefined, socket.end()), LATE_FIN_MS));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { port: address.port, welcomes: () => welcomes };
}

/** Connects, sends HELLO, returns the type of the first frame that comes back, and closes with a FIN. */
async function helloAnswer(port: number): Promise<number> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(jsonFrame(HELLO, { name: 'Ada' }));
  const [chunk] = (await once(socket, 'data')) as [Buffer];
  socket.end();
  return chunk[0];
}

t.test('stage 02 is the one-user stage; 03 on are not', async (t) => {
  t.ok(servesOneUser(WIRES['02']), '02');
  for (const id of ['03', '04', '05', '06', '07', '08'] as const) t.notOk(servesOneUser(WIRES[id]), id);
});

t.test('the fake server has the race: a HELLO right after a FIN gets busy', async (t) => {
  const { port } = await lateFinServer(t);
  t.equal(await helloAnswer(port), WELCOME, 'the first user is welcomed');
  t.equal(await helloAnswer(port), ERROR, 'the next one, right after the first closed, is refused busy');
});

t.test('waitForFreeSlot returns once the slot is free, and leaves it free', async (t) => {
  const { port, welcomes } = await lateFinServer(t);
  t.equal(await helloAnswer(port), WELCOME, 'the first user is welcomed, then closes');
  const started = performance.now();
  await waitForFreeSlot('127.0.0.1', port, WIRES['02']);
  t.ok(performance.now() - started >= LATE_FIN_MS - 50, `it waited for the late FIN (${Math.round(performance.now() - started)} ms)`);
  t.equal(welcomes(), 2, 'the grader itself was welcomed once');
  t.equal(await helloAnswer(port), WELCOME, 'the next check\'s user is welcomed at its first HELLO');
});

t.test('the runner settles before a check on a used server, never before one on a fresh server', async (t) => {
  const settled: number[] = [];
  const runner = new CheckRunner({
    serverCommand: serverCommand('02-echo', {}),
    clientCommand: 'true',
    settleBetweenChecks: async (server) => void settled.push(server.port),
  });
  t.teardown(() => runner.stop());
  const ports: number[] = [];
  const check = (name: string, fail = false) => ({ name, run: async ({ server }: { server: { port: number } }) => { ports.push(server.port); if (fail) throw new Error('the check crashed'); } });
  t.ok((await runner.run(check('first'))).passed, 'the first check passes');
  t.same(settled, [], 'not before the first check');
  t.ok((await runner.run(check('second'))).passed, 'the second check passes');
  t.same(settled, [ports[0]], 'before the second, on the same server');
  t.notOk((await runner.run(check('third crashes', true))).passed, 'the third check fails');
  t.ok((await runner.run(check('fourth'))).passed, 'the fourth check passes');
  t.not(ports[3], ports[2], 'the fourth got a fresh server (a failed check stops it)');
  t.same(settled, [ports[0], ports[0]], 'and was not settled: a fresh server needs no settling');
});
