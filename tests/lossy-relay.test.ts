import t, { type Test } from 'tap';
import dgram from 'node:dgram';
import { lossyPath, startLossyRelay, type LossyRelay, type LossyRelayOptions } from '#shared/net/lossy-relay.ts';

// Real UDP sockets on loopback: a "server" that records what it gets (and can answer), a client
// that sends numbered datagrams (u32 big-endian sequence), and the relay between them.

interface Endpoint {
  socket: dgram.Socket;
  port: number;
  /** Sequence numbers in arrival order. */
  got: number[];
}

async function endpoint(t: Test, onMessage?: (data: Buffer, from: dgram.RemoteInfo, socket: dgram.Socket) => void): Promise<Endpoint> {
  const socket = dgram.createSocket('udp4');
  const got: number[] = [];
  socket.on('message', (data, from) => {
    got.push(data.readUInt32BE(0));
    onMessage?.(data, from, socket);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  t.teardown(() => socket.close());
  return { socket, port: socket.address().port, got };
}

async function relayTo(t: Test, port: number, options: Omit<LossyRelayOptions, 'target'>): Promise<LossyRelay> {
  const relay = await startLossyRelay({ target: { host: '127.0.0.1', port }, ...options });
  t.teardown(() => relay.close());
  return relay;
}

async function until(condition: () => boolean, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

function datagram(sequence: number): Buffer {
  const data = Buffer.alloc(60); // about one Opus voice packet
  data.writeUInt32BE(sequence, 0);
  return data;
}

/**
 * Sends `count` numbered datagrams through the relay in small bursts (so the kernel's socket
 * buffers never overflow and every loss is the relay's), then waits until everything the
 * relay sent on has arrived.
 */
async function sendThrough(client: Endpoint, relay: LossyRelay, server: Endpoint, count: number): Promise<void> {
  for (let sequence = 0; sequence < count; sequence++) {
    client.socket.send(datagram(sequence), relay.port, '127.0.0.1');
    if (sequence % 20 === 19) await until(() => relay.counters.toServer.received === sequence + 1, 'the relay to receive the burst');
  }
  await until(() => relay.counters.toServer.received === count && relay.pending() === 0, 'the relay to send everything on');
  await until(() => server.got.length === relay.counters.toServer.delivered, `the server to get all ${relay.counters.toServer.delivered} datagrams the relay sent`);
}

t.test('loss: about the asked rate is dropped, and exactly what the relay counts', async (t) => {
  const server = await endpoint(t);
  const client = await endpoint(t);
  const relay = await relayTo(t, server.port, { lossPercent: 10, seed: 7 });
  await sendThrough(client, relay, server, 2_000);
  const lost = 2_000 - new Set(server.got).size;
  t.equal(relay.counters.toServer.dropped, lost, `the relay counts the ${lost} datagrams the server never got`);
  t.ok(lost >= 140 && lost <= 260, `${lost} of 2000 lost: 10 % asked, 7-13 % allowed`);
  t.same(relay.counters.toServer.duplicated + relay.counters.toServer.reordered, 0, 'nothing duplicated or reordered when not asked');
});

t.test('with reorder 0, delay and jitter keep the order', async (t) => {
  const server = await endpoint(t);
  const client = await endpoint(t);
  const relay = await relayTo(t, server.port, { lossPercent: 5, delayMs: 5, jitterMs: 10, seed: 3 });
  await sendThrough(client, relay, server, 300);
  const inOrder = server.got.every((sequence, i) => i === 0 || sequence > server.got[i - 1]);
  t.ok(inOrder, `arrival order is sending order (first 20: ${server.got.slice(0, 20).join(',')})`);
  t.ok(server.got.length < 300, `and some were lost (${300 - server.got.length})`);
});

t.test('reorder: some datagrams are overtaken, none lost, and they are counted', async (t) => {
  const server = await endpoint(t);
  const client = await endpoint(t);
  const relay = await relayTo(t, server.port, { reorderPercent: 10, reorderDelayMs: 40, seed: 5 });
  // Sent 2 ms apart, so a datagram held back 40 ms is overtaken by the next ones.
  for (let sequence = 0; sequence < 200; sequence++) {
    client.socket.send(datagram(sequence), relay.port, '127.0.0.1');
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  await until(() => server.got.length === 200, 'all 200 datagrams');
  // Overtaken: a datagram that arrives after one sent later than it.
  const overtaken = server.got.filter((sequence, i) => server.got.slice(0, i).some((earlier) => earlier > sequence)).length;
  t.same([...server.got].sort((a, b) => a - b), [...Array(200).keys()], 'every datagram arrives once');
  t.ok(relay.counters.toServer.reordered >= 8, `reordered count ${relay.counters.toServer.reordered} (10 % of 200 asked)`);
  const { reordered } = relay.counters.toServer;
  // A datagram held back among the very last ones has nothing left to overtake it.
  t.ok(overtaken <= reordered && overtaken >= reordered - 3, `the server saw ${overtaken} datagrams overtaken; the relay held back ${reordered}`);
});

t.test('duplicates arrive twice and are counted', async (t) => {
  const server = await endpoint(t);
  const client = await endpoint(t);
  const relay = await relayTo(t, server.port, { duplicatePercent: 10, seed: 11 });
  await sendThrough(client, relay, server, 500);
  const extra = server.got.length - new Set(server.got).size;
  t.equal(relay.counters.toServer.duplicated, extra, `${extra} extra copies arrived, as counted`);
  t.ok(extra >= 25 && extra <= 80, `${extra} of 500 duplicated: 10 % asked, 5-16 % allowed`);
});

t.test('a seed reproduces its drop pattern; another seed does not', async (t) => {
  async function droppedWith(seed: number): Promise<number[]> {
    const server = await endpoint(t);
    const client = await endpoint(t);
    const relay = await relayTo(t, server.port, { lossPercent: 10, seed });
    await sendThrough(client, relay, server, 400);
    const got = new Set(server.got);
    return [...Array(400).keys()].filter((sequence) => !got.has(sequence));
  }
  const first = await droppedWith(42);
  const again = await droppedWith(42);
  const other = await droppedWith(43);
  t.ok(first.length > 0, `seed 42 drops something (${first.length})`);
  t.same(again, first, `seed 42 drops the same datagrams again (${first.slice(0, 8).join(',')}...)`);
  t.not(other.join(','), first.join(','), 'seed 43 drops others');
  // The pure decision function gives the same pattern without sockets.
  const fate = lossyPath({ lossPercent: 10, seed: 42 });
  const decided = [...Array(400).keys()].filter(() => fate().dropped);
  t.same(decided, first, 'lossyPath() alone predicts the relay');
});

t.test('both directions: replies come back through the relay, lossy too, from a per-client address', async (t) => {
  const seenFrom = new Set<number>();
  const server = await endpoint(t, (data, from, socket) => {
    seenFrom.add(from.port);
    socket.send(data, from.port, from.address); // echo
  });
  const client = await endpoint(t);
  const relay = await relayTo(t, server.port, { lossPercent: 10, seed: 9 });
  await sendThrough(client, relay, server, 300);
  await until(() => relay.counters.toClient.received === server.got.length && relay.pending() === 0, 'echoes to pass the relay');
  await until(() => client.got.length === relay.counters.toClient.delivered, 'the client to get the echoes');
  t.equal(relay.counters.toClient.received, server.got.length, 'every echo reached the relay');
  t.equal(client.got.length, server.got.length - relay.counters.toClient.dropped, 'the client got the echoes the relay did not drop');
  t.ok(relay.counters.toClient.dropped > 0, `and the way back is lossy too (${relay.counters.toClient.dropped} dropped)`);
  t.equal(seenFrom.size, 1, 'one client, one upstream address');
  t.not([...seenFrom][0], client.port, 'the server sees the relay\'s address for the client, not the client\'s (as behind a NAT)');
});

t.test('bad options are refused', async (t) => {
  t.throws(() => lossyPath({ lossPercent: 101 }), RangeError);
  t.throws(() => lossyPath({ jitterMs: -1 }), RangeError);
  t.throws(() => lossyPath({ duplicatePercent: Number.NaN }), RangeError);
});
