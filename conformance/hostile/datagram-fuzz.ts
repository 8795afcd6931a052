// The fuzzer's datagram cases (stage 06 on): seeded datagrams made from a real user's valid VOICE_UP
// and PING (then mutated: bits flipped, cut short, lengthened, type or token bytes overwritten) or
// random bytes, sent one every 25 ms from an address that never joined. A model of the README's
// checks (sizes, type, token, the PING number and the 64-wide replay window) says which are valid
// and new; those VOICE_UP must reach the victim's room-mate byte for byte and in order, and nothing
// else may; the stranger may get PONGs only for valid new PINGs (13 bytes, echoing them).
import { FramedUser } from '../harness/framed-user.ts';
import type { ServerUnderTest } from '../harness/server-process.ts';
import { DatagramPeer } from '../harness/datagram-peer.ts';
import { SeededRandom } from '../harness/seeded-random.ts';
import { frameBytes, jsonFrameBytes } from '../harness/frame-wire.ts';
import { type StageWire } from './wire-spec.ts';
import { describeDatagram, ping, voiceDown, voiceUp } from '../checks/06-udp.ts';

const PACE_MS = 25;
const NOTHING_MS = 400;
const REPLAY_WINDOW = 64;
const BYE = 0x04;
const PATH = 0x0e;
const LIST_ROOMS = 0x0c;
const ROOMS = 0x0d;

/** One case: the datagram and how it was made (printed when a round fails). */
interface DatagramCase {
  seed: number;
  datagram: Buffer;
  recipe: string;
}

function datagramCase(seed: number, token: Buffer): DatagramCase {
  const random = new SeededRandom(seed);
  if (random.chance(0.15)) {
    const bytes = random.bytes(random.int(0, 1400));
    return { seed, datagram: bytes, recipe: `${bytes.length} random bytes` };
  }
  const isVoice = random.chance(0.7);
  let datagram = isVoice ? voiceUp(token, random.int(0, 0xffff), random.bytes(random.int(1, 120))) : ping(token, random.int(1, 2_000_000), random.int(0, 0xffffffff));
  const steps: string[] = [isVoice ? 'VOICE_UP' : 'PING'];
  const mutations = random.chance(0.3) ? 0 : random.int(1, 3);
  for (let i = 0; i < mutations; i++) {
    switch (random.int(0, 4)) {
      case 0: {
        const at = random.int(0, Math.max(0, datagram.length - 1));
        datagram = Buffer.from(datagram);
        if (datagram.length > 0) datagram[at]! ^= 1 << random.int(0, 7);
        steps.push(`flip a bit of byte ${at}`);
        break;
      }
      case 1: {
        const length = random.int(0, datagram.length);
        datagram = datagram.subarray(0, length);
        steps.push(`cut to ${length} bytes`);
        break;
      }
      case 2: {
        const more = random.int(1, random.chance(0.5) ? 8 : 1300);
        datagram = Buffer.concat([datagram, random.bytes(more)]);
        steps.push(`add ${more} bytes`);
        break;
      }
      case 3: {
        datagram = Buffer.from(datagram);
        if (datagram.length > 0) datagram[0] = random.pick([0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0xff]);
        steps.push(`type byte ${datagram[0]}`);
        break;
      }
      default: {
        datagram = Buffer.from(datagram);
        const at = random.int(1, 8);
        if (datagram.length > at) datagram[at] = random.int(0, 255);
        steps.push(`token byte ${at} overwritten`);
      }
    }
  }
  return { seed, datagram, recipe: steps.join(', ') };
}

/** The README's checks 1-5 for one user's token, with that user's PING number and replay window. */
class DatagramModel {
  private lastPing = 0;
  private highest: number | null = null;
  private readonly seen = new Set<number>();
  constructor(private readonly token: Buffer) {}

  /** 'voice' / 'ping' for a valid new datagram (and records it), null for one the server must drop. */
  judge(datagram: Buffer): 'voice' | 'ping' | null {
    if (datagram.length < 1 || datagram.length > 1286) return null;
    const type = datagram[0];
    if (type === 0x01 ? datagram.length < 12 : type === 0x03 ? datagram.length !== 17 : true) return null;
    if (!datagram.subarray(1, 9).equals(this.token)) return null;
    if (type === 0x03) {
      const number = datagram.readUInt32BE(9);
      if (number <= this.lastPing) return null;
      this.lastPing = number;
      return 'ping';
    }
    const sequence = datagram.readUInt16BE(9);
    if (this.highest !== null) {
      const ahead = (sequence - this.highest) & 0xffff;
      if (ahead === 0 || ahead >= 0x8000) {
        const behind = (this.highest - sequence) & 0xffff;
        if (behind >= REPLAY_WINDOW || this.seen.has(sequence)) return null;
        this.seen.add(sequence);
        return 'voice';
      }
    }
    this.highest = sequence;
    for (const old of [...this.seen]) if (((sequence - old) & 0xffff) >= REPLAY_WINDOW) this.seen.delete(old);
    this.seen.add(sequence);
    return 'voice';
  }
}

/** Joins `name` with WELCOME's token and id, and a UDP socket of its own. */
async function joinWithToken(server: ServerUnderTest, wire: StageWire, name: string, room: string) {
  const user = await FramedUser.join(server.host, server.port, { ...wire.hello(name, room), name }, { typeNames: wire.typeNames });
  const welcome = user.welcome;
  const udp = await DatagramPeer.start();
  return { user, udp, id: welcome.id as number, token: Buffer.from(String(welcome.token), 'hex'), to: { address: server.host, port: welcome.udp_port as number } };
}

/** Plays `count` datagram cases (seeds from `seed`) against a running stage 06 server; returns the failures (printed). */
export async function fuzzDatagrams(server: ServerUnderTest, wire: StageWire, seed: number, count: number, stage: string): Promise<number> {
  const room = `dgram-fuzz-${seed}`;
  const victim = await joinWithToken(server, wire, 'fz-victim', room);
  const listener = await joinWithToken(server, wire, 'fz-listener', room);
  const stranger = await DatagramPeer.start();
  let failed = 0;
  try {
    // The listener binds its address and asks for voice by UDP; LIST_ROOMS/ROOMS says the server read PATH.
    listener.udp.send(ping(listener.token, 1, 0), listener.to);
    await listener.udp.waitFor(() => listener.udp.received[0], 2_000, 'PONG to the listener', 'a valid PING is answered', () => 'nothing');
    const mark = listener.user.mark();
    listener.user.send(Buffer.concat([jsonFrameBytes(PATH, { path: 'udp' }), frameBytes(LIST_ROOMS)]));
    await listener.user.waitForFrame('ROOMS', (f) => f.type === ROOMS, { since: mark, timeoutMs: 2_000 });

    const model = new DatagramModel(victim.token);
    const cases = Array.from({ length: count }, (_, i) => datagramCase(seed + i, victim.token));
    const expectedVoice: Buffer[] = [];
    const validPings = new Map<number, DatagramCase>();
    const since = listener.udp.received.length;
    for (const fuzz of cases) {
      const verdict = model.judge(fuzz.datagram);
      if (verdict === 'voice') expectedVoice.push(voiceDown(victim.id, fuzz.datagram.readUInt16BE(9), fuzz.datagram.subarray(11)));
      if (verdict === 'ping') validPings.set(fuzz.datagram.readUInt32BE(9), fuzz);
      stranger.send(fuzz.datagram, victim.to);
      await new Promise((resolve) => setTimeout(resolve, PACE_MS));
    }
    await new Promise((resolve) => setTimeout(resolve, NOTHING_MS));
    listener.udp.send(ping(listener.token, 2, 0), listener.to);
    await listener.udp.waitFor(() => listener.udp.received.slice(since).find((d) => d.data[0] === 0x04), 2_000, 'PONG to the listener after the cases', 'the server must survive any datagram', () => 'nothing');

    const got = listener.udp.received.slice(since).filter((d) => d.data[0] === 0x02).map((d) => d.data);
    const firstWrong = expectedVoice.findIndex((e, i) => got[i] === undefined || !got[i]!.equals(e));
    if (got.length !== expectedVoice.length || firstWrong !== -1) {
      failed++;
      const at = firstWrong === -1 ? Math.min(got.length, expectedVoice.length) : firstWrong;
      const culprit = cases.find((c) => got[at] !== undefined && c.datagram.subarray(11).equals(got[at]!.subarray(5)));
      console.log(`FAIL stage ${stage} datagram seeds ${seed}..${seed + count - 1}: the listener got ${got.length} VOICE_DOWN, the README's checks let ${expectedVoice.length} VOICE_UP through; #${at}: got ${got[at] ? describeDatagram(got[at]!) : 'nothing'}, expected ${expectedVoice[at] ? describeDatagram(expectedVoice[at]!) : 'nothing'}`);
      if (culprit) console.log(`  it came from seed ${culprit.seed} (${culprit.recipe})`);
    }
    const badAnswer = stranger.received.find((d) => d.data.length !== 13 || d.data[0] !== 0x04 || !validPings.has(d.data.readUInt32BE(1)) || !d.data.subarray(5, 9).equals(validPings.get(d.data.readUInt32BE(1))!.datagram.subarray(13, 17)));
    if (badAnswer !== undefined) {
      failed++;
      console.log(`FAIL stage ${stage} datagram seeds ${seed}..${seed + count - 1}: the stranger was sent ${describeDatagram(badAnswer.data)}, which answers no valid new PING (only those may get a 13-byte PONG)`);
    }
    console.log(`stage ${stage}: datagrams: ${failed === 0 ? 'PASS' : 'FAIL'}: ${count} cases, ${expectedVoice.length} valid new VOICE_UP forwarded, ${validPings.size} valid new PINGs, ${stranger.received.length} datagrams to the stranger (PONGs: at most 5 a second)`);
  } finally {
    for (const user of [victim, listener]) {
      user.user.send(frameBytes(BYE));
      user.user.destroy();
      user.udp.close();
    }
    stranger.close();
  }
  return failed;
}
