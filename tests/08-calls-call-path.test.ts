// The stage 08 client's call path (08-calls/call-path.ts) on a manual clock: the probes (at once,
// every 200 ms while connecting, every 1 s after), the path state (connecting -> direct when both
// directions are proven, -> relayed after 3 s without, direct -> relayed when the peer goes
// quiet, and back), the peer's address re-learned from a new datagram, and the README's checks
// on each direct datagram. Datagrams are built and read with the README's byte layout here. Last,
// the client's one UDP socket (udp-path.ts) with real sockets: the peer is sent to from the port the
// server sees, and datagrams from anyone but the server go to the call's checks.
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import t from 'tap';
import { CallPath, type CallPathState, DirectDatagrams, type PeerAddress } from '../08-calls/call-path.ts';
import { openUdpSocket } from '../08-calls/udp-path.ts';
import { ManualScheduler } from './support/manual-scheduler.ts';

const token = Buffer.from('7e21c4095b3af0d2', 'hex');
const peer: PeerAddress = { address: '198.51.100.4', port: 40001 };

/** README: CALL_PROBE 05 | token 8 | probe u32 | received u32. */
function probe(probeNumber: number, received: number, withToken = token): Buffer {
  const datagram = Buffer.alloc(17);
  datagram[0] = 0x05;
  withToken.copy(datagram, 1);
  datagram.writeUInt32BE(probeNumber, 9);
  datagram.writeUInt32BE(received, 13);
  return datagram;
}

/** README: CALL_VOICE 06 | token 8 | sequence u16 | Opus packet. */
function voice(sequence: number, packet = Buffer.from([0xf8, 1, 2]), withToken = token): Buffer {
  const header = Buffer.alloc(11);
  header[0] = 0x06;
  withToken.copy(header, 1);
  header.writeUInt16BE(sequence, 9);
  return Buffer.concat([header, packet]);
}

function readSent(datagram: Buffer) {
  return datagram[0] === 0x05
    ? { type: 'probe', token: datagram.subarray(1, 9).toString('hex'), probe: datagram.readUInt32BE(9), received: datagram.readUInt32BE(13), length: datagram.length }
    : { type: 'voice', token: datagram.subarray(1, 9).toString('hex'), sequence: datagram.readUInt16BE(9), length: datagram.length };
}

function callOnClock(options: { peerAddress?: PeerAddress | null; relayBecause?: '--relay' | '--tcp'; blockDirect?: boolean } = {}) {
  const clock = new ManualScheduler();
  const sent: { at: number; to: PeerAddress; datagram: ReturnType<typeof readSent> }[] = [];
  const changes: { state: CallPathState; line: string; at: number }[] = [];
  const heard: number[] = [];
  const losses: number[] = [];
  const path = new CallPath(
    { token, peerAddress: options.peerAddress === undefined ? peer : options.peerAddress, relayBecause: options.relayBecause },
    {
      sendTo: (datagram, to) => sent.push({ at: clock.now(), to, datagram: readSent(datagram) }),
      pathChanged: (state, line) => changes.push({ state, line, at: clock.now() }),
      voice: (sequence) => heard.push(sequence),
      expectedLoss: (percent) => losses.push(percent),
    },
    clock,
  );
  const inbox = new DirectDatagrams(options.blockDirect ?? false);
  inbox.call = path;
  const probes = () => sent.filter((s) => s.datagram.type === 'probe');
  return { clock, path, inbox, sent, changes, heard, losses, probes };
}

t.test('CALL_START: connecting, a probe with the token to peer_address at once, then every 200 ms', async (t) => {
  const { clock, path, probes, changes } = callOnClock();
  path.start();
  t.same(changes.map((c) => c.state), ['connecting']);
  t.same(probes().map((p) => [p.at, p.datagram.probe, p.datagram.received, p.datagram.token, p.datagram.length]), [[0, 1, 0, token.toString('hex'), 17]]);
  t.same(probes()[0]!.to, peer);
  clock.advance(1000);
  t.same(probes().map((p) => p.at), [0, 200, 400, 600, 800, 1000]);
  t.same(probes().map((p) => p.datagram.probe), [1, 2, 3, 4, 5, 6], '+1 per probe');
});

t.test('3 s in connecting without a direct datagram: relayed (one line), then probes every 1 s', async (t) => {
  const { clock, path, probes, changes } = callOnClock();
  path.start();
  clock.advance(2999);
  t.equal(path.state, 'connecting');
  clock.advance(1);
  t.equal(path.state, 'relayed');
  t.same(changes.map((c) => [c.state, c.at]), [['connecting', 0], ['relayed', 3000]]);
  t.equal(changes[1]!.line, 'relayed through the server (no direct packet within 3 s)');
  const before = probes().length;
  clock.advance(3000);
  t.equal(probes().length - before, 3, 'one probe a second while relayed');
});

t.test('direct needs both directions: a valid datagram from the peer AND its probe saying received > 0', async (t) => {
  const { clock, path, inbox, probes, changes } = callOnClock();
  path.start();
  clock.advance(100);
  inbox.receive(probe(1, 0), peer);
  t.equal(path.state, 'connecting', 'the peer reaches us, but does not yet say we reach it');
  t.same(probes().at(-1)!.datagram, { type: 'probe', token: token.toString('hex'), probe: 2, received: 1, length: 17 }, 'received first 1: the next probe goes at once');
  t.equal(probes().at(-1)!.at, 100);
  inbox.receive(probe(2, 1), peer);
  t.equal(path.state, 'direct');
  t.equal(changes.at(-1)!.line, 'direct to 198.51.100.4:40001');
  const at = clock.now();
  clock.advance(2000);
  t.same(probes().filter((p) => p.at > at).map((p) => p.at - at), [1000, 2000], 'probes every 1 s once direct');
});

t.test('a probe saying received > 0 alone is not enough when nothing of the peer reached us through the checks', async (t) => {
  const { clock, path, inbox } = callOnClock({ blockDirect: true });
  path.start();
  inbox.receive(probe(1, 5), peer);
  inbox.receive(voice(1), peer);
  t.equal(path.state, 'connecting');
  t.equal(inbox.counters.blocked, 2, '--block-direct drops every direct datagram');
  clock.advance(3000);
  t.equal(path.state, 'relayed', 'and the 3 s fallback happens');
});

t.test('direct -> relayed after 3 s without a direct datagram; a new proof brings it back to direct', async (t) => {
  const { clock, path, inbox, changes } = callOnClock();
  path.start();
  inbox.receive(probe(1, 1), peer);
  t.equal(path.state, 'direct');
  clock.advance(1000);
  inbox.receive(probe(2, 2), peer);
  clock.advance(2999);
  t.equal(path.state, 'direct', '3 s from the last datagram, not from the start');
  clock.advance(1);
  t.equal(path.state, 'relayed');
  t.match(changes.at(-1)!.line, /^relayed through the server \(no direct packet for 3 s\)$/);
  inbox.receive(probe(3, 2), peer);
  t.equal(path.state, 'relayed', 'a datagram alone after the fall is not a proof: the peer must say it hears us again');
  inbox.receive(probe(4, 3), peer);
  t.equal(path.state, 'direct');
});

t.test('direct -> relayed when the peer still sends but its received stops growing (our packets do not reach it)', async (t) => {
  const { clock, path, inbox, changes } = callOnClock();
  path.start();
  inbox.receive(probe(1, 1), peer);
  t.equal(path.state, 'direct');
  for (let i = 2; i <= 5; i++) {
    clock.advance(1000);
    inbox.receive(probe(i, 1), peer); // the same received every time
  }
  t.equal(path.state, 'relayed');
  t.equal(changes.at(-1)!.at, 3000);
  t.match(changes.at(-1)!.line, /our packets stopped reaching the peer/);
});

t.test('--relay and a null peer_address: relayed at once, and never a datagram to the peer', async (t) => {
  for (const options of [{ relayBecause: '--relay' as const }, { peerAddress: null }, { relayBecause: '--tcp' as const }]) {
    const { clock, path, sent, changes } = callOnClock(options);
    path.start();
    clock.advance(10_000);
    path.sendVoice(1, Buffer.from([1]));
    t.same(changes.map((c) => c.state), ['relayed'], JSON.stringify(options));
    if (options.relayBecause === '--relay') t.equal(changes[0]!.line, 'relayed through the server (--relay)');
    if ('peerAddress' in options) t.same(sent, [], 'no probe, no voice: nowhere to send');
    else t.same(sent.filter((s) => s.datagram.type === 'probe'), [], 'no probe');
  }
});

t.test('CALL_VOICE goes to the bound address with the token and the sequence given; the peer\'s voice reaches the hook', async (t) => {
  const { path, inbox, sent, heard } = callOnClock();
  path.start();
  inbox.receive(probe(1, 1), peer);
  path.sendVoice(300, Buffer.alloc(60, 7));
  t.same(sent.at(-1)!.datagram, { type: 'voice', token: token.toString('hex'), sequence: 300, length: 71 });
  inbox.receive(voice(40), peer);
  inbox.receive(voice(41), peer);
  t.same(heard, [40, 41]);
});

t.test('the README\'s checks on a direct datagram, in order, each counted', async (t) => {
  const { path, inbox, heard } = callOnClock();
  const stranger = { address: '203.0.113.99', port: 5555 };
  inbox.receive(Buffer.from([0x02, 0, 1, 0, 1, 9]), stranger); // a server type from elsewhere
  inbox.receive(Buffer.alloc(0), stranger);
  inbox.receive(probe(1, 0).subarray(0, 16), peer);
  inbox.receive(voice(1).subarray(0, 11), peer);
  t.same([inbox.counters.bad_type, inbox.counters.bad_size], [2, 2]);
  inbox.call = null;
  inbox.receive(probe(1, 0), peer);
  t.equal(inbox.counters.bad_token, 1, 'no call active: the token cannot be right');
  inbox.call = path;
  path.start();
  inbox.receive(voice(5, undefined, Buffer.from('7e21c4095b3af0d3', 'hex')), peer);
  t.equal(inbox.counters.bad_token, 2, 'a wrong token');
  inbox.receive(voice(5), peer);
  inbox.receive(voice(5), peer);
  t.equal(inbox.counters.replayed, 1, 'the same sequence twice');
  inbox.receive(probe(3, 0), peer);
  inbox.receive(probe(2, 0), stranger);
  t.equal(inbox.counters.replayed, 2, 'an old probe number from a stranger\'s socket');
  t.same(path.stats.peerAddress, peer, 'and it moved nothing');
  for (let sequence = 6; sequence < 70; sequence++) inbox.receive(voice(sequence), peer);
  t.equal(inbox.counters.rate_limited, 64 - 50 + 1, 'a burst of CALL_VOICE at once: 50 taken (the one before counted), the rest rate limited');
  t.equal(heard.length, inbox.counters.accepted - 1, 'every accepted voice reached the jitter buffer (one accepted was a probe)');
});

t.test('a NEW datagram with the token from another address binds it: probes and voice go there from then on', async (t) => {
  const { path, inbox, sent } = callOnClock();
  path.start();
  const reflexive = { address: '198.51.100.4', port: 40777 };
  inbox.receive(probe(1, 1), reflexive);
  t.equal(path.state, 'direct');
  t.same(path.stats.peerAddress, reflexive);
  path.sendVoice(1, Buffer.from([1]));
  t.same(sent.at(-1)!.to, reflexive);
});

t.test('stop() at CALL_END: no more probes', async (t) => {
  const { clock, path, probes } = callOnClock();
  path.start();
  path.stop();
  const count = probes().length;
  clock.advance(10_000);
  t.equal(probes().length, count);
  t.equal(clock.pendingTimers, 0, 'no timer left behind');
});

t.test('the direct path\'s loss, from the peer\'s received against what we sent, sets the expected loss (5-30 %)', async (t) => {
  const { clock, path, inbox, losses } = callOnClock();
  path.start();
  inbox.receive(probe(1, 1), peer); // direct; what we have sent so far: probes
  const sentBefore = path.stats.probesSent + path.stats.voiceSent;
  inbox.receive(probe(2, sentBefore), peer); // the mark: everything arrived
  for (let sequence = 0; sequence < 50; sequence++) {
    clock.advance(20);
    path.sendVoice(sequence, Buffer.from([1]));
  }
  const sentNow = path.stats.probesSent + path.stats.voiceSent;
  inbox.receive(probe(3, sentBefore + Math.round((sentNow - sentBefore) * 0.8)), peer); // 20 % lost
  t.same(losses, [20]);
});

t.test('the client\'s one UDP socket: datagrams from the server go one way, from anyone else the other; a peer is sent to from the port the server sees', async (t) => {
  const bound = async () => {
    const socket = createSocket('udp4');
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    t.teardown(() => socket.close());
    return socket;
  };
  const server = await bound();
  const peerSocket = await bound();
  const fromServer: Buffer[] = [];
  const fromOthers: { datagram: Buffer; from: PeerAddress }[] = [];
  const udp = await openUdpSocket({ host: '127.0.0.1', port: server.address().port }, (d) => fromServer.push(d), (datagram, from) => fromOthers.push({ datagram, from }));
  t.teardown(() => udp.close());
  const serverSaw = once(server, 'message');
  udp.send(Buffer.from([0x03]));
  const [, clientAtServer] = (await serverSaw) as [Buffer, { port: number }];
  const peerSaw = once(peerSocket, 'message');
  udp.sendTo(Buffer.from([0x05]), { address: '127.0.0.1', port: peerSocket.address().port });
  const [, clientAtPeer] = (await peerSaw) as [Buffer, { port: number }];
  t.equal(clientAtPeer.port, clientAtServer.port, 'the peer sees the port the server saw (one socket)');
  server.send(Buffer.from([0x04]), clientAtServer.port, '127.0.0.1');
  peerSocket.send(Buffer.from([0x06]), clientAtServer.port, '127.0.0.1');
  const deadline = Date.now() + 2000;
  while ((fromServer.length === 0 || fromOthers.length === 0) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.same(fromServer.map((d) => d[0]), [0x04], 'the server\'s datagram to the server side');
  t.same(fromOthers.map((o) => [o.datagram[0], o.from.address, o.from.port]), [[0x06, '127.0.0.1', peerSocket.address().port]], 'the peer\'s to the other side, with its address');
});
