// Stage 05's server checks: Opus voice, FORWARDED. The server sends each VOICE on, byte for byte,
// to the other members of the sender's room, tagged with the sender's session id; it never
// decodes. Asserted over raw sockets with only the protocol in 05-opus/README.md (nothing from
// 05-opus/ is imported), so they grade a server in any language. The packets sent here are
// seeded random bytes, not real Opus: a forwarding server must not look inside them.
//
// "Nothing reached that user" needs an end to the waiting: the user asks LIST_ROOMS and waits for
// ROOMS. The server writes to one connection in order, so whatever it sent that user before
// answering (a leaked VOICE) has arrived by then.
import { type DocumentedBucket, expectBucketLimit, expectRefill, mostLetThrough, sendAtRate } from '../harness/bucket-limit.ts';
import { CheckSkipped, failingAs } from '../harness/check-failure.ts';
import { expect, type Check } from '../harness/checks.ts';
import { frameBytes, hexType, jsonFrameBytes, paddedJsonFrameBytes, paddedToBytes } from '../harness/frame-wire.ts';
import { FramedUser, type ReceivedFrame } from '../harness/framed-user.ts';
import { sessionIdWrapCheck } from '../harness/session-id-wrap-check.ts';
import { expectMedianForwardedAtOnce, FORWARDING_WINDOW } from '../harness/forwarding-delay.ts';
import { SeededRandom } from '../harness/seeded-random.ts';
import { expectDuration, expectTimed, RATE_TOLERANCE, showMs, timingWindow } from '../harness/tolerance.ts';
import { StallWatch, withStallWatch } from '../harness/stall-watch.ts';
import { joinFloodRule } from '../hostile/join-flood-check.ts';
import { moveRefillCheck } from '../harness/move-refill-check.ts';
import { WIRES, type StageWire } from '../hostile/wire-spec.ts';
import { expectError, expectNever, jsonOf, type Party, withParty } from '../harness/party.ts';
import { Unmeasured } from '../harness/unmeasured.ts';
import { WireClient } from '../harness/wire-client.ts';

// The message types of the README's table.
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
const TYPE_NAMES: Record<number, string> = {
  [HELLO]: 'HELLO', [WELCOME]: 'WELCOME', [VOICE]: 'VOICE', [BYE]: 'BYE', [ERROR]: 'ERROR',
  [USERS]: 'USERS', [JOINED]: 'JOINED', [LEFT]: 'LEFT', [SPEAKING]: 'SPEAKING',
  [JOIN]: 'JOIN', [JOIN_REFUSED]: 'JOIN_REFUSED', [LIST_ROOMS]: 'LIST_ROOMS', [ROOMS]: 'ROOMS',
};

const PROTOCOL = 'voice-chat/05';
/** The README's limits. */
const MAX_HELLO_BYTES = 1024;
const MAX_ROOM_ID_CHARS = 64;
const MAX_OPUS_PACKET_BYTES = 1275;
const MAX_CLIENT_VOICE_BYTES = 2 + MAX_OPUS_PACKET_BYTES;
const VOICE_BURST = 10;
const VOICE_MS = 20;
/** 50 VOICE per second per user, bursts of 10. */
const VOICE_BUCKET: DocumentedBucket = { burst: VOICE_BURST, perSecond: 1_000 / VOICE_MS };
const SPEAKING_HOLD_MS = 200;
/** The README's flood rule: more than 250 VOICE dropped within one 5 s window is a flood. */
const VOICE_FLOOD_DROPS = 250;
const VOICE_FLOOD_WINDOW_MS = 5_000;
/** Two bursts of drops this far apart fall in two windows; this close, in one (margins for a busy machine). */
const FLOOD_APART_MS = 7_000;
const FLOOD_WITHIN_MS = 3_000;
/** "At once" for news and forwarded voice, with room for a busy machine. */
const ANNOUNCE_DEADLINE_MS = 1_000;
/** Slower than one per 20 ms, so a well-behaved sender never meets the rate limit, even with timer jitter. */
const PACE_MS = 25;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const hello = (fields: Record<string, unknown>) => jsonFrameBytes(HELLO, fields);
const join = (room: string) => jsonFrameBytes(JOIN, { room });

/** Client -> server VOICE: sequence u16 BE, then the packet. */
function voice(sequence: number, packet: Buffer): Buffer {
  const head = Buffer.alloc(2);
  head.writeUInt16BE(sequence & 0xffff);
  return frameBytes(VOICE, Buffer.concat([head, packet]));
}

/** What a listener must get for it: speaker u16 BE, sequence u16 BE, the same packet. */
function forwarded(speaker: number, sequence: number, packet: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(speaker, 0);
  head.writeUInt16BE(sequence & 0xffff, 2);
  return Buffer.concat([head, packet]);
}

function typeName(type: number): string {
  return `${TYPE_NAMES[type] ?? 'unknown type'} (${hexType(type)})`;
}

function describe(frame: ReceivedFrame): string {
  return frame.type === VOICE ? `VOICE ${frame.payload.subarray(0, 12).toString('hex')}...` : `${typeName(frame.type)} ${frame.payload.toString('utf8').slice(0, 200)}`;
}

/** "speaker 3 seq 7 (60 bytes)" for a VOICE payload from the server. */
function voiceSummary(payload: Buffer): string {
  return payload.length < 4 ? `${payload.length} bytes` : `speaker ${payload.readUInt16BE(0)} seq ${payload.readUInt16BE(2)} (${payload.length - 4}-byte packet)`;
}

interface Member {
  user: FramedUser;
  id: number;
}

/** Joins `room` with a HELLO naming `protocol` (stage 05's or a later stage's) and requires WELCOME to carry a session id. */
async function joinRoomAs(protocol: string, party: Party, name: string, room: string): Promise<Member> {
  const user = await party.join(name, { room, protocol });
  const id = user.welcome.id;
  expect(Number.isInteger(id) && (id as number) >= 1 && (id as number) <= 0xffff, `WELCOME to ${name} has no session id`, {
    expected: `WELCOME {"name", "room", "id": 1..65535, "protocol": "${protocol}", "codec": "opus", "sample_rate": 48000, "frame_ms": 20, "channels": 1}`,
    actual: `WELCOME ${JSON.stringify(user.welcome)}`,
    hint: 'every user gets a numeric session id in WELCOME: VOICE names its speaker by it',
  });
  return { user, id: id as number };
}

/** "3:Ada" for each {id, name} in a list (null when the list is not such a list). */
function refs(value: unknown): string[] | null {
  if (!Array.isArray(value)) return null;
  const out: string[] = [];
  for (const entry of value) {
    if (typeof entry !== 'object' || entry === null || !Number.isInteger(entry.id) || typeof entry.name !== 'string') return null;
    out.push(`${entry.id}:${entry.name}`);
  }
  return out;
}
const refOf = (member: Member) => `${member.id}:${member.user.name}`;

/** Sends LIST_ROOMS and waits for ROOMS: afterwards, everything sent to `user` before has arrived. */
async function barrier(user: FramedUser): Promise<void> {
  const since = user.mark();
  user.send(frameBytes(LIST_ROOMS));
  await user.waitForFrame('ROOMS in answer to LIST_ROOMS', (f) => f.type === ROOMS, { since, timeoutMs: ANNOUNCE_DEADLINE_MS, hint: 'answer LIST_ROOMS with ROOMS, as in stage 04' });
}

/** Waits for a frame of `type` whose JSON is {id, name} of `member` (and `reason`, if given). */
function isAbout(type: number, member: Member, reason?: string) {
  return (frame: ReceivedFrame) => {
    if (frame.type !== type) return false;
    const object = jsonOf(frame);
    return object.id === member.id && object.name === member.user.name && (reason === undefined || object.reason === reason);
  };
}

/** A listener's SPEAKING frames as lists of "id:name". */
function speakingIs(members: Member[]) {
  const wanted = JSON.stringify(members.map(refOf));
  return (frame: ReceivedFrame) => frame.type === SPEAKING && JSON.stringify(refs(jsonOf(frame).speakers)) === wanted;
}

/** Seeded random "packets" of the given sizes: the server must forward them whatever they hold. */
function packets(seed: number, sizes: number[]): Buffer[] {
  const random = new SeededRandom(seed);
  return sizes.map((size) => random.bytes(size));
}

/** Sends VOICE for `list` (sequence numbers from `firstSequence`), one every PACE_MS; returns when each was sent (performance.now()). */
async function talkPaced(member: Member, list: Buffer[], firstSequence: number): Promise<number[]> {
  const sentAt: number[] = [];
  for (const [i, packet] of list.entries()) {
    member.user.send(voice(firstSequence + i, packet));
    sentAt.push(performance.now());
    await sleep(PACE_MS);
  }
  return sentAt;
}

/**
 * Requires the median time from each VOICE sent to its copy arriving at `listener` (per speaker,
 * from `since`, in order: expectVoices has matched them) to be "at once" (forwarding-delay.ts).
 */
function expectForwardedAtOnce(listener: FramedUser, sent: Map<number, number[]>, since: number, watch: StallWatch): void {
  const delays = [...sent].flatMap(([speaker, sentAt]) => voiceFramesFrom(listener, speaker, since).map((frame, i) => frame.at - sentAt[i]!));
  expectMedianForwardedAtOnce(delays, `the median time from a VOICE sent to its copy at ${listener.name}`, watch, 'forward each VOICE as soon as it is read: no tick, no timer, no queue but the sockets\' (05-opus/README.md, forwarding rule 1)');
}

/** The payloads of VOICE frames `listener` got from `speaker` since `since`. */
function voicesFrom(listener: FramedUser, speaker: number, since = 0): Buffer[] {
  return voiceFramesFrom(listener, speaker, since).map((f) => f.payload);
}

/** The VOICE frames `listener` got from `speaker` since `since`, with when each arrived. */
function voiceFramesFrom(listener: FramedUser, speaker: number, since = 0): ReceivedFrame[] {
  return listener.framesOfType(VOICE, since).filter((f) => f.payload.length >= 2 && f.payload.readUInt16BE(0) === speaker);
}

/**
 * Requires `listener` to have got, since `since`, exactly `expected` VOICE payloads per speaker
 * id (byte for byte, in order) and no VOICE from anyone else.
 */
function expectVoices(listener: FramedUser, expected: Map<number, Buffer[]>, since: number, hint: string): void {
  const got = listener.framesOfType(VOICE, since);
  const stranger = got.find((f) => f.payload.length < 2 || !expected.has(f.payload.readUInt16BE(0)));
  expect(stranger === undefined, `${listener.name} got VOICE from a speaker they must not hear`, {
    expected: `VOICE only from speaker${expected.size === 1 ? '' : 's'} ${[...expected.keys()].join(', ') || '(none)'}`,
    actual: stranger ? `VOICE ${voiceSummary(stranger.payload)}; all: ${got.map((f) => voiceSummary(f.payload)).slice(0, 12).join(', ')}` : '',
    received: stranger?.payload,
    hint,
  });
  for (const [speaker, payloads] of expected) {
    const from = voicesFrom(listener, speaker, since);
    const firstWrong = payloads.findIndex((payload, i) => from[i] === undefined || !from[i]!.equals(payload));
    expect(from.length === payloads.length && firstWrong === -1, `${listener.name} did not get speaker ${speaker}'s VOICE exactly`, {
      expected: `${payloads.length} VOICE from speaker ${speaker}, each = speaker u16 | the sender's sequence u16 | the sender's packet, byte for byte, in the order sent`,
      actual: `${from.length} VOICE from speaker ${speaker}${firstWrong === -1 ? '' : `; #${firstWrong} is ${from[firstWrong] ? voiceSummary(from[firstWrong]!) : 'missing'}, expected ${voiceSummary(payloads[firstWrong]!)}`}`,
      received: firstWrong === -1 ? undefined : from[firstWrong],
      hint,
    });
  }
}

/** Waits until `listener` has `count` VOICE since `since` (or the deadline: the comparison then says what is missing). */
async function waitForVoices(listener: FramedUser, count: number, since: number): Promise<void> {
  await listener.waitForFrame(`${count} VOICE`, () => listener.framesOfType(VOICE, since).length >= count, { since, timeoutMs: ANNOUNCE_DEADLINE_MS * 3 }).catch(() => undefined);
}

/**
 * The flood rule's two numbers (more than 250 drops, within one 5 s window), for every stage that keeps
 * stage 05's VOICE over TCP: 05 and 06 (in opusServerChecks), 07 and 08 (conformance/stages.ts).
 */
function voiceFloodWindowCheck(wire: StageWire): Check {
  const protocol = wire.protocol ?? PROTOCOL;
  const joinRoom = (party: Party, name: string, room: string) => joinRoomAs(protocol, party, name, room);
  return {
    name: `flood window: 200 VOICE dropped, then 150 more ${FLOOD_APART_MS / 1000} s later (a new ${VOICE_FLOOD_WINDOW_MS / 1000} s window) is no flood; 200 dropped, then 100 more ${FLOOD_WITHIN_MS / 1000} s later (300 within one window) gets ERROR rate_limited`,
    run: (context) =>
      withParty(context, TYPE_NAMES, async (party) => {
        const hint = `count the VOICE the bucket drops in a window that opens at a drop and lasts ${VOICE_FLOOD_WINDOW_MS / 1000} s: more than ${VOICE_FLOOD_DROPS} in one window is a flood (ERROR rate_limited, closed), fewer is not`;
        // Each burst finds the bucket full (10 tokens) and has about that many forwarded: the rest are dropped.
        const burst = (member: Member, seed: number, drops: number) => member.user.send(Buffer.concat(packets(seed, Array.from({ length: drops + VOICE_BURST }, () => 60)).map((p, i) => voice(seed * 1000 + i, p))));
        const apart = await joinRoom(party, 'Apart', 'flood-window');
        await barrier(apart.user);
        burst(apart, 21, 200);
        await sleep(FLOOD_APART_MS);
        burst(apart, 22, 150);
        await sleep(300);
        if (!apart.user.isClosed) await barrier(apart.user).catch(() => undefined);
        const apartError = apart.user.framesOfType(ERROR)[0];
        expect(apartError === undefined && !apart.user.isClosed, `200 dropped VOICE and 150 more ${FLOOD_APART_MS / 1000} s later were taken for a flood`, {
          expected: `no ERROR: the second burst falls in a new ${VOICE_FLOOD_WINDOW_MS / 1000} s window, with at most ${VOICE_FLOOD_DROPS} drops in each`,
          actual: apartError ? describe(apartError) : 'the connection was closed',
          hint: `${hint}; a window longer than ${VOICE_FLOOD_WINDOW_MS / 1000} s, or a limit under 200 drops, throws out a sender who only burst twice`,
        });
        const within = await joinRoom(party, 'Within', 'flood-window');
        await barrier(within.user);
        const firstAt = performance.now();
        burst(within, 23, 200);
        await sleep(FLOOD_WITHIN_MS);
        const apartMs = performance.now() - firstAt;
        burst(within, 24, 100);
        const waiting = within.user.waitForFrame('ERROR "rate_limited"', (f) => f.type === ERROR, { timeoutMs: ANNOUNCE_DEADLINE_MS * 2, hint });
        try {
          const error = await waiting;
          expect(jsonOf(error).code === 'rate_limited', 'a VOICE flood got the wrong ERROR', { expected: 'ERROR {"code": "rate_limited", ...}', actual: describe(error), hint });
        } catch (failure) {
          // Sent further apart than a window, the two bursts prove nothing: the grader was too late.
          if (apartMs >= VOICE_FLOOD_WINDOW_MS - 500) throw new CheckSkipped(`the grader sent the second burst ${Math.round(apartMs)} ms after the first, not ${FLOOD_WITHIN_MS} ms: too late to be inside one ${VOICE_FLOOD_WINDOW_MS / 1000} s window; grade again on a quieter machine`);
          throw failure;
        }
      }),
  };
}

/** The refill check's sender: faster than the bucket refills (so it always finds it nearly empty), for seconds (the rate rule's window). */
const REFILL_SEND_PER_SECOND = 75;
const REFILL_SEND_MS = 3_000;

/**
 * The voice bucket's refill (50 a second) on its own: the burst checks send everything at once, so
 * a bucket refilling twice as fast, or half as fast, gives them the same count. A sender at 75 a
 * second for 3 s, judged by bucket-limit.ts's expectRefill (the rate rule's ±10% both ways).
 */
function voiceRefillCheck(wire: StageWire): Check {
  const protocol = wire.protocol ?? PROTOCOL;
  const total = (REFILL_SEND_PER_SECOND * REFILL_SEND_MS) / 1_000;
  return {
    name: `voice refill: ${total} VOICE sent at ${REFILL_SEND_PER_SECOND} a second are forwarded at ${VOICE_BUCKET.perSecond} a second (±${100 * RATE_TOLERANCE}%) after the burst of ${VOICE_BURST}`,
    run: (context) =>
      withParty(context, TYPE_NAMES, async (party) => {
        const flo = await joinRoomAs(protocol, party, 'Flo', 'refill');
        const lis = await joinRoomAs(protocol, party, 'Lis', 'refill');
        await barrier(flo.user);
        const since = lis.user.mark();
        const list = packets(13, Array.from({ length: total }, () => 60));
        await withStallWatch(async (watch) => {
          const { firstSentAt, sendingMs } = await sendAtRate(total, REFILL_SEND_PER_SECOND, (from, to) => flo.user.send(Buffer.concat(list.slice(from, to).map((p, i) => voice(from + i, p)))));
          await barrier(flo.user); // the server has read every VOICE: what it forwarded is on its way to Lis
          await barrier(lis.user);
          const forwarded = voiceFramesFrom(lis.user, flo.id, since);
          const unmeasured = new Unmeasured();
          const sending = { total, perSecond: REFILL_SEND_PER_SECOND, ms: sendingMs, bucket: 'the voice bucket' };
          expectRefill({ passed: forwarded.length, firstSentAt, lastSeenAt: forwarded.at(-1)?.at ?? firstSentAt }, sending, {
            bucket: VOICE_BUCKET,
            summary: `the voice refill is not ${VOICE_BUCKET.perSecond} a second: ${forwarded.length} of ${total} VOICE sent at ${REFILL_SEND_PER_SECOND} a second for ${showMs(sendingMs)} were forwarded`,
            expected: (range) => `${range} of Flo's ${total} VOICE forwarded to Lis`,
            actual: `${forwarded.length} forwarded`,
            hint: `a token bucket per user: ${VOICE_BURST} VOICE at once, then one token back every ${VOICE_MS} ms (${VOICE_BUCKET.perSecond} a second), never more than ${VOICE_BURST}; a VOICE without a token is dropped`,
          }, watch, unmeasured);
          expect(!flo.user.isClosed, `Flo was disconnected for sending ${REFILL_SEND_PER_SECOND} VOICE a second for ${showMs(REFILL_SEND_MS)}`, {
            expected: `Flo still connected: about ${total - VOICE_BURST - VOICE_BUCKET.perSecond * (REFILL_SEND_MS / 1_000)} dropped, far fewer than the ${VOICE_FLOOD_DROPS} within ${VOICE_FLOOD_WINDOW_MS / 1000} s of a flood`,
            actual: 'the connection was closed', hint: 'VOICE over the rate is dropped; only a flood (more than 250 dropped within 5 s) ends the connection',
          });
          unmeasured.settle();
        });
      }),
  };
}

/**
 * Stage 05's server checks of its TCP voice, for any stage that keeps it for users on TCP: 05, 06
 * (06-udp/README.md: a user who never says PATH udp gets stage 05's TCP VOICE; stage 05's table
 * holds), and 07 and 08, whose voice is 06's (08 outside calls). Every user here speaks only TCP,
 * so a later stage's server must treat them as 05's did.
 */
export function opusServerChecks(wire: StageWire): Check[] {
  const protocol = wire.protocol ?? PROTOCOL;
  const joinRoom = (party: Party, name: string, room: string) => joinRoomAs(protocol, party, name, room);
  return [
    {
      name: 'ids: WELCOME gives a session id, the protocol and the codec; USERS, JOINED and LEFT name users by {id, name}; a move keeps the id; ids are not reused at once; a connection closed without BYE gets LEFT "lost"',
      run: (context) =>
        withParty(context, TYPE_NAMES, async (party) => {
          const ada = await joinRoom(party, 'Ada', 'ids-a');
          const bob = await joinRoom(party, 'Bob', 'ids-a');
          const cy = await joinRoom(party, 'Cy', 'ids-b');
          const welcome = ada.user.welcome;
          const format = { name: 'Ada', room: 'ids-a', protocol, codec: 'opus', sample_rate: 48_000, frame_ms: 20, channels: 1 };
          const wrongField = Object.entries(format).find(([field, value]) => welcome[field] !== value);
          expect(wrongField === undefined, `WELCOME field "${wrongField?.[0]}" is wrong`, {
            expected: `WELCOME ${JSON.stringify({ ...format, id: '1..65535' })}`,
            actual: `WELCOME ${JSON.stringify(welcome)}`,
            hint: 'WELCOME repeats name and room, and names the protocol and the voice format every VOICE carries',
          });
          const ids = [ada.id, bob.id, cy.id];
          expect(new Set(ids).size === 3, 'two users got the same session id', { expected: 'a different id for each connected user', actual: `Ada ${ada.id}, Bob ${bob.id}, Cy ${cy.id}`, hint: 'ids are unique among the users connected now, whatever their room' });

          const usersHint = 'USERS is {"room", "users": [{"id", "name"}, ...]}: the room\'s members in join order, the newcomer last, with the ids their WELCOME gave';
          const expectUsers = async (member: Member, room: string, list: Member[], since: number) => {
            const frame = await member.user.waitForFrame(`USERS for room "${room}"`, (f) => f.type === USERS, { since, timeoutMs: ANNOUNCE_DEADLINE_MS, hint: usersHint });
            const object = jsonOf(frame);
            expect(object.room === room && JSON.stringify(refs(object.users)) === JSON.stringify(list.map(refOf)), `USERS sent to ${member.user.name} is wrong`, {
              expected: `USERS ${JSON.stringify({ room, users: list.map((m) => ({ id: m.id, name: m.user.name })) })}`,
              actual: describe(frame),
              hint: usersHint,
            });
          };
          await expectUsers(ada, 'ids-a', [ada], 0);
          await expectUsers(bob, 'ids-a', [ada, bob], 0);
          await ada.user.waitForFrame(`JOINED {"id":${bob.id},"name":"Bob"}`, isAbout(JOINED, bob), { timeoutMs: ANNOUNCE_DEADLINE_MS, hint: 'JOINED is {"id", "name"} of the newcomer' });

          const since = [ada.user.mark(), bob.user.mark(), cy.user.mark()] as const;
          bob.user.send(join('ids-b'));
          await ada.user.waitForFrame(`LEFT {"id":${bob.id},"name":"Bob","reason":"moved"}`, isAbout(LEFT, bob, 'moved'), { since: since[0], timeoutMs: ANNOUNCE_DEADLINE_MS, hint: 'LEFT is {"id", "name", "reason"}' });
          await expectUsers(bob, 'ids-b', [cy, bob], since[1]);
          await cy.user.waitForFrame(`JOINED {"id":${bob.id},"name":"Bob"} (the same id after the move)`, isAbout(JOINED, bob), { since: since[2], timeoutMs: ANNOUNCE_DEADLINE_MS, hint: 'a move is not a new session: the user keeps their id' });

          bob.user.send(frameBytes(BYE));
          await cy.user.waitForFrame(`LEFT {"id":${bob.id},"name":"Bob","reason":"bye"}`, isAbout(LEFT, bob, 'bye'), { since: since[2], timeoutMs: ANNOUNCE_DEADLINE_MS, hint: 'LEFT is {"id", "name", "reason"}' });
          const dee = await joinRoom(party, 'Dee', 'ids-a');
          expect(dee.id > Math.max(...ids), 'a session id was handed out again at once', {
            expected: `an id above ${Math.max(...ids)} for Dee: ids are handed out in increasing order (wrapping only after 65535)`,
            actual: `Dee got id ${dee.id}`,
            hint: 'a late packet of a user who left must not be taken for a newcomer\'s: do not reuse an id until the counter wraps',
          });
          // Leaving without BYE (stage 04's "lost"): the user is gone at once, not kept as a ghost that still holds its id.
          const deeSince = dee.user.mark();
          ada.user.destroy();
          await dee.user.waitForFrame(`LEFT {"id":${ada.id},"name":"Ada","reason":"lost"}`, isAbout(LEFT, ada, 'lost'), { since: deeSince, timeoutMs: ANNOUNCE_DEADLINE_MS, hint: 'a user whose connection closes without BYE (FIN or reset) leaves at once: the room gets LEFT {"id", "name", "reason": "lost"}, and their id is no longer in use' });
        }),
    },
    {
      name: `forwarding: each VOICE goes at once (the median copy within ${FORWARDING_WINDOW.latestMs} ms of its sending), byte for byte, with the speaker's id and sequence, to exactly the other members of the room: never back, never to another room`,
      run: (context) =>
        withParty(context, TYPE_NAMES, async (party) => {
          const ada = await joinRoom(party, 'Ada', 'fwd-a');
          const bob = await joinRoom(party, 'Bob', 'fwd-a');
          const cy = await joinRoom(party, 'Cy', 'fwd-a');
          const dee = await joinRoom(party, 'Dee', 'fwd-b');
          await barrier(ada.user);
          // Sizes from the smallest packet to the largest, sequence numbers across the wrap.
          const adaPackets = packets(5, [1, MAX_OPUS_PACKET_BYTES, ...Array.from({ length: 14 }, (_, i) => 40 + i * 7)]);
          const bobPackets = packets(6, Array.from({ length: 16 }, (_, i) => 60 + i));
          const deePackets = packets(7, [50, 51, 52, 53]);
          const adaFirst = 65_530;
          const bobFirst = 100;
          const since = new Map([ada, bob, cy, dee].map((m) => [m, m.user.mark()]));
          const fromAda = adaPackets.map((p, i) => forwarded(ada.id, adaFirst + i, p));
          const fromBob = bobPackets.map((p, i) => forwarded(bob.id, bobFirst + i, p));
          // The grader's own timers while the copies' delays are measured: a stall of the grader voids that judgement only.
          const { watch, adaSentAt, bobSentAt } = await withStallWatch(async (watch) => {
            const [adaSentAt, bobSentAt] = await Promise.all([talkPaced(ada, adaPackets, adaFirst), talkPaced(bob, bobPackets, bobFirst), talkPaced(dee, deePackets, 0)]);
            await waitForVoices(cy.user, fromAda.length + fromBob.length, since.get(cy)!);
            return { watch, adaSentAt: adaSentAt!, bobSentAt: bobSentAt! };
          });
          await Promise.all([ada, bob, cy, dee].map((m) => barrier(m.user)));
          const hint = 'forward each VOICE at once to every OTHER member of the sender\'s room: speaker id (from the connection) + the sender\'s sequence + the sender\'s packet, unchanged';
          expectVoices(cy.user, new Map([[ada.id, fromAda], [bob.id, fromBob]]), since.get(cy)!, hint);
          expectVoices(bob.user, new Map([[ada.id, fromAda]]), since.get(bob)!, `${hint}; never back to the sender`);
          expectVoices(ada.user, new Map([[bob.id, fromBob]]), since.get(ada)!, `${hint}; never back to the sender`);
          expectVoices(dee.user, new Map(), since.get(dee)!, `${hint}; never to another room`);
          expectForwardedAtOnce(cy.user, new Map([[ada.id, adaSentAt], [bob.id, bobSentAt]]), since.get(cy)!, watch);
        }),
    },
    {
      name: 'moving: VOICE sent after a JOIN goes to the new room only, at once; the mover keeps their id',
      run: (context) =>
        withParty(context, TYPE_NAMES, async (party) => {
          const ann = await joinRoom(party, 'Ann', 'mv-a');
          const mo = await joinRoom(party, 'Mo', 'mv-a');
          const bea = await joinRoom(party, 'Bea', 'mv-b');
          await barrier(ann.user);
          const since = new Map([ann, mo, bea].map((m) => [m, m.user.mark()]));
          const before = packets(8, [30, 31, 32]);
          const after = packets(9, [40, 41, 42]);
          // One write: three VOICE in mv-a, the move, three VOICE in mv-b.
          mo.user.send(Buffer.concat([...before.map((p, i) => voice(i + 1, p)), join('mv-b'), ...after.map((p, i) => voice(i + 4, p))]));
          await ann.user.waitForFrame(`LEFT {"id":${mo.id},"name":"Mo","reason":"moved"}`, isAbout(LEFT, mo, 'moved'), { since: since.get(ann), timeoutMs: ANNOUNCE_DEADLINE_MS, hint: 'on JOIN, tell the old room LEFT "moved" at once' });
          await waitForVoices(bea.user, after.length, since.get(bea)!);
          await Promise.all([ann, mo, bea].map((m) => barrier(m.user)));
          const hint = 'a VOICE is forwarded to the room the sender is in when it arrives: what came before the JOIN to the old room, what came after it to the new room only';
          expectVoices(ann.user, new Map([[mo.id, before.map((p, i) => forwarded(mo.id, i + 1, p))]]), since.get(ann)!, hint);
          expectVoices(bea.user, new Map([[mo.id, after.map((p, i) => forwarded(mo.id, i + 4, p))]]), since.get(bea)!, `${hint}; the mover keeps their session id`);
          expectVoices(mo.user, new Map(), since.get(mo)!, 'never send a user their own VOICE');
          await ann.user.waitForFrame('SPEAKING {"speakers":[]} once Mo moved out', speakingIs([]), {
            since: since.get(ann), timeoutMs: ANNOUNCE_DEADLINE_MS, hint: 'a speaker who moves out is no longer speaking in the old room: send it SPEAKING without them, at once',
          });
        }),
    },
    {
      name: 'speaking: SPEAKING names a user before their first VOICE is forwarded, and drops them 200 ms after their last',
      run: (context) =>
        withParty(context, TYPE_NAMES, async (party) => {
          const ada = await joinRoom(party, 'Ada', 'spk');
          const bob = await joinRoom(party, 'Bob', 'spk');
          await barrier(ada.user);
          const since = [ada.user.mark(), bob.user.mark()] as const;
          await withStallWatch(async (watch) => {
            await talkPaced(ada, packets(10, Array.from({ length: 12 }, () => 60)), 0);
            const startHint = 'when a silent user\'s VOICE is forwarded, first send SPEAKING with the new set to everyone in the room (the speaker too), then the VOICE';
            const first = await bob.user.waitForFrame('SPEAKING naming Ada', speakingIs([ada]), { since: since[1], timeoutMs: ANNOUNCE_DEADLINE_MS, hint: startHint });
            await ada.user.waitForFrame('SPEAKING naming Ada (to Ada too)', speakingIs([ada]), { since: since[0], timeoutMs: ANNOUNCE_DEADLINE_MS, hint: startHint });
            const firstVoice = bob.user.framesOfType(VOICE, since[1])[0];
            expect(firstVoice !== undefined && bob.user.frames.indexOf(first) < bob.user.frames.indexOf(firstVoice), 'SPEAKING came after the first VOICE', {
              expected: `SPEAKING {"speakers":[{"id":${ada.id},"name":"Ada"}]}, then Ada's first VOICE`,
              actual: bob.user.describeFrames(since[1]),
              hint: startHint,
            });
            const stopHint = `a user stops speaking ${SPEAKING_HOLD_MS} ms after their last forwarded VOICE: then send SPEAKING with the smaller set`;
            const cleared = await bob.user.waitForFrame('SPEAKING {"speakers":[]}', speakingIs([]), { since: since[1], timeoutMs: ANNOUNCE_DEADLINE_MS * 2, hint: stopHint });
            const lastVoice = bob.user.framesOfType(VOICE, since[1]).at(-1)!;
            // Timed between two reads of this grader: its own lateness around them is allowed (tolerance.ts).
            const unmeasured = new Unmeasured();
            expectTimed(cleared.at - lastVoice.at, SPEAKING_HOLD_MS, { pipelineMs: VOICE_MS }, watch.worstLateMs, unmeasured, 'the speaking hold', 'SPEAKING without Ada (timed from her last VOICE)', stopHint);
            const flaps = bob.user.frames.slice(since[1]).filter((f) => f.type === SPEAKING).length;
            expect(flaps === 2, 'SPEAKING flapped while Ada talked steadily', {
              expected: `exactly two SPEAKING: Ada starts, Ada stops (${SPEAKING_HOLD_MS} ms after her last VOICE)`,
              actual: bob.user.describeFrames(since[1]),
              hint: 'send SPEAKING only when the set of speakers changes',
            });
            unmeasured.settle();
          });
        }),
    },
    {
      name: `rate limit: VOICE beyond ${VOICE_BURST} at once is dropped (not forwarded, the connection stays); a flood gets ERROR rate_limited`,
      run: (context) =>
        withParty(context, TYPE_NAMES, async (party) => {
          const flo = await joinRoom(party, 'Flo', 'rate');
          const lis = await joinRoom(party, 'Lis', 'rate');
          await barrier(flo.user);
          const since = lis.user.mark();
          const hint = `a token bucket per user: ${VOICE_BURST} VOICE at once, then one per ${VOICE_MS} ms; a VOICE without a token is dropped, not forwarded, and the connection stays`;
          const unmeasured = new Unmeasured();
          // The grader's own timers over the burst and its answers: only their lateness excuses a count over the allowance.
          const { watch, sentAt, lastSentAt } = await withStallWatch(async (watch) => {
            const sentAt = performance.now();
            flo.user.send(Buffer.concat(packets(11, Array.from({ length: 30 }, () => 60)).map((p, i) => voice(i, p))));
            const lastSentAt = performance.now();
            await sleep(300);
            await barrier(flo.user);
            await barrier(lis.user);
            return { watch, sentAt, lastSentAt };
          });
          const forwarded = voiceFramesFrom(lis.user, flo.id, since);
          expectBucketLimit({ passed: forwarded.length, firstSentAt: sentAt, lastSentAt, lastSeenAt: forwarded.at(-1)?.at ?? lastSentAt }, {
            bucket: VOICE_BUCKET,
            least: VOICE_BURST,
            brokenPasses: 2 * VOICE_BURST,
            broken: 'a bucket of twice the burst',
            measures: `whether VOICE beyond ${VOICE_BURST} at once is dropped`,
            summary: '30 VOICE at once were not limited to the burst',
            expected: (range) => `${range} of Flo's 30 VOICE forwarded to Lis`,
            actual: `${forwarded.length} forwarded`,
            hint,
          }, unmeasured, watch);
          expect(!flo.user.isClosed, 'Flo was disconnected for 30 VOICE at once', { expected: 'Flo still connected: VOICE over the rate is dropped, and only a flood (more than 250 dropped within 5 s) ends the connection', actual: 'the connection was closed', hint });
          const leftSince = lis.user.mark();
          flo.user.send(Buffer.concat(packets(12, Array.from({ length: 1_000 }, () => 60)).map((p, i) => voice(i + 30, p))));
          const error = await flo.user.waitForFrame('ERROR "rate_limited"', (f) => f.type === ERROR, { timeoutMs: ANNOUNCE_DEADLINE_MS * 3, hint: 'more than 250 VOICE dropped within 5 s: ERROR rate_limited, then close' });
          expect(jsonOf(error).code === 'rate_limited', 'a VOICE flood got the wrong ERROR', { expected: 'ERROR {"code": "rate_limited", ...}', actual: describe(error), hint });
          await flo.user.waitForClose(3_000, 'the server to close the flooder after ERROR');
          await lis.user.waitForFrame(`LEFT {"id":${flo.id},"name":"Flo","reason":"error"}`, isAbout(LEFT, flo, 'error'), { since: leftSince, timeoutMs: ANNOUNCE_DEADLINE_MS, hint: 'a user disconnected for an error is announced with LEFT "error"' });
          const total = voicesFrom(lis.user, flo.id, since).length;
          const allowedTotal = mostLetThrough(VOICE_BUCKET, performance.now() - sentAt);
          expect(total <= allowedTotal, 'the flood was forwarded', { expected: `at most ${allowedTotal} of Flo's 1030 VOICE forwarded`, actual: `${total}`, hint });
          unmeasured.settle();
        }),
    },
    voiceFloodWindowCheck(wire),
    voiceRefillCheck(wire),
    {
      name: 'errors: HELLO without or with another "protocol" gets wrong_protocol; VOICE before HELLO not_joined; a VOICE header too short gets bad_voice_size, too long frame_too_large',
      run: (context) =>
        withParty(context, TYPE_NAMES, async (party) => {
          const rogue = async (bytes: Buffer, code: string, hint: string) => {
            const client = await WireClient.connect(context.server.host, context.server.port);
            client.send(bytes);
            await expectError(client, code, hint, TYPE_NAMES);
          };
          await Promise.all([
            rogue(hello({ name: 'Old', room: 'lobby' }), 'wrong_protocol', 'a HELLO without "protocol" comes from a client of stage 04 or earlier: ERROR wrong_protocol, checked before the name and room'),
            rogue(hello({ name: 'Old', room: 'lobby', protocol: 'voice-chat/04' }), 'wrong_protocol', `a HELLO whose "protocol" is not "${protocol}": ERROR wrong_protocol`),
            rogue(hello({ protocol: 'voice-chat/04' }), 'wrong_protocol', 'the protocol is checked before the name and room fields'),
            rogue(voice(0, Buffer.of(0xf8)), 'not_joined', 'VOICE is only accepted after a successful HELLO'),
          ]);
          // Headers alone: the answer must come before any payload (there is none to wait for).
          const cases: [Buffer, string, string][] = [
            [Buffer.from([VOICE, 0, 0, 0, 2]), 'bad_voice_size', 'a VOICE declaring 2 payload bytes has no Opus packet: ERROR bad_voice_size on the header, before waiting for the payload'],
            [Buffer.from([VOICE, 0, 0, 0, 0]), 'bad_voice_size', 'an empty VOICE: ERROR bad_voice_size'],
            [Buffer.from([VOICE, 0, 0, (MAX_CLIENT_VOICE_BYTES + 1) >> 8, (MAX_CLIENT_VOICE_BYTES + 1) & 0xff]), 'frame_too_large', `a VOICE declaring more than ${MAX_CLIENT_VOICE_BYTES} payload bytes: ERROR frame_too_large on the header`],
          ];
          for (const [i, [header, code, hint]] of cases.entries()) {
            const listener = await joinRoom(party, `Lis${i}`, `err-${i}`);
            const offender = await joinRoom(party, `Eve${i}`, `err-${i}`);
            const since = listener.user.mark();
            offender.user.send(header);
            const error = await offender.user.waitForFrame(`ERROR "${code}"`, (f) => f.type === ERROR, { timeoutMs: ANNOUNCE_DEADLINE_MS * 2, hint });
            expect(jsonOf(error).code === code, `a bad VOICE header got the wrong ERROR`, { expected: `ERROR {"code": "${code}", ...}`, actual: describe(error), sent: header, hint });
            await offender.user.waitForClose(3_000, 'the server to close the connection after ERROR', hint);
            await listener.user.waitForFrame(`LEFT {"id":${offender.id},"name":"Eve${i}","reason":"error"}`, isAbout(LEFT, offender, 'error'), { since, timeoutMs: ANNOUNCE_DEADLINE_MS, hint: 'announce a user closed for an error with LEFT "error"' });
          }
          // The largest packet is fine: it was forwarded in the forwarding check; here nobody else heard the errors.
          const ada = await joinRoom(party, 'Ada', 'err-quiet');
          await barrier(ada.user);
          expectNever(ada.user, (f) => f.type === VOICE || f.type === LEFT, 'another room heard about the offenders', 'nothing in err-quiet', 'errors concern the offender\'s room only');
        }),
    },
    {
      name: `largest HELLO and JOIN: a HELLO of exactly ${MAX_HELLO_BYTES} bytes gets WELCOME, so does one into a room id of ${MAX_ROOM_ID_CHARS} characters, and a JOIN of exactly ${MAX_HELLO_BYTES} bytes to another room id of ${MAX_ROOM_ID_CHARS} moves the user`,
      run: (context) =>
        withParty(context, TYPE_NAMES, async (party) => {
          // Stage 04's limits, kept (05's README: "Stage 04's table holds"); padded with an unknown field, which a server ignores.
          const hint = `a HELLO or JOIN payload may be ${MAX_HELLO_BYTES} bytes, a room id ${MAX_ROOM_ID_CHARS} ASCII letters, digits, "-", "_", "." or ":": only more is refused`;
          await failingAs(`the HELLO limit is not ${MAX_HELLO_BYTES} bytes: a HELLO of exactly ${MAX_HELLO_BYTES} bytes was not taken`, party.join('Ada', paddedToBytes({ name: 'Ada', room: 'largest', protocol }, MAX_HELLO_BYTES)), { hint });
          const longest = 'Az09-_.:'.repeat(MAX_ROOM_ID_CHARS / 8); // every kind of character allowed
          const bob = await failingAs(`the room id limit is not ${MAX_ROOM_ID_CHARS} characters: a HELLO into a room id of ${MAX_ROOM_ID_CHARS} characters was not taken`, joinRoom(party, 'Bob', longest), { hint });
          const other = ':._-90zA'.repeat(MAX_ROOM_ID_CHARS / 8);
          const sent = paddedJsonFrameBytes(JOIN, { room: other }, MAX_HELLO_BYTES);
          const since = bob.user.mark();
          bob.user.send(sent);
          const answer = await failingAs(`the JOIN limit is not ${MAX_HELLO_BYTES} bytes: a JOIN of exactly ${MAX_HELLO_BYTES} bytes was not answered`, bob.user.waitForFrame(`USERS for room "${other}"`, (f) => (f.type === USERS && jsonOf(f).room === other) || f.type === JOIN_REFUSED || f.type === ERROR, { since, timeoutMs: ANNOUNCE_DEADLINE_MS, hint }), { sent: sent.subarray(0, 80) });
          expect(answer.type === USERS, `the JOIN limit is not ${MAX_HELLO_BYTES} bytes (or a JOIN's room id not ${MAX_ROOM_ID_CHARS} characters): a JOIN of exactly ${MAX_HELLO_BYTES} bytes to a room id of ${MAX_ROOM_ID_CHARS} characters got ${typeName(answer.type)}`, {
            expected: `USERS {"room": "${other}", ...}: the move is made`,
            actual: describe(answer),
            sent: sent.subarray(0, 80),
            hint,
          });
        }),
    },
  ];
}

export const serverChecks: Check[] = [
  ...opusServerChecks(WIRES['05']),
  // Over the hostile cases' raw connections: they count forwarded VOICE and keep up with a flood's answers.
  joinFloodRule(WIRES['05']),
  moveRefillCheck(WIRES['05']),
];

/**
 * Checks that take long on purpose (65 535 session ids burnt through to see them wrap), longer than
 * a default grade should: graded with `npm run grade -- --stage 05 --slow`, and by
 * tests/05-opus-slow.test.ts.
 */
export const slowServerChecks: Check[] = [sessionIdWrapCheck(WIRES['05'])];
