// Stage 06's server checks: voice as UDP datagrams, control over TCP. Asserted over raw sockets
// only: a TCP connection per user (stage 05's frames, protocol "voice-chat/06") and a UDP socket
// of the test per user, speaking the datagram layouts of 06-udp/README.md (nothing from 06-udp/
// is imported), so they grade a server in any language. Packets are seeded random bytes: a
// forwarding server never looks inside them.
//
// Stages 07 and 08 keep this voice unchanged (their READMEs: "Voice is stage 06's, unchanged"), so
// their grades run these checks too: udpServerChecks(WIRES['07']) joins with that stage's protocol.
// The helpers are exported for the hostile datagram cases (conformance/hostile/datagram-checks.ts)
// and for stage 08's checks.
//
// "Nothing came" needs an end to the waiting. Over TCP: LIST_ROOMS, then ROOMS (the server writes
// one connection in order). Over UDP: a bounded wait (NOTHING_MS), then a valid PING from the
// same socket must still get its PONG: the server is alive, and on loopback anything it sent
// before that PONG has arrived.
import { type DocumentedBucket, expectBucketLimit, expectRefill, sendAtRate } from '../harness/bucket-limit.ts';
import { showBytes } from '../harness/check-failure.ts';
import { expect, type Check } from '../harness/checks.ts';
import { DatagramPeer, type ReceivedDatagram } from '../harness/datagram-peer.ts';
import { expectMedianForwardedAtOnce, FORWARDING_WINDOW } from '../harness/forwarding-delay.ts';
import { frameBytes, jsonFrameBytes } from '../harness/frame-wire.ts';
import type { FramedUser } from '../harness/framed-user.ts';
import { expectError, jsonOf, type Party, type TypeNames, withParty } from '../harness/party.ts';
import { moveRefillCheck } from '../harness/move-refill-check.ts';
import { type StageWire, WIRES } from '../hostile/wire-spec.ts';
import { SeededRandom } from '../harness/seeded-random.ts';
import { withStallWatch } from '../harness/stall-watch.ts';
import { RATE_TOLERANCE, showMs } from '../harness/tolerance.ts';
import { Unmeasured } from '../harness/unmeasured.ts';
import { WireClient } from '../harness/wire-client.ts';

// TCP frames (the README's first table).
const HELLO = 0x01;
const WELCOME = 0x02;
const VOICE = 0x03;
const BYE = 0x04;
const ERROR = 0x05;
const USERS = 0x06;
const JOINED = 0x07;
const LEFT = 0x08;
const SPEAKING = 0x09;
const JOIN = 0x0a;
const JOIN_REFUSED = 0x0b;
const LIST_ROOMS = 0x0c;
const ROOMS = 0x0d;
const PATH = 0x0e;
const TYPE_NAMES: Record<number, string> = {
  [HELLO]: 'HELLO', [WELCOME]: 'WELCOME', [VOICE]: 'VOICE', [BYE]: 'BYE', [ERROR]: 'ERROR', [USERS]: 'USERS', [JOINED]: 'JOINED',
  [LEFT]: 'LEFT', [SPEAKING]: 'SPEAKING', [JOIN]: 'JOIN', [JOIN_REFUSED]: 'JOIN_REFUSED', [LIST_ROOMS]: 'LIST_ROOMS', [ROOMS]: 'ROOMS', [PATH]: 'PATH',
};
// Datagrams (the README's second table).
const VOICE_UP = 0x01;
const VOICE_DOWN = 0x02;
const PING = 0x03;
const PONG = 0x04;
const PING_BYTES = 17;
const PONG_BYTES = 13;

const PROTOCOL = 'voice-chat/06';
/** The README's limits. */
const MAX_OPUS_PACKET_BYTES = 1275;
/** One bucket for TCP VOICE and VOICE_UP: 50/s, bursts of 10. */
const VOICE_BUCKET: DocumentedBucket = { burst: 10, perSecond: 50 };
/** "At most 5 answered per second per user". */
const PONG_BUCKET: DocumentedBucket = { burst: 5, perSecond: 5 };
/** The PONG rate check: PINGs at once (twice the burst), then PINGs at 4 times the rate for the rate rule's window. */
const PONG_BURST_PINGS = 10;
const PONG_SEND_PER_SECOND = 20;
const PONG_SEND_MS = 3_000;
/** "At once", with room for a busy machine. */
const DEADLINE_MS = 1_500;
/** How long a check waits for a datagram that must NOT come before proving the server alive. */
const NOTHING_MS = 400;
/** Slower than one per 20 ms, so a well-behaved sender never meets the rate limit. */
const PACE_MS = 25;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Client -> server VOICE_UP: 01 | token 8 | sequence u16 | packet. */
export function voiceUp(token: Buffer, sequence: number, packet: Buffer): Buffer {
  const head = Buffer.alloc(11);
  head[0] = VOICE_UP;
  token.copy(head, 1);
  head.writeUInt16BE(sequence & 0xffff, 9);
  return Buffer.concat([head, packet]);
}

/** What a PATH udp listener must get for it: 02 | speaker u16 | sequence u16 | the same packet. */
export function voiceDown(speaker: number, sequence: number, packet: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = VOICE_DOWN;
  head.writeUInt16BE(speaker, 1);
  head.writeUInt16BE(sequence & 0xffff, 3);
  return Buffer.concat([head, packet]);
}

/** What a PATH tcp listener must get for it: a VOICE frame whose payload is speaker u16 | sequence u16 | packet. */
function tcpVoicePayload(speaker: number, sequence: number, packet: Buffer): Buffer {
  return voiceDown(speaker, sequence, packet).subarray(1);
}

/** Client -> server TCP VOICE (stage 05): sequence u16, then the packet. */
function tcpVoice(sequence: number, packet: Buffer): Buffer {
  const head = Buffer.alloc(2);
  head.writeUInt16BE(sequence & 0xffff);
  return frameBytes(VOICE, Buffer.concat([head, packet]));
}

/** Client -> server PING: 03 | token 8 | ping u32 | client_time u32. */
export function ping(token: Buffer, number: number, clientTime: number): Buffer {
  const datagram = Buffer.alloc(PING_BYTES);
  datagram[0] = PING;
  token.copy(datagram, 1);
  datagram.writeUInt32BE(number >>> 0, 9);
  datagram.writeUInt32BE(clientTime >>> 0, 13);
  return datagram;
}

export function packets(seed: number, sizes: number[]): Buffer[] {
  const random = new SeededRandom(seed);
  return sizes.map((size) => random.bytes(size));
}

/** "PONG ping 3 time 42 received 3 (13 bytes)" / "VOICE_DOWN speaker 2 seq 7 (60-byte packet)" / hex. */
export function describeDatagram(data: Buffer): string {
  if (data[0] === PONG && data.length === PONG_BYTES) return `PONG ping ${data.readUInt32BE(1)} time ${data.readUInt32BE(5)} received ${data.readUInt32BE(9)} (13 bytes)`;
  if (data[0] === VOICE_DOWN && data.length >= 6) return `VOICE_DOWN speaker ${data.readUInt16BE(1)} seq ${data.readUInt16BE(3)} (${data.length - 5}-byte packet)`;
  return showBytes(data, 24);
}
export const describeAll = (list: ReceivedDatagram[]) => (list.length === 0 ? 'nothing' : list.slice(0, 8).map((d) => describeDatagram(d.data)).join('; ') + (list.length > 8 ? `; ... (${list.length} in all)` : ''));

/** One joined user with their TCP connection, WELCOME's token and a UDP socket of the test. */
export interface Member {
  user: FramedUser;
  id: number;
  token: Buffer;
  udp: DatagramPeer;
  /** The server's UDP address (the TCP host, WELCOME's udp_port). */
  server: { address: string; port: number };
  /** The next PING number this member sends. */
  nextPing: number;
}

/** The members of one check, so their UDP sockets are closed whatever happens. */
export class Members {
  readonly list: Member[] = [];
  /** `protocol`: what HELLO names (later stages reuse these helpers with their own). */
  constructor(readonly party: Party, readonly host: string, readonly protocol: string = PROTOCOL) {}

  /** Joins `room` with a stage 06 HELLO and requires WELCOME's id, 16-hex token and udp_port. */
  async join(name: string, room: string): Promise<Member> {
    const user = await this.party.join(name, { room, protocol: this.protocol });
    const welcome = user.welcome;
    const { id, token, udp_port: udpPort } = welcome;
    expect(
      Number.isInteger(id) && (id as number) >= 1 && (id as number) <= 0xffff && typeof token === 'string' && /^[0-9a-f]{16}$/.test(token) && Number.isInteger(udpPort) && (udpPort as number) >= 1 && (udpPort as number) <= 0xffff,
      `WELCOME to ${name} lacks a session id, a token or a UDP port`,
      {
        expected: `WELCOME {"name", "room", "id": 1..65535, "protocol": "${this.protocol}", "codec": "opus", ..., "token": 16 lowercase hex digits, "udp_port": 1..65535}`,
        actual: `WELCOME ${JSON.stringify(welcome)}`,
        hint: 'WELCOME hands out the secret token (8 random bytes as 16 hex digits) that every datagram carries, and the port of the server\'s UDP socket',
      },
    );
    const udp = await DatagramPeer.start();
    const member: Member = { user, id: id as number, token: Buffer.from(token as string, 'hex'), udp, server: { address: this.host, port: udpPort as number }, nextPing: 1 };
    this.list.push(member);
    return member;
  }

  closeAll(): void {
    for (const member of this.list) member.udp.close();
  }
}

/** `typeNames`: the stage's, so a failure names every frame it shows (07's TEXT, 08's ADDRESS). */
export async function withMembers(context: Parameters<Check['run']>[0], body: (members: Members) => Promise<void>, protocol: string = PROTOCOL, typeNames: TypeNames = TYPE_NAMES): Promise<void> {
  await withParty(context, typeNames, async (party) => {
    const members = new Members(party, context.server.host, protocol);
    try {
      await body(members);
    } finally {
      members.closeAll();
    }
  });
}

/** Sends a PING from `from` (default: the member's own socket) and waits for its PONG there; returns the PONG. */
export async function pingPong(member: Member, hint: string, from: DatagramPeer = member.udp): Promise<Buffer> {
  const number = member.nextPing++;
  const time = Math.floor(performance.now()) >>> 0;
  const since = from.received.length;
  const sent = ping(member.token, number, time);
  from.send(sent, member.server);
  const pong = await from.waitFor(
    () => from.received.slice(since).find((d) => d.data[0] === PONG && d.data.length >= 9 && d.data.readUInt32BE(1) === number),
    DEADLINE_MS,
    `PONG to ${member.user.name}'s PING ${number} (sent ${showBytes(sent, 17)})`,
    hint,
    () => `received: ${describeAll(from.received.slice(since))}`,
  );
  return pong.data;
}

/** Binds the member's UDP socket (a PING answered), then sends PATH and waits until the server has read it. */
export async function bindAndPath(member: Member, path: 'udp' | 'tcp'): Promise<void> {
  await pingPong(member, 'answer a PING that carries a connected user\'s token with a PONG to its source address (binding that address)');
  member.user.send(jsonFrameBytes(PATH, { path }));
  await barrier(member.user);
}

/** Sends LIST_ROOMS and waits for ROOMS: afterwards, everything sent to `user` before has arrived. */
async function barrier(user: FramedUser): Promise<void> {
  const since = user.mark();
  user.send(frameBytes(LIST_ROOMS));
  await user.waitForFrame('ROOMS in answer to LIST_ROOMS', (f) => f.type === ROOMS, { since, timeoutMs: DEADLINE_MS, hint: 'answer LIST_ROOMS with ROOMS, as in stage 04' });
}

/** Waits NOTHING_MS, then proves the server alive with a PING from each member: their sockets now hold all the server sent them. */
export async function udpBarrier(members: Member[]): Promise<void> {
  await sleep(NOTHING_MS);
  await Promise.all(members.map((m) => pingPong(m, 'the server stopped answering valid PINGs after the datagrams above: a bad datagram must be dropped, not break the server')));
}

export const voiceDownsAt = (member: Member, since: number) => member.udp.received.slice(since).filter((d) => d.data[0] === VOICE_DOWN);
const tcpVoicesAt = (member: Member, since: number) => member.user.framesOfType(VOICE, since);

/** Requires `member`'s UDP socket to have got exactly `expected` VOICE_DOWN since `since`, byte for byte, in order. */
function expectVoiceDowns(member: Member, expected: Buffer[], since: number, hint: string): void {
  const got = voiceDownsAt(member, since).map((d) => d.data);
  const wrong = expected.findIndex((e, i) => got[i] === undefined || !got[i]!.equals(e));
  expect(got.length === expected.length && wrong === -1, `${member.user.name} did not get exactly the VOICE_DOWN expected by UDP`, {
    expected: `${expected.length} VOICE_DOWN: ${expected.slice(0, 3).map(describeDatagram).join('; ')}${expected.length > 3 ? '; ...' : ''}`,
    actual: `${got.length} VOICE_DOWN: ${got.slice(0, 6).map(describeDatagram).join('; ') || 'none'}${wrong === -1 ? '' : `; #${wrong} differs`}`,
    received: wrong === -1 ? undefined : got[wrong],
    hint,
  });
}

/** Requires `member`'s TCP connection to have got exactly these VOICE payloads since `since` (from `speaker` only, if given). */
function expectTcpVoices(member: Member, expected: Buffer[], since: number, hint: string, speaker?: number): void {
  const got = tcpVoicesAt(member, since).map((f) => f.payload).filter((p) => speaker === undefined || (p.length >= 2 && p.readUInt16BE(0) === speaker));
  const wrong = expected.findIndex((e, i) => got[i] === undefined || !got[i]!.equals(e));
  expect(got.length === expected.length && wrong === -1, `${member.user.name} did not get exactly the TCP VOICE expected`, {
    expected: `${expected.length} VOICE frames (speaker u16 | sequence u16 | packet)`,
    actual: `${got.length} VOICE frames${wrong === -1 ? '' : `; #${wrong} is ${got[wrong] ? showBytes(got[wrong], 12) : 'missing'}`}`,
    received: wrong === -1 ? undefined : got[wrong],
    hint,
  });
}

/** Requires every datagram `peer` got since `since` to be no larger than `limit` (the datagram that provoked it). */
function expectNoAmplification(peer: DatagramPeer, since: number, limit: number, what: string): void {
  const larger = peer.received.slice(since).find((d) => d.data.length > limit);
  expect(larger === undefined, `the server answered ${what} with a larger datagram`, {
    expected: `no answer larger than the ${limit} bytes that provoked it`,
    actual: larger ? `${larger.data.length} bytes: ${describeDatagram(larger.data)}` : '',
    received: larger?.data,
    hint: 'never answer with more bytes than you received: a spoofed source address would turn the server into an amplifier',
  });
}

/** What the voice checks need of a stage's wire: the protocol its HELLO names, and its frames' names. */
export type UdpVoiceWire = Pick<StageWire, 'protocol' | 'typeNames' | 'moves'>;

/**
 * Stage 06's server checks of its voice (datagrams, PATH, the voice bucket), for any stage that
 * keeps it unchanged: 06, and 07 and 08 (whose READMEs' "Timing and limits" name these checks).
 * The names are the same at every stage: they are the same rules, and the READMEs cite them so.
 */
export function udpServerChecks(wire: UdpVoiceWire): Check[] {
  const protocol = wire.protocol ?? PROTOCOL;
  const moves = wire.moves!;
  const withVoiceMembers = (context: Parameters<Check['run']>[0], body: (members: Members) => Promise<void>) => withMembers(context, body, protocol, { ...wire.typeNames });
  return [
    {
      name: 'welcome and ping: WELCOME carries a 16-hex token and udp_port (different tokens per user); a PING with the token gets a 13-byte PONG echoing ping and time, with "received" counting',
      run: (context) =>
        withVoiceMembers(context, async (members) => {
          const ada = await members.join('Ada', 'pong');
          const bob = await members.join('Bob', 'pong');
          expect(!ada.token.equals(bob.token), 'two users got the same token', {
            expected: 'a fresh random token per session',
            actual: `Ada ${ada.token.toString('hex')}, Bob ${bob.token.toString('hex')}`,
            hint: 'crypto-random 8 bytes per WELCOME (crypto.randomBytes, secrets.token_bytes, SecureRandom), never derived from the id, name or time',
          });
          const hint = 'PONG is 04 | ping u32 | client_time u32 (both as received) | received u32: 13 bytes, to the PING\'s source address';
          for (let i = 1; i <= 3; i++) {
            const since = ada.udp.received.length;
            const number = ada.nextPing;
            const time = (0xfedcba00 + i) >>> 0;
            ada.nextPing++;
            const sent = ping(ada.token, number, time);
            ada.udp.send(sent, ada.server);
            const got = await ada.udp.waitFor(() => ada.udp.received[since], DEADLINE_MS, `PONG to PING ${number}`, hint, () => 'nothing');
            const expected = Buffer.alloc(PONG_BYTES);
            expected[0] = PONG;
            expected.writeUInt32BE(number, 1);
            expected.writeUInt32BE(time, 5);
            expected.writeUInt32BE(i, 9);
            expect(got.data.equals(expected), `PING ${number} got a wrong answer`, {
              expected: `${describeDatagram(expected)}: ${showBytes(expected)}`,
              actual: describeDatagram(got.data),
              sent,
              received: got.data,
              hint: `${hint}; "received" counts the datagrams (PING and VOICE_UP) accepted from this user so far`,
            });
            expect(got.port === ada.server.port, 'the PONG came from another port than udp_port', {
              expected: `from port ${ada.server.port} (WELCOME's udp_port)`,
              actual: `from port ${got.port}`,
              hint: 'one UDP socket for everyone: answer from the socket the PING came to (a NAT lets only that address back in)',
            });
          }
          expectNoAmplification(ada.udp, 0, PING_BYTES, 'a PING');
        }),
    },
    {
      name: 'silent drops: a wrong token, an unknown type, 11/16/18/1287-byte datagrams, a replayed VOICE_UP, one 100 sequences old and a PING with an old number from a second address get no answer and are never forwarded; VOICE_UP 1 and 60 sequences late (inside the 64-wide replay window) still are',
      run: (context) =>
        withVoiceMembers(context, async (members) => {
          const eve = await members.join('Eve', 'drops');
          const bob = await members.join('Bob', 'drops'); // hears by UDP
          const cy = await members.join('Cy', 'drops'); // hears by TCP
          await bindAndPath(eve, 'tcp');
          await bindAndPath(bob, 'udp');
          await bindAndPath(cy, 'tcp');
          const stranger = await DatagramPeer.start();
          try {
            const since = { eve: eve.udp.received.length, bob: bob.udp.received.length, bobTcp: bob.user.mark(), cyTcp: cy.user.mark() };
            const packet = packets(21, [60])[0]!;
            const wrongToken = Buffer.from(eve.token);
            wrongToken[7]! ^= 0x01;
            const valid = voiceUp(eve.token, 500, packet);
            const bad: [string, Buffer][] = [
              ['VOICE_UP with a wrong token (last bit flipped)', voiceUp(wrongToken, 100, packet)],
              ['PING with a wrong token', ping(wrongToken, 1_000, 1)],
              ['an unknown type 0x07 with the token', Buffer.concat([Buffer.of(0x07), eve.token, Buffer.alloc(8)])],
              ['a VOICE_DOWN (a server\'s type) sent to the server', voiceDown(eve.id, 1, packet)],
              ['an 11-byte VOICE_UP (no packet)', voiceUp(eve.token, 101, Buffer.alloc(0))],
              ['a 16-byte PING', ping(eve.token, 1_001, 1).subarray(0, 16)],
              ['an 18-byte PING', Buffer.concat([ping(eve.token, 1_002, 1), Buffer.of(0)])],
              ['a 1287-byte VOICE_UP', voiceUp(eve.token, 102, Buffer.alloc(MAX_OPUS_PACKET_BYTES + 1, 0x55))],
              ['an empty datagram', Buffer.alloc(0)],
            ];
            for (const [, datagram] of bad) eve.udp.send(datagram, eve.server);
            for (const [, datagram] of bad) stranger.send(datagram, eve.server);
            // A valid VOICE_UP once, then the same bytes again (from Eve's socket and from a stranger's).
            eve.udp.send(valid, eve.server);
            await sleep(50);
            eve.udp.send(valid, eve.server);
            stranger.send(valid, eve.server);
            // The replay window (64 sequences): late but unseen is new, 100 behind is old.
            const late = [voiceUp(eve.token, 499, packet), voiceUp(eve.token, 440, packet)];
            for (const datagram of late) eve.udp.send(datagram, eve.server);
            eve.udp.send(voiceUp(eve.token, 400, packet), eve.server);
            stranger.send(late[0]!, eve.server);
            // A PING with a number already used (1), from an address that is not Eve's.
            stranger.send(ping(eve.token, 1, 7), eve.server);
            // Eve's own socket must stay silent too: Bob's PING proves the server alive.
            await udpBarrier([bob]);
            await Promise.all([barrier(bob.user), barrier(cy.user)]);
            expect(stranger.received.length === 0, 'the server answered a datagram it had to drop', {
              expected: 'no answer at all to a second address: bad tokens, bad types and sizes, a replayed VOICE_UP, a PING whose number was already used',
              actual: `the stranger's socket received: ${describeAll(stranger.received)}`,
              received: stranger.received[0]?.data,
              hint: 'drop silently (no answer, nothing over TCP) and count: a wrong token, a bad type or size, and a datagram that is not NEW from an address that is not bound',
            });
            const answers = eve.udp.received.slice(since.eve);
            expect(answers.length === 0, 'the server answered one of the bad datagrams', {
              expected: 'nothing at all (the VOICE_UP is forwarded to others, never answered)',
              actual: `Eve's socket received: ${describeAll(answers)}`,
              received: answers[0]?.data,
              hint: bad.map(([what]) => what).join(', ') + ': all dropped silently',
            });
            const hint = 'forward only VOICE_UP that passed every check: the right token, a valid size, and a sequence the replay window has not seen; the window is 64 sequences: one 1 or 60 behind the highest, not yet seen, is late voice (forward it), one 100 behind is old';
            // First the window's own number, by the sequences that reached Bob (a wrong token's or a
            // duplicate's are judged by the exact lists below).
            const sequencesAtBob = voiceDownsAt(bob, since.bob).filter((d) => d.data.length >= 5 && d.data.readUInt16BE(1) === eve.id).map((d) => d.data.readUInt16BE(3));
            const lateDropped = [499, 440].filter((sequence) => !sequencesAtBob.includes(sequence));
            const oldForwarded = sequencesAtBob.includes(400);
            expect(lateDropped.length === 0 && !oldForwarded, 'the replay window is not 64 sequences', {
              expected: 'after VOICE_UP 500, Eve\'s 499 and 440 (1 and 60 behind, not yet seen) forwarded, her 400 (100 behind) dropped',
              actual: `${lateDropped.length > 0 ? `${lateDropped.join(' and ')} dropped` : ''}${lateDropped.length > 0 && oldForwarded ? '; ' : ''}${oldForwarded ? '400 forwarded' : ''} (Bob got sequences ${sequencesAtBob.join(', ') || 'none'})`,
              hint: 'keep the highest sequence accepted and a bitmap of the 64 before it (RFC 4303 §3.4.3): late voice is still voice, and only what is older than the window or already seen is a replay',
            });
            const expected = [500, 499, 440];
            expectVoiceDowns(bob, expected.map((sequence) => voiceDown(eve.id, sequence, packet)), since.bob, hint);
            expectTcpVoices(cy, expected.map((sequence) => tcpVoicePayload(eve.id, sequence, packet)), since.cyTcp, hint);
            expectTcpVoices(bob, [], since.bobTcp, 'a PATH udp listener with a bound address gets voice by UDP only');
            // The stranger's replay did not steal Eve's binding: her PONGs still come to her socket.
            await pingPong(eve, 'a replayed datagram from another address must not rebind the user: their PONGs still go to the address they bound');
          } finally {
            stranger.close();
          }
        }),
    },
    {
      name: `forwarding: a VOICE_UP goes at once (the median VOICE_DOWN within ${FORWARDING_WINDOW.latestMs} ms of its sending) and byte for byte as VOICE_DOWN to room-mates with PATH udp and as TCP VOICE to those with PATH tcp; a TCP VOICE too; never to the sender, never to another room`,
      run: (context) =>
        withVoiceMembers(context, async (members) => {
          const ada = await members.join('Ada', 'fwd-a'); // talks by UDP, hears by TCP
          const bob = await members.join('Bob', 'fwd-a'); // talks by TCP, hears by UDP
          const cy = await members.join('Cy', 'fwd-a'); // never bound: hears by TCP
          const dee = await members.join('Dee', 'fwd-b'); // another room, hears by UDP
          await bindAndPath(ada, 'tcp');
          await bindAndPath(bob, 'udp');
          await bindAndPath(dee, 'udp');
          cy.user.send(jsonFrameBytes(PATH, { path: 'udp' })); // asks for UDP but never sends a datagram: no address to send to
          await barrier(cy.user);
          const udpSince = new Map([ada, bob, cy, dee].map((m) => [m, m.udp.received.length]));
          const tcpSince = new Map([ada, bob, cy, dee].map((m) => [m, m.user.mark()]));
          const adaPackets = packets(31, [1, MAX_OPUS_PACKET_BYTES, ...Array.from({ length: 10 }, (_, i) => 40 + i * 9)]);
          const bobPackets = packets(32, Array.from({ length: 8 }, (_, i) => 60 + i));
          const adaFirst = 65_533; // across the wrap
          /** Sends Ada's VOICE_UP at a talker's pace; returns when each was sent (performance.now()). */
          const talkUdp = async () => {
            const sentAt: number[] = [];
            for (const [i, p] of adaPackets.entries()) {
              ada.udp.send(voiceUp(ada.token, adaFirst + i, p), ada.server);
              sentAt.push(performance.now());
              await sleep(PACE_MS);
            }
            return sentAt;
          };
          const talkTcp = async () => {
            for (const [i, p] of bobPackets.entries()) {
              bob.user.send(tcpVoice(i, p));
              await sleep(PACE_MS);
            }
          };
          // The grader's own timers while Ada's VOICE_UP go out and their copies come in: a stall of the grader voids that timing only.
          const { watch, adaSentAt } = await withStallWatch(async (watch) => {
            const [adaSentAt] = await Promise.all([talkUdp(), talkTcp()]);
            await bob.udp.waitFor(() => (voiceDownsAt(bob, udpSince.get(bob)!).length >= adaPackets.length ? true : undefined), DEADLINE_MS * 2, `${adaPackets.length} VOICE_DOWN at Bob`, 'forward each VOICE_UP at once', () => describeAll(voiceDownsAt(bob, udpSince.get(bob)!))).catch(() => undefined);
            return { watch, adaSentAt };
          });
          await udpBarrier([ada, bob, dee]);
          await Promise.all([ada, bob, cy, dee].map((m) => barrier(m.user)));
          const hint = 'forward to every OTHER member of the sender\'s room, each by the path THEY asked for (PATH udp and a bound address: VOICE_DOWN to that address; otherwise TCP VOICE), whatever path the speaker used';
          const fromAdaDown = adaPackets.map((p, i) => voiceDown(ada.id, adaFirst + i, p));
          expectVoiceDowns(bob, fromAdaDown, udpSince.get(bob)!, `${hint}; VOICE_DOWN = 02 | speaker u16 | the sender's sequence u16 | the packet, unchanged`);
          expectTcpVoices(bob, [], tcpSince.get(bob)!, `${hint}; a listener on UDP gets no TCP copy`);
          expectTcpVoices(cy, adaPackets.map((p, i) => tcpVoicePayload(ada.id, adaFirst + i, p)), tcpSince.get(cy)!, hint, ada.id);
          expectTcpVoices(cy, bobPackets.map((p, i) => tcpVoicePayload(bob.id, i, p)), tcpSince.get(cy)!, hint, bob.id);
          expect(tcpVoicesAt(cy, tcpSince.get(cy)!).length === adaPackets.length + bobPackets.length, 'Cy got VOICE from a speaker she must not hear', { expected: 'VOICE from Ada and Bob only', actual: cy.user.describeFrames(tcpSince.get(cy)!), hint });
          expectTcpVoices(ada, bobPackets.map((p, i) => tcpVoicePayload(bob.id, i, p)), tcpSince.get(ada)!, `${hint}; never back to the sender`);
          expectVoiceDowns(ada, [], udpSince.get(ada)!, 'Ada asked for PATH tcp: nothing by UDP, and never her own voice');
          expectVoiceDowns(dee, [], udpSince.get(dee)!, 'never to another room');
          expectTcpVoices(dee, [], tcpSince.get(dee)!, 'never to another room');
          expectVoiceDowns(cy, [], udpSince.get(cy)!, 'Cy never sent a datagram: no address is bound, so voice goes by TCP');
          const down = voiceDownsAt(bob, udpSince.get(bob)!);
          expect(down.every((d) => d.port === bob.server.port), 'VOICE_DOWN came from another port than udp_port', {
            expected: `every VOICE_DOWN from port ${bob.server.port}`,
            actual: `ports ${[...new Set(down.map((d) => d.port))].join(', ')}`,
            hint: 'send from the one UDP socket the client pings: a NAT lets only that address back in',
          });
          // Bob's VOICE_DOWN are exactly Ada's VOICE_UP, in order (expectVoiceDowns): each copy's delay is its arrival less its sending.
          const delays = down.map((copy, i) => copy.at - adaSentAt[i]!);
          expectMedianForwardedAtOnce(delays, 'the median time from a VOICE_UP sent to its VOICE_DOWN at Bob', watch, 'forward each VOICE_UP as soon as it is read: no tick, no timer, no queue but the sockets\' (06-udp/README.md: a VOICE_UP is forwarded at once)');
        }),
    },
    {
      name: 'moving: a mover\'s UDP voice follows the move at once; the token (and the binding) stay',
      run: (context) =>
        withVoiceMembers(context, async (members) => {
          const ann = await members.join('Ann', 'mv-a');
          const mo = await members.join('Mo', 'mv-a');
          const bea = await members.join('Bea', 'mv-b');
          await bindAndPath(ann, 'udp');
          await bindAndPath(mo, 'tcp');
          await bindAndPath(bea, 'udp');
          const since = new Map([ann, bea].map((m) => [m, m.udp.received.length]));
          const before = packets(41, [30, 31, 32]);
          const after = packets(42, [40, 41, 42]);
          for (const [i, p] of before.entries()) mo.udp.send(voiceUp(mo.token, i + 1, p), mo.server);
          await udpBarrier([mo]);
          const moved = mo.user.mark();
          mo.user.send(jsonFrameBytes(JOIN, { room: 'mv-b' }));
          await mo.user.waitForFrame('USERS of room mv-b', (f) => f.type === USERS && jsonOf(f).room === 'mv-b', { since: moved, timeoutMs: DEADLINE_MS, hint: 'answer a move with the new room\'s USERS' });
          for (const [i, p] of after.entries()) mo.udp.send(voiceUp(mo.token, i + 4, p), mo.server);
          await udpBarrier([mo, ann, bea]);
          const hint = 'a VOICE_UP goes to the room its sender is in when it arrives; the token identifies the user, not a room';
          expectVoiceDowns(ann, before.map((p, i) => voiceDown(mo.id, i + 1, p)), since.get(ann)!, `${hint}: after the move, nothing more to the old room`);
          expectVoiceDowns(bea, after.map((p, i) => voiceDown(mo.id, i + 4, p)), since.get(bea)!, `${hint}: after the move, to the new room, with the same id`);
        }),
    },
    {
      name: 'leaving: after BYE the old token gets no PONG and its VOICE_UP is not forwarded',
      run: (context) =>
        withVoiceMembers(context, async (members) => {
          const ada = await members.join('Ada', 'bye');
          const bob = await members.join('Bob', 'bye');
          await bindAndPath(ada, 'tcp');
          await bindAndPath(bob, 'udp');
          ada.user.send(frameBytes(BYE));
          await ada.user.waitForClose(DEADLINE_MS, 'the server to close after BYE');
          await bob.user.waitForFrame('LEFT Ada', (f) => f.type === LEFT && jsonOf(f).name === 'Ada', { timeoutMs: DEADLINE_MS, hint: 'announce a leave with LEFT' });
          const since = { ada: ada.udp.received.length, bob: bob.udp.received.length };
          const late = ping(ada.token, ada.nextPing + 10, 1);
          ada.udp.send(late, ada.server);
          ada.udp.send(voiceUp(ada.token, 999, packets(51, [60])[0]!), ada.server);
          await udpBarrier([bob]);
          expect(ada.udp.received.length === since.ada, 'the server answered a token of a user who left', {
            expected: 'no PONG: the token stops being valid when its user leaves',
            actual: `received: ${describeAll(ada.udp.received.slice(since.ada))}`,
            sent: late,
            received: ada.udp.received[since.ada]?.data,
            hint: 'free the user\'s UDP state (token, binding, windows) on BYE, error or a lost connection; a later datagram with the token is bad_token',
          });
          expectVoiceDowns(bob, [], since.bob, 'the token of a user who left is dead: their late VOICE_UP is dropped, not forwarded under their old id');
        }),
    },
    {
      name: `limits: one voice bucket for both paths (${VOICE_BUCKET.burst} at once); a VOICE_UP flood ends the TCP connection with rate_limited; at most ${PONG_BUCKET.perSecond} PONGs per second; no answer larger than its datagram`,
      run: (context) =>
        withVoiceMembers(context, async (members) => {
          const flo = await members.join('Flo', 'lim');
          const lis = await members.join('Lis', 'lim');
          await bindAndPath(flo, 'tcp');
          await bindAndPath(lis, 'udp');
          const unmeasured = new Unmeasured();
          // 20 over TCP and 20 over UDP at once: one bucket forwards 10 and what it refilled while the
          // server took them (bounded by when the last VOICE_DOWN arrived); a bucket per path 20 or more.
          const since = lis.udp.received.length;
          const burst = packets(61, Array.from({ length: 20 }, () => 60));
          // The grader's own timers over each burst and its answers: only their lateness excuses a count over the allowance.
          const { voiceWatch, voiceSentAt, voiceLastSentAt } = await withStallWatch(async (voiceWatch) => {
            const voiceSentAt = performance.now();
            flo.user.send(Buffer.concat(burst.map((p, i) => tcpVoice(i, p))));
            for (const [i, p] of burst.entries()) flo.udp.send(voiceUp(flo.token, 100 + i, p), flo.server);
            const voiceLastSentAt = performance.now();
            await udpBarrier([lis]);
            return { voiceWatch, voiceSentAt, voiceLastSentAt };
          });
          const forwarded = voiceDownsAt(lis, since);
          expectBucketLimit({ passed: forwarded.length, firstSentAt: voiceSentAt, lastSentAt: voiceLastSentAt, lastSeenAt: forwarded.at(-1)?.at ?? voiceLastSentAt }, {
            bucket: VOICE_BUCKET,
            least: VOICE_BUCKET.burst,
            brokenPasses: 2 * VOICE_BUCKET.burst,
            broken: 'a server with a bucket per path',
            measures: 'whether TCP VOICE and VOICE_UP share one bucket',
            summary: '20 VOICE over TCP and 20 VOICE_UP at once were not limited as one',
            expected: (allowed) => `${allowed} forwarded to Lis`,
            actual: `${forwarded.length} forwarded`,
            hint: `one token bucket per user for voice by EITHER path (${VOICE_BUCKET.burst} at once, then ${VOICE_BUCKET.perSecond} per second): switching paths must not double the rate`,
          }, unmeasured, voiceWatch);
          // PINGs: 20 at once; earlier PINGs may have used some of the 5, so at least 1 is answered.
          const pingSince = flo.udp.received.length;
          const { pingWatch, pingSentAt, pingLastSentAt } = await withStallWatch(async (pingWatch) => {
            const pingSentAt = performance.now();
            for (let i = 0; i < 20; i++) flo.udp.send(ping(flo.token, flo.nextPing++, i), flo.server);
            const pingLastSentAt = performance.now();
            await sleep(NOTHING_MS);
            return { pingWatch, pingSentAt, pingLastSentAt };
          });
          const pongs = flo.udp.received.slice(pingSince).filter((d) => d.data[0] === PONG);
          expectBucketLimit({ passed: pongs.length, firstSentAt: pingSentAt, lastSentAt: pingLastSentAt, lastSeenAt: pongs.at(-1)?.at ?? pingLastSentAt }, {
            bucket: PONG_BUCKET,
            least: 1,
            brokenPasses: 20,
            broken: 'a server that answers every PING',
            measures: `whether at most ${PONG_BUCKET.perSecond} PINGs a second are answered`,
            summary: `20 PINGs at once got ${pongs.length} PONGs`,
            expected: (allowed) => `${allowed} PONGs`,
            actual: `${pongs.length}`,
            hint: `answer at most ${PONG_BUCKET.perSecond} PINGs per second per user (drop the rest as ping_flood): a PONG is cheap, but a flood of them is not`,
          }, unmeasured, pingWatch);
          expectNoAmplification(flo.udp, 0, PING_BYTES, 'a PING');
          const downs = voiceDownsAt(lis, since);
          const tooBig = downs.find((d) => d.data.length > 11 + 60);
          expect(tooBig === undefined, 'a VOICE_DOWN was larger than the VOICE_UP it forwards', {
            expected: `VOICE_DOWN of ${5 + 60} bytes for a ${11 + 60}-byte VOICE_UP`,
            actual: tooBig ? `${tooBig.data.length} bytes` : '',
            received: tooBig?.data,
            hint: 'VOICE_DOWN = 02 | speaker | sequence | packet: 6 bytes smaller than the VOICE_UP',
          });
          // A flood over UDP with Flo's token: ERROR rate_limited on her TCP connection.
          const flood = packets(62, [60])[0]!;
          for (let i = 0; i < 400; i++) {
            flo.udp.send(voiceUp(flo.token, 1_000 + i, flood), flo.server);
            if (i % 25 === 24) await sleep(2); // paced a little, so the kernel's receive buffer does not drop them
          }
          const error = await flo.user.waitForFrame('ERROR "rate_limited"', (f) => f.type === ERROR, { timeoutMs: DEADLINE_MS * 3, hint: 'more than 250 voice packets dropped within 5 s, by either path: ERROR rate_limited, then close' });
          expect(jsonOf(error).code === 'rate_limited', 'a VOICE_UP flood got the wrong ERROR', { expected: 'ERROR {"code": "rate_limited", ...}', actual: error.payload.toString('utf8').slice(0, 200), hint: 'the flood rule of stage 05 counts voice by either path' });
          await flo.user.waitForClose(3_000, 'the server to close the flooder after ERROR');
          unmeasured.settle();
        }),
    },
    {
      name: `PONG rate: ${PONG_BURST_PINGS} PINGs at once from a new user get ${PONG_BUCKET.burst} PONGs; PINGs at ${PONG_SEND_PER_SECOND} a second for ${showMs(PONG_SEND_MS)} get ${PONG_BUCKET.perSecond} a second (±${100 * RATE_TOLERANCE}%)`,
      run: (context) =>
        withVoiceMembers(context, async (members) => {
          // A new user's PONG bucket is full (no PING yet): the first PINGs, sent at once, find its
          // burst; then PINGs faster than it refills find it nearly empty, so what is answered is the refill.
          const pia = await members.join('Pia', 'pong-rate');
          const total = PONG_BURST_PINGS + (PONG_SEND_PER_SECOND * PONG_SEND_MS) / 1_000;
          const first = pia.nextPing;
          pia.nextPing += total;
          const hint = `answer at most ${PONG_BUCKET.perSecond} PINGs per second per user: a bucket of ${PONG_BUCKET.burst}, one token back every ${1_000 / PONG_BUCKET.perSecond} ms; drop the rest as ping_flood`;
          await withStallWatch(async (watch) => {
            const sendPings = (from: number, to: number) => {
              for (let i = from; i < to; i++) pia.udp.send(ping(pia.token, first + i, i), pia.server);
            };
            const firstSentAt = performance.now();
            sendPings(0, PONG_BURST_PINGS);
            await sendAtRate(total - PONG_BURST_PINGS, PONG_SEND_PER_SECOND, (from, to) => sendPings(PONG_BURST_PINGS + from, PONG_BURST_PINGS + to));
            const sendingMs = performance.now() - firstSentAt;
            await sleep(NOTHING_MS); // the last PONGs are on their way (none may come: the bucket may be empty)
            const pongs = pia.udp.received.filter((d) => d.data[0] === PONG && d.data.length === PONG_BYTES);
            const toBurst = pongs.filter((d) => d.data.readUInt32BE(1) < first + PONG_BURST_PINGS).length;
            expect(toBurst >= PONG_BUCKET.burst, `the PONG burst is not ${PONG_BUCKET.burst}: ${PONG_BURST_PINGS} PINGs at once from a new user got ${toBurst} PONGs`, {
              expected: `at least ${PONG_BUCKET.burst} PONGs: a new user's bucket is full`, actual: `${toBurst} PONGs: ${describeAll(pongs.slice(0, toBurst))}`, hint,
            });
            const unmeasured = new Unmeasured();
            const sending = { total, perSecond: PONG_SEND_PER_SECOND, ms: sendingMs, bucket: 'the PONG bucket' };
            expectRefill({ passed: pongs.length, firstSentAt, lastSeenAt: pongs.at(-1)?.at ?? firstSentAt }, sending, {
              bucket: PONG_BUCKET,
              summary: `the PONG refill is not ${PONG_BUCKET.perSecond} a second: ${pongs.length} PONGs for ${total} PINGs (${PONG_BURST_PINGS} at once, then ${PONG_SEND_PER_SECOND} a second for ${showMs(sendingMs)})`,
              expected: (range) => `${range} PONGs`,
              actual: `${pongs.length} PONGs`,
              hint,
            }, watch, unmeasured);
            expectNoAmplification(pia.udp, 0, PING_BYTES, 'a PING');
            unmeasured.settle();
          });
        }),
    },
    {
      name: `PATH: {"path": "udp"|"tcp"} only (else ERROR bad_path), after HELLO (else not_joined); HELLO of another protocol gets wrong_protocol; after ${moves.burst} changes, the ${moves.refusalsBeforeError}th PATH change refused in a row gets rate_limited, not the ${moves.refusalsBeforeError - 1}th`,
      run: (context) =>
        withVoiceMembers(context, async (members) => {
          const rogue = async (bytes: Buffer, code: string, hint: string) => {
            const client = await WireClient.connect(context.server.host, context.server.port);
            client.send(bytes);
            await expectError(client, code, hint, { ...wire.typeNames });
          };
          await Promise.all([
            rogue(jsonFrameBytes(HELLO, { name: 'Old', room: 'lobby', protocol: 'voice-chat/05' }), 'wrong_protocol', `a HELLO whose "protocol" is not "${protocol}": ERROR wrong_protocol`),
            rogue(jsonFrameBytes(PATH, { path: 'udp' }), 'not_joined', 'PATH is only accepted after a successful HELLO'),
          ]);
          for (const [i, payload] of [{ path: 'pigeon' }, { way: 'udp' }, 'udp'].entries()) {
            const member = await members.join(`Pat${i}`, 'path');
            member.user.send(jsonFrameBytes(PATH, payload));
            const error = await member.user.waitForFrame('ERROR "bad_path"', (f) => f.type === ERROR, { timeoutMs: DEADLINE_MS, hint: 'PATH must be {"path": "udp"} or {"path": "tcp"}' });
            expect(jsonOf(error).code === 'bad_path', 'a bad PATH got the wrong ERROR', { expected: 'ERROR {"code": "bad_path", ...}', actual: error.payload.toString('utf8').slice(0, 200), sent: jsonFrameBytes(PATH, payload), hint: 'PATH must be {"path": "udp"} or {"path": "tcp"}: anything else is ERROR bad_path, then close' });
            await member.user.waitForClose(3_000, 'the server to close after ERROR');
          }
          // The move bucket's changes (udp, tcp, ... ending on tcp), then PATH udp again and again: each is
          // a change from tcp, refused and ignored. In one write, so no token comes back meanwhile, with
          // LIST_ROOMS before the last: its ROOMS shows that the refusals before it were not yet the limit.
          const limit = moves.refusalsBeforeError;
          const flipper = await members.join('Flip', 'path');
          const since = flipper.user.mark();
          const changes = Array.from({ length: moves.burst }, (_, i) => jsonFrameBytes(PATH, { path: i % 2 === 0 ? 'udp' : 'tcp' }));
          const refused = (count: number) => Array.from({ length: count }, () => jsonFrameBytes(PATH, { path: 'udp' }));
          const sent = Buffer.concat([...changes, ...refused(limit - 1), frameBytes(LIST_ROOMS), ...refused(1)]);
          flipper.user.send(sent);
          const hint = `a PATH change takes a token from the move bucket (${moves.burst} at once, then 1 per ${moves.refillMs / 1000} s); without one it is ignored (the path stays), and the ${limit}th refused in a row is ERROR rate_limited, then close`;
          const wrote = `after ${moves.burst} PATH changes (udp, tcp, ...), ${limit - 1} PATH udp, LIST_ROOMS and one more PATH udp, in one write`;
          const error = await flipper.user.waitForFrame('ERROR "rate_limited"', (f) => f.type === ERROR, { since, timeoutMs: DEADLINE_MS * 2 }).catch(() => undefined);
          const rooms = flipper.user.framesOfType(ROOMS, since)[0];
          expect(error !== undefined, `the limit of refused PATH changes in a row is not ${limit}: the ${limit}th got no ERROR rate_limited`, {
            expected: `${wrote}: ROOMS, then ERROR {"code": "rate_limited", ...} for the last PATH udp, the ${limit}th refused in a row`, actual: flipper.user.describeFrames(since), sent, hint,
          });
          expect(rooms !== undefined && flipper.user.frames.indexOf(rooms) < flipper.user.frames.indexOf(error!), `the limit of refused PATH changes in a row is not ${limit}: ERROR came before the ${limit}th`, {
            expected: `${wrote}: ROOMS (the ${limit - 1} refusals before LIST_ROOMS are not yet the limit), then ERROR rate_limited`, actual: flipper.user.describeFrames(since), sent, hint,
          });
          expect(jsonOf(error!).code === 'rate_limited', `the ${limit}th PATH change refused in a row got the wrong ERROR`, { expected: 'ERROR {"code": "rate_limited", ...}', actual: error!.payload.toString('utf8').slice(0, 200), hint: 'PATH shares the move limit' });
        }),
    },
  ];
}

export const serverChecks: Check[] = [
  ...udpServerChecks(WIRES['06']),
  // Stage 05's move bucket holds here too (README, limits: moves); one check for every stage.
  moveRefillCheck(WIRES['06']),
];
