// The stage 06 client's UDP path decisions (06-udp/udp-path.ts) on a manual clock: when it PINGs,
// when it switches to UDP, falls back to TCP and comes back, and what it measures (RTT, upstream
// loss, the loss the encoder is told to expect). The datagrams are parsed with the README's layout.
import t from 'tap';
import { parseClientDatagram, pongDatagram, voiceDownDatagram } from '../06-udp/datagrams.ts';
import type { VoicePath } from '../06-udp/protocol.ts';
import { statsLines, UdpPath } from '../06-udp/udp-path.ts';
import { ManualScheduler } from './support/manual-scheduler.ts';

const token = Buffer.from('0f3a9c5e81d2b647', 'hex');

function pathOnClock() {
  const clock = new ManualScheduler();
  const sent: Buffer[] = [];
  const switches: { path: VoicePath; line: string; at: number }[] = [];
  const voices: [number, number, number][] = [];
  const expected: number[] = [];
  const path = new UdpPath(
    token,
    {
      send: (datagram) => sent.push(datagram),
      pathChanged: (to, line) => switches.push({ path: to, line, at: clock.now() }),
      voice: (speaker, sequence, packet) => voices.push([speaker, sequence, packet.length]),
      expectedLoss: (percent) => expected.push(percent),
    },
    clock,
  );
  const pings = () => sent.map((d) => parseClientDatagram(d)).filter((d) => 'type' in d && d.type === 'ping') as { ping: number; clientTime: number; token: Buffer }[];
  /** Answers the last PING sent, `rttMs` later, saying the server got `received` datagrams. */
  const answer = (rttMs: number, received?: number) => {
    const last = pings().at(-1)!;
    clock.advance(rttMs);
    path.receive(pongDatagram(last.ping, last.clientTime, received ?? sent.length));
  };
  return { clock, path, sent, switches, voices, expected, pings, answer };
}

t.test('PING 1 at once with the token, then one every 2 s; voice goes by TCP until a PONG', async (t) => {
  const { clock, path, pings } = pathOnClock();
  path.start();
  t.equal(pings().length, 1);
  t.same(pings()[0]!.token, token);
  t.equal(path.path, 'tcp');
  clock.advance(1999);
  t.equal(pings().length, 1);
  clock.advance(1);
  t.same(pings().map((p) => p.ping), [1, 2]);
  path.stop();
  clock.advance(10_000);
  t.equal(pings().length, 2, 'stop() ends the pinging');
});

t.test('the first PONG switches to UDP (one line) and gives the round trip', async (t) => {
  const { path, switches, answer } = pathOnClock();
  path.start();
  answer(35);
  t.equal(path.path, 'udp');
  t.same(switches.map((s) => s.path), ['udp']);
  t.equal(path.stats.rttLastMs, 35);
  t.equal(path.stats.upstreamLossPercent, 0);
});

t.test('no PONG for the first PING within 3 s: TCP, with one line saying so; pings go on', async (t) => {
  const { clock, path, switches, pings } = pathOnClock();
  path.start();
  clock.advance(2999);
  t.same(switches, []);
  clock.advance(1);
  t.same(switches.map((s) => [s.path, s.at]), [['tcp', 3000]]);
  t.match(switches[0]!.line, /TCP/);
  clock.advance(4000);
  t.equal(pings().length, 4, 'still pinging every 2 s');
});

t.test('on UDP, 3 PINGs in a row unanswered fall back to TCP; 2 answered in a row bring UDP back', async (t) => {
  const { clock, path, switches, answer } = pathOnClock();
  path.start();
  answer(10); // t=10: udp
  clock.advance(1990); // t=2000: PING 2 (PING 1 answered)
  clock.advance(2000); // PING 3: 2 unanswered
  clock.advance(2000); // PING 4: 2, 3 unanswered
  t.equal(path.path, 'udp', 'two missed is not enough');
  clock.advance(2000); // PING 5: 2, 3, 4 unanswered
  t.equal(path.path, 'tcp');
  t.same(switches.map((s) => [s.path, s.at]), [['udp', 10], ['tcp', 8000]]);
  answer(10); // PONG for 5
  t.equal(path.path, 'tcp', 'one PONG is not enough to come back');
  clock.advance(1990);
  answer(10); // PONG for 6
  t.equal(path.path, 'udp');
  t.equal(switches.length, 3);
  t.equal(path.stats.switchesToTcp, 1);
  t.equal(path.stats.switchesToUdp, 2);
});

t.test('a PONG that is no answer to a recent PING of ours, or comes twice, is ignored', async (t) => {
  const { path, switches, pings } = pathOnClock();
  path.start();
  path.receive(pongDatagram(99, 0, 1));
  t.same(switches, []);
  const first = pings()[0]!;
  path.receive(pongDatagram(first.ping, first.clientTime, 1));
  path.receive(pongDatagram(first.ping, first.clientTime, 1));
  t.equal(path.stats.pongsReceived, 1);
  t.equal(path.stats.strayDatagrams, 2);
  path.receive(Buffer.from([0x04, 1, 2])); // too short
  t.equal(path.stats.strayDatagrams, 3);
});

t.test('upstream loss: datagrams sent by the PING against PONG\'s received; the encoder expects it within 5-30 %', async (t) => {
  const { clock, path, sent, expected, answer } = pathOnClock();
  path.start();
  answer(5); // 1 sent, 1 received
  for (let i = 0; i < 99; i++) path.sendVoice(i, Buffer.of(1, 2, 3));
  clock.advance(1995); // PING 2: 101 datagrams sent
  t.equal(sent.length, 101);
  answer(5, 91); // 10 of the 100 since the last PONG lost
  t.equal(Math.round(path.stats.upstreamLossPercent!), 10);
  t.same(expected, [10]);
  const voiceUp = parseClientDatagram(sent[1]!);
  t.match(voiceUp, { type: 'voice_up', sequence: 0 });
  for (let i = 0; i < 99; i++) path.sendVoice(i, Buffer.of(1));
  clock.advance(1995);
  answer(5, 91 + 100); // none lost: back to the floor of 5 %
  for (let i = 0; i < 99; i++) path.sendVoice(i, Buffer.of(1));
  clock.advance(1995);
  answer(5, 191 + 40); // 60 % lost: capped at 30
  t.same(expected, [10, 5, 30]);
});

t.test('VOICE_DOWN goes to the jitter buffer; stats lines name the path and each speaker', async (t) => {
  const { path, voices, answer } = pathOnClock();
  path.start();
  answer(12);
  path.receive(voiceDownDatagram(2, 7, Buffer.of(1, 2, 3)));
  t.same(voices, [[2, 7, 3]]);
  const lines = statsLines(path.stats, [{ id: 2, received: 95, lost: 5, jitterMs: 1.5, fecRecovered: 4, concealed: 1, late: 0, duplicates: 2 }], () => 'Bob');
  t.match(lines[0], /path udp, RTT last 12\.0 ms mean 12\.0 ms/);
  t.match(lines[1], /from Bob: 95 packets, lost 5 \(5\.0 %\), jitter 1\.5 ms, 4 rebuilt from FEC, 1 concealed, 0 late, 2 duplicates/);
  t.same(statsLines(null, [], () => ''), ['stats: path tcp (--tcp: no UDP)']);
});
