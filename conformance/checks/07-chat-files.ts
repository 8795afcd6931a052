// Stage 07's server checks: text chat and file transfers in rooms, over raw sockets only (the
// layouts of 07-chat-files/README.md; nothing from 07-chat-files/ is imported), so they grade a
// server in any language. Files are seeded random bytes; the grader plays every client: it sends
// CHUNKs within CREDIT only, ACKs what it read, or plays a receiver that never reads.
//
// "Nothing came" needs an end to the waiting: LIST_ROOMS, then ROOMS (the server writes one
// connection in order, so anything sent before ROOMS has arrived).
import { createHash } from 'node:crypto';
import { CheckFailure, CheckSkipped, failingAs } from '../harness/check-failure.ts';
import { expect, type Check } from '../harness/checks.ts';
import { frameBytes, jsonFrameBytes, paddedJsonFrameBytes } from '../harness/frame-wire.ts';
import { FramedUser, type ReceivedFrame } from '../harness/framed-user.ts';
import { checkIdWrap, plainlyWrong } from '../harness/id-wrap-check.ts';
import { jsonOf, type Party, type TypeNames, withParty } from '../harness/party.ts';
import { moveRefillCheck } from '../harness/move-refill-check.ts';
import { type StageWire, WIRES } from '../hostile/wire-spec.ts';
import { findServerProcess, MB } from '../harness/proc-stats.ts';
import { SeededRandom } from '../harness/seeded-random.ts';
import { StallWatch } from '../harness/stall-watch.ts';
import { sleep } from '../harness/exact-mixes.ts';
import { withStallWatch } from '../harness/stall-watch.ts';
import { describeWindow, expectDuration, expectWithinWindow, judgeDuration, NOISE_FLOOR_MS, showMs, timingWindow } from '../harness/tolerance.ts';
import { processNotFound } from '../harness/unmeasured.ts';

export const HELLO = 0x01;
const ERROR = 0x05;
const USERS = 0x06;
const JOINED = 0x07;
const LEFT = 0x08;
const JOIN = 0x0a;
const LIST_ROOMS = 0x0c;
const ROOMS = 0x0d;
export const TEXT = 0x0f;
export const REFUSED = 0x10;
export const OFFER = 0x11;
export const OFFERED = 0x12;
export const CHUNK = 0x13;
export const ACK = 0x14;
export const CREDIT = 0x15;
export const CANCEL = 0x16;
export const TRANSFER_END = 0x17;
const TYPE_NAMES: Record<number, string> = {
  0x01: 'HELLO', 0x02: 'WELCOME', 0x03: 'VOICE', 0x04: 'BYE', [ERROR]: 'ERROR', [USERS]: 'USERS', [JOINED]: 'JOINED', [LEFT]: 'LEFT',
  0x09: 'SPEAKING', [JOIN]: 'JOIN', 0x0b: 'JOIN_REFUSED', [LIST_ROOMS]: 'LIST_ROOMS', [ROOMS]: 'ROOMS', 0x0e: 'PATH',
  [TEXT]: 'TEXT', [REFUSED]: 'REFUSED', [OFFER]: 'OFFER', [OFFERED]: 'OFFERED', [CHUNK]: 'CHUNK', [ACK]: 'ACK', [CREDIT]: 'CREDIT',
  [CANCEL]: 'CANCEL', [TRANSFER_END]: 'TRANSFER_END',
};

export const PROTOCOL = 'voice-chat/07';
/** The README's limits. */
const MAX_TEXT_CHARS = 1000;
/** Declared payload lengths a client may send: one more is frame_too_large. */
const MAX_TEXT_PAYLOAD = 8 * 1024;
const MAX_OFFER_PAYLOAD = 2 * 1024;
const MAX_CANCEL_PAYLOAD = 1024;
const MAX_FILE_NAME_BYTES = 255;
const TEXT_BURST = 10;
const TEXT_REFILL_MS = 1_000;
const MAX_TEXTS_REFUSED = 20;
const OFFER_BURST = 5;
const OFFER_REFILL_MS = 5_000;
const MAX_OFFERS_REFUSED = 20;
const MAX_TRANSFERS_PER_SENDER = 2;
const MAX_TRANSFERS_PER_SERVER = 64;
/** Tiny chunks: the chunks held for a transfer, each counted as its bytes + 256, may cost at most 512 KiB. */
const CHUNK_BOOKKEEPING = 256;
const MAX_HELD_CHUNK_COST = 512 * 1024;
/** A sender with credit that sends no CHUNK for 30 s: TRANSFER_END sender_stalled. */
const SENDER_STALL_MS = 30_000;
/** A receiver that held the transfer back 10 s, acknowledging under 256 KiB: TRANSFER_END too_slow. */
const TOO_SLOW_MS = 10_000;
/**
 * The accepted times of too_slow and sender_stalled (GRADING.md, timing): both rules may be
 * checked once a second (the reference: every 250 ms), so 1 s of pipeline.
 */
const TRANSFER_RULE_PIPELINE_MS = 1_000;
/** How late the grader's own timers may run before a 10 s or 30 s timing is "could not judge" (its margins are seconds). */
const TRANSFER_RULE_STALL_ALLOWANCE_MS = 1_000;
const CHUNK_DATA = 16_384;
const RECEIVE_WINDOW = 64 * 1024;
const TRANSFER_BUFFER = 256 * 1024;
/**
 * The memory check: two members swap files, so two transfers run at once. Small files first, so
 * the server's garbage (freed memory not yet given back, buffers a collector has not reclaimed)
 * reaches its high-water mark; then the largest files the README allows. A server that keeps whole
 * files needs the two large ones beyond what the small ones made it hold (even where the small
 * ones' copies linger as garbage); one that keeps 256 KiB per transfer reuses what it has.
 */
const WARM_UP_ROUNDS = 2;
const WARM_UP_FILE_BYTES = 8 * MB;
const LARGEST_FILE_BYTES = 64 * MB;
/** A quarter of the two large files: room for garbage that outgrows its warm-up mark, well under keeping them. */
const MEMORY_GROWTH_BOUND = 32 * MB;
/** How often the server's RSS is read (a peak between readings goes unseen). */
const RSS_SAMPLE_MS = 20;
/** "At once", with room for a busy machine. */
const DEADLINE_MS = 2_000;

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
/** Connections at once while the id wrap check burns through 65 535 transfer ids. */
const WRAP_PARALLEL = 32;
const TRANSFER_ID_RULE = 'transfer ids are u16 1-65535, increasing, skipping ids in use, wrapping from 65535 to 1 (the session id rule): a late CHUNK or ACK of an ended transfer must not be taken for a new one';

/** A member of a check: their connection and WELCOME's id. */
export interface Member {
  user: FramedUser;
  id: number;
  name: string;
}

/** Joins `room` as `name`; `protocol`: the stage's HELLO protocol (08 runs these checks too). */
export async function join(party: Party, name: string, room: string, protocol = PROTOCOL): Promise<Member> {
  const user = await party.join(name, { room, protocol });
  const welcome = jsonOf({ ...firstFrame(user), at: 0 });
  return { user, id: welcome.id as number, name };
}

function firstFrame(user: FramedUser): { type: number; payload: Buffer } {
  const received = user.wire.received;
  return { type: received[0]!, payload: received.subarray(5, 5 + received.readUInt32BE(1)) };
}

/** Sends LIST_ROOMS and waits for ROOMS: afterwards, everything sent to `user` before has arrived. */
export async function barrier(user: FramedUser): Promise<void> {
  const since = user.mark();
  user.send(frameBytes(LIST_ROOMS));
  await user.waitForFrame('ROOMS in answer to LIST_ROOMS', (f) => f.type === ROOMS, { since, timeoutMs: 10_000, hint: 'answer LIST_ROOMS with ROOMS, as in stage 04' });
}

export function chunkBytes(transfer: number, offset: number, data: Buffer): Buffer {
  const head = Buffer.alloc(6);
  head.writeUInt16BE(transfer);
  head.writeUInt32BE(offset, 2);
  return frameBytes(CHUNK, Buffer.concat([head, data]));
}

export function ackBytes(transfer: number, received: number): Buffer {
  const payload = Buffer.alloc(6);
  payload.writeUInt16BE(transfer);
  payload.writeUInt32BE(received, 2);
  return frameBytes(ACK, payload);
}

const chunkOf = (frame: ReceivedFrame) => ({ transfer: frame.payload.readUInt16BE(0), offset: frame.payload.readUInt32BE(2), data: frame.payload.subarray(6) });
const isEnd = (transfer: number, result?: string) => (frame: ReceivedFrame) =>
  frame.type === TRANSFER_END && jsonOf(frame).transfer === transfer && (result === undefined || jsonOf(frame).result === result);

/** Offers `file` and waits for OFFERED; returns the transfer id. */
export async function offer(sender: Member, name: string, file: Buffer, fields: Record<string, unknown> = {}, hint = 'an OFFER to a room with others in it, within the limits, gets OFFERED'): Promise<number> {
  const since = sender.user.mark();
  sender.user.send(jsonFrameBytes(OFFER, { name, size: file.length, sha256: sha256(file), ...fields }));
  const answer = await sender.user.waitForFrame('OFFERED (or REFUSED) for the OFFER', (f) => f.type === OFFERED || f.type === REFUSED || f.type === ERROR, {
    since,
    timeoutMs: DEADLINE_MS,
    hint: 'answer an OFFER with OFFERED {"transfer", "name", "size", "sha256", "receivers"}, then CREDIT',
  });
  const id = jsonOf(answer).transfer;
  expect(answer.type === OFFERED && Number.isInteger(id) && (id as number) >= 1 && (id as number) <= 0xffff, `the OFFER of "${name}" was not taken`, {
    expected: 'OFFERED {"transfer": 1..65535, ...}',
    actual: `${TYPE_NAMES[answer.type]} ${answer.payload.toString().slice(0, 200)}`,
    hint,
  });
  return jsonOf(answer).transfer as number;
}

/**
 * Plays a sender that follows CREDIT: sends `file` in CHUNKs of 16 KiB, never past the latest
 * CREDIT's until. Stops at `stopAt` bytes (a sender that lies or stops). Returns when all is sent.
 */
export async function sendWithinCredit(sender: Member, transfer: number, file: Buffer, options: { startAt?: number; stopAt?: number; lastChunk?: (offset: number, data: Buffer) => Buffer; timeoutMs?: number } = {}): Promise<void> {
  const stopAt = options.stopAt ?? file.length;
  let sent = options.startAt ?? 0;
  let creditIndex = 0;
  let until = 0;
  while (sent < stopAt) {
    for (; creditIndex < sender.user.frames.length; creditIndex++) {
      const frame = sender.user.frames[creditIndex]!;
      if (frame.type === CREDIT && frame.payload.readUInt16BE(0) === transfer) until = Math.max(until, frame.payload.readUInt32BE(2));
      if (isEnd(transfer)(frame)) return;
    }
    if (sent < Math.min(until, stopAt)) {
      const end = Math.min(sent + CHUNK_DATA, until, stopAt);
      const data = file.subarray(sent, end);
      sender.user.send(end === file.length && options.lastChunk ? options.lastChunk(sent, data) : chunkBytes(transfer, sent, data));
      sent = end;
      if (sent % (16 * CHUNK_DATA) === 0) await new Promise((resolve) => setImmediate(resolve));
      continue;
    }
    await sender.user.waitForFrame(`CREDIT for transfer ${transfer} past ${until} (${sent} of ${file.length} bytes sent)`, (f) => (f.type === CREDIT && f.payload.readUInt16BE(0) === transfer && f.payload.readUInt32BE(2) > until) || isEnd(transfer)(f), {
      since: creditIndex,
      timeoutMs: options.timeoutMs ?? 30_000,
      hint: 'grant CREDIT (transfer u16, until u32) as receivers ACK: until = the slowest receiver\'s ACK + 256 KiB',
    });
  }
}

/** A receiver that reads and ACKs every CHUNK of `transfer` as it arrives (after `delayMs`). Stop with stop(). */
export class AckingReceiver {
  private index = 0;
  received = 0;
  readonly pieces: Buffer[] = [];
  private readonly timer: NodeJS.Timeout;
  constructor(readonly member: Member, readonly transfer: number, delayMs = 0) {
    this.timer = setInterval(() => this.poll(delayMs), 5);
  }
  poll(delayMs: number): void {
    const frames = this.member.user.frames;
    const now = performance.now();
    let acked = false;
    for (; this.index < frames.length; this.index++) {
      const frame = frames[this.index]!;
      if (frame.type !== CHUNK) continue;
      if (now - frame.at < delayMs) break;
      const chunk = chunkOf(frame);
      if (chunk.transfer !== this.transfer || chunk.offset !== this.received) continue;
      this.pieces.push(chunk.data);
      this.received += chunk.data.length;
      acked = true;
    }
    if (acked && !this.member.user.isClosed) this.member.user.send(ackBytes(this.transfer, this.received));
  }
  /** Everything received so far, read at once (also what the poll has not reached yet). */
  bytes(): Buffer {
    this.poll(0);
    return Buffer.concat(this.pieces);
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

/** The CHUNK data bytes of `transfer` that `user` received since `since`. */
function chunkDataSince(user: FramedUser, transfer: number, since = 0): number {
  return user.framesOfType(CHUNK, since).filter((f) => chunkOf(f).transfer === transfer).reduce((sum, f) => sum + f.payload.length - 6, 0);
}

async function expectRefused(member: Member, request: 'text' | 'offer', code: string, sent: string, since: number, hint: string): Promise<void> {
  const frame = await member.user.waitForFrame(`REFUSED ${code} for ${sent}`, (f) => f.type === REFUSED || f.type === TEXT || f.type === ERROR || f.type === OFFERED, { since, timeoutMs: DEADLINE_MS, hint });
  const object = jsonOf(frame);
  expect(frame.type === REFUSED && object.request === request && object.code === code && typeof object.message === 'string', `${sent}: expected REFUSED ${code}`, {
    expected: `REFUSED (0x10) {"request": "${request}", "code": "${code}", "message": ...}, the connection open`,
    actual: `${TYPE_NAMES[frame.type]} ${frame.payload.toString().slice(0, 200)}`,
    hint,
  });
}

/**
 * Sends `bytes`, `message` at one of the README's limits, and requires the answer `wanted` (the
 * TEXT's echo, OFFERED, TRANSFER_END), not an ERROR, a REFUSED or a close: any of those fails
 * naming the limit ("the TEXT limit is not 8 KiB").
 */
async function expectTaken(member: Member, bytes: Buffer, wanted: number, limit: string, message: string): Promise<ReceivedFrame> {
  const since = member.user.mark();
  member.user.send(bytes);
  const details = { expected: `${TYPE_NAMES[wanted]} for ${message}, the connection open`, sent: bytes.subarray(0, 80), hint: 'a message of exactly the README\'s limit is allowed: only a longer one is refused' };
  const answer = await failingAs(`${limit}: ${message} was not taken`, member.user.waitForFrame(details.expected, (f) => f.type === wanted || f.type === ERROR || f.type === REFUSED, { since, timeoutMs: DEADLINE_MS, hint: details.hint }), details);
  expect(answer.type === wanted, `${limit}: ${message} got ${TYPE_NAMES[answer.type]}`, { ...details, actual: `${TYPE_NAMES[answer.type]} ${answer.payload.toString().slice(0, 200)}` });
  return answer;
}

/**
 * Waits for ERROR with `code` among the frames `member` was sent, then for the server to close the
 * connection. `sent`: the bytes that call for the ERROR, shown in the failure.
 */
export async function expectError(member: Member, code: string, hint: string, since = 0, sent?: Buffer): Promise<void> {
  const frame = await withSent(sent, member.user.waitForFrame(`ERROR "${code}"`, (f) => f.type === ERROR, { since, timeoutMs: DEADLINE_MS * 2, hint }));
  expect(jsonOf(frame).code === code, `expected ERROR "${code}"`, { expected: `ERROR (0x05) {"code": "${code}", "message": ...}`, actual: `ERROR ${frame.payload.toString().slice(0, 200)}`, sent, hint });
  await member.user.waitForClose(3_000, 'the server to close the connection after ERROR', 'after sending ERROR, close that connection');
}

/** Adds the bytes the check sent to a failure of `waiting` (a timeout says what it was waiting for, not what caused it). */
async function withSent<T>(sent: Buffer | undefined, waiting: Promise<T>): Promise<T> {
  try {
    return await waiting;
  } catch (error) {
    if (sent !== undefined && error instanceof CheckFailure && error.details.sent === undefined) throw new CheckFailure(error.summary, { ...error.details, sent });
    throw error;
  }
}

/** Requires `member` to be connected still and sent no ERROR since `since` (a barrier first: everything sent before it has arrived). */
async function expectStillConnected(member: Member, since: number, what: string, hint: string, sent?: Buffer): Promise<void> {
  let lost: unknown;
  try {
    await barrier(member.user);
  } catch (error) {
    lost = error;
  }
  const error = member.user.frames.slice(since).find((f) => f.type === ERROR);
  expect(error === undefined, `${member.name} got an ERROR for ${what}`, { expected: `no ERROR: ${what} is allowed, the connection stays`, actual: `ERROR ${error?.payload.toString().slice(0, 200)}`, sent, hint });
  if (lost !== undefined) await withSent(sent, Promise.reject(lost));
}

/**
 * Lets `work` run while the check waits for something else: if the check fails first, `work`'s own
 * failure must not become an unhandled rejection (that would stop the grader); awaited later, it
 * still fails the check.
 */
function inBackground<T>(work: Promise<T>): Promise<T> {
  work.catch(() => {});
  return work;
}

const randomFile = (seed: number, bytes: number) => new SeededRandom(seed).bytes(bytes);

/** Runs `body`, then drops whatever the check started (receivers' timers). */
async function withMembers(context: Parameters<Check['run']>[0], body: (party: Party, cleanups: (() => void)[]) => Promise<void>, typeNames: TypeNames = TYPE_NAMES): Promise<void> {
  const cleanups: (() => void)[] = [];
  await withParty(context, typeNames, async (party) => {
    try {
      await body(party, cleanups);
    } finally {
      for (const cleanup of cleanups) cleanup();
    }
  });
}

/** A per-user bucket of TEXT or OFFER (issue 18), as the README's tables give it. */
interface RequestBucket {
  request: 'text' | 'offer';
  /** The message it limits, as the README's tables name it. */
  kind: 'TEXT' | 'OFFER';
  burst: number;
  refillMs: number;
  /** One request that takes a token (`i`: a number to tell them apart). */
  requestBytes: (i: number) => Buffer;
  /** The answer to a request that got a token: the TEXT's echo, OFFERED. */
  taken: number;
}

/**
 * The refill of `bucket`, which the flood checks cannot see (their requests all come within
 * milliseconds, so a bucket that never refills gives them the same answers). Judged by the
 * tolerance rule (GRADING.md, timing), like 08's LOOKUP and INVITE refills: the bucket emptied at
 * once; a request sent 200 ms before the earliest accepted refill, counted from when the burst was
 * SENT (the server cannot have taken a token before), is refused; one sent at the latest accepted
 * refill, counted from when the refusal of the burst's next request ARRIVED (the server had taken
 * the last token before), takes a token. A busy server only makes both safer. The early request is
 * planned for a grader on time (the rule's noise floor), so a refill at 0.6 of the README's fails;
 * one that went out after the earliest accepted refill (the grader's own timer late) and was taken
 * could not be judged (SKIP).
 */
function bucketRefillCheck(wire: StageWire, bucket: RequestBucket): Check {
  const { request, kind, burst, refillMs } = bucket;
  const window = timingWindow(refillMs, { graderLateMs: 0 });
  const perRefill = refillMs === 1_000 ? '1 per second' : `1 per ${showMs(refillMs)}`;
  const earlyAfterMs = window.earliestMs - 2 * NOISE_FLOOR_MS;
  const hint = `${kind === 'OFFER' ? 'an' : 'a'} ${kind} takes a token from a per-user bucket of ${burst}, refilled at ${perRefill} (one token back ${showMs(refillMs)} after it was taken); without one: REFUSED rate_limited, the connection open`;
  const isAnswer = (f: ReceivedFrame) => f.type === bucket.taken || f.type === REFUSED || f.type === ERROR;
  const show = (f: ReceivedFrame) => `${TYPE_NAMES[f.type] ?? `0x${f.type.toString(16)}`} ${f.payload.toString().slice(0, 200)}`;
  return {
    name: `${request === 'text' ? 'text' : 'offers'}: the ${kind} bucket refills ${perRefill}: after ${burst} ${kind}s at once the next is refused, so is one sent ${showMs(earlyAfterMs)} after them, and one ${showMs(window.latestMs)} after the bucket emptied is taken`,
    run: (context) =>
      withMembers(context, async (party) => {
        const ada = await join(party, 'Ada', `${request}-refill`, wire.protocol);
        await join(party, 'Bob', `${request}-refill`, wire.protocol); // a receiver: an OFFER needs one
        let next = 0;
        /** Sends `count` requests at once and returns their answers, in order. */
        const send = async (count: number): Promise<ReceivedFrame[]> => {
          let since = ada.user.mark();
          ada.user.send(Buffer.concat(Array.from({ length: count }, () => bucket.requestBytes(next++))));
          const answers: ReceivedFrame[] = [];
          for (let i = 0; i < count; i++) {
            const answer = await ada.user.waitForFrame(`the answer to ${kind} ${i + 1} of ${count} sent at once`, isAnswer, { since, timeoutMs: DEADLINE_MS, hint });
            since = ada.user.frames.indexOf(answer) + 1;
            answers.push(answer);
          }
          return answers;
        };
        const limited = (f: ReceivedFrame) => f.type === REFUSED && jsonOf(f).request === request && jsonOf(f).code === 'rate_limited';
        const burstSentAt = performance.now();
        const drained = await send(burst + 1);
        expect(drained.slice(0, burst).every((f) => f.type === bucket.taken) && limited(drained[burst]!), `the ${kind} limit is not ${burst} at once`, {
          expected: `${burst} ${TYPE_NAMES[bucket.taken]}, then REFUSED {"request": "${request}", "code": "rate_limited"} for ${kind} ${burst + 1}`,
          actual: drained.map(show).join(', '),
          hint,
        });
        const emptiedBy = drained[burst]!.at;

        // Too fast: a request sent before the earliest accepted refill finds the bucket still empty.
        await sleep(burstSentAt + earlyAfterMs - performance.now());
        const earlySentAfter = performance.now() - burstSentAt;
        const [early] = await send(1);
        if (!limited(early!) && earlySentAfter >= window.earliestMs) throw new CheckSkipped(`could not judge the ${kind} refill: the grader's own timer ran ${showMs(earlySentAfter - earlyAfterMs)} late, so the ${kind} meant to go ${showMs(earlyAfterMs)} after the burst went out after ${showMs(earlySentAfter)}, past the earliest accepted refill (${showMs(window.earliestMs)}), and was taken; run the check again on a quieter machine`);
        expect(limited(early!), `the ${kind} refill is not ${perRefill}: a token came back within ${showMs(early!.at - burstSentAt)}`, {
          expected: `REFUSED rate_limited for a ${kind} sent ${showMs(earlyAfterMs)} after the ${burst} that emptied the bucket (a token comes back after ${showMs(refillMs)}, accepted ${describeWindow(window)})`,
          actual: show(early!),
          hint,
        });

        // Too slow (or never): at the latest accepted refill, a token is back.
        await sleep(emptiedBy + window.latestMs - performance.now());
        const [late] = await send(1);
        expect(late!.type === bucket.taken, `the ${kind} refill is not ${perRefill}: no token ${showMs(late!.at - emptiedBy)} after the bucket emptied`, {
          expected: `${TYPE_NAMES[bucket.taken]}: a token is back ${showMs(refillMs)} after it was taken (accepted ${describeWindow(window)})`,
          actual: show(late!),
          hint,
        });
      }, wire.typeNames),
  };
}

export function chatFilesServerChecksFor(wire: StageWire): Check[] {
  const protocol = wire.protocol ?? PROTOCOL;
  const joinRoom = (party: Party, name: string, room: string) => join(party, name, room, protocol);
  const withStageMembers = (context: Parameters<Check['run']>[0], body: (party: Party, cleanups: (() => void)[]) => Promise<void>) => withMembers(context, body, wire.typeNames);
  return [
    {
      name: 'text: a TEXT reaches every member of the room and the sender, stamped by the server with the sender\'s id and name (a "from" in it is ignored), never another room; "to" reaches only the two',
      run: (context) =>
        withStageMembers(context, async (party) => {
          const ada = await joinRoom(party, 'Ada', 'text-a');
          const bob = await joinRoom(party, 'Bob', 'text-a');
          const dan = await joinRoom(party, 'Dan', 'text-a');
          const cat = await joinRoom(party, 'Cat', 'text-b');
          const marks = [ada, bob, dan, cat].map((m) => m.user.mark());
          ada.user.send(jsonFrameBytes(TEXT, { text: 'hi all', from: { id: cat.id, name: 'Cat' } }));
          const stamped = { from: { id: ada.id, name: 'Ada' }, text: 'hi all' };
          for (const [i, member] of [ada, bob, dan].entries()) {
            const got = await member.user.waitForFrame(`TEXT from Ada at ${member.name}`, (f) => f.type === TEXT, { since: marks[i], timeoutMs: DEADLINE_MS, hint: 'send TEXT {"from": {"id", "name"}, "text"} to every member of the sender\'s room, the sender included' });
            expect(JSON.stringify(jsonOf(got)) === JSON.stringify(stamped), `${member.name} got the line with the wrong stamp`, {
              expected: `TEXT ${JSON.stringify(stamped)}`,
              actual: `TEXT ${got.payload.toString()}`,
              hint: 'the server stamps "from" with the connection\'s own id and name; a "from" in the client\'s TEXT is ignored',
            });
          }
          await barrier(cat.user);
          expect(cat.user.framesOfType(TEXT, marks[3]).length === 0, 'a TEXT reached another room', { expected: 'nothing for Cat (room text-b)', actual: cat.user.describeFrames(marks[3]), hint: 'TEXT goes to the sender\'s room only' });
          const since = [ada, bob, dan].map((m) => m.user.mark());
          ada.user.send(jsonFrameBytes(TEXT, { text: 'psst', to: bob.id }));
          const privateLine = await bob.user.waitForFrame('the private TEXT at Bob', (f) => f.type === TEXT, { since: since[1], timeoutMs: DEADLINE_MS, hint: 'TEXT with "to": id goes to that member and the sender, with "to": {"id", "name"}' });
          const to = jsonOf(privateLine).to as { id?: number } | undefined;
          expect(to?.id === bob.id, 'a private TEXT lacks "to"', { expected: `"to": {"id": ${bob.id}, "name": "Bob"}`, actual: privateLine.payload.toString(), hint: 'a private line names its receiver in "to"' });
          await ada.user.waitForFrame('the echo of the private TEXT at Ada', (f) => f.type === TEXT, { since: since[0], timeoutMs: DEADLINE_MS });
          await barrier(dan.user);
          expect(dan.user.framesOfType(TEXT, since[2]).length === 0, 'a private TEXT reached a third member', { expected: 'nothing for Dan', actual: dan.user.describeFrames(since[2]), hint: '"to" means that member and the sender only' });
          const refusedSince = ada.user.mark();
          ada.user.send(jsonFrameBytes(TEXT, { text: 'over there?', to: cat.id }));
          await expectRefused(ada, 'text', 'no_such_member', 'a TEXT "to" a member of another room', refusedSince, 'you cannot write to people you cannot see');
        }),
    },
    {
      name: 'text: refusals keep the connection: 1001 characters, ESC, U+202E and a blank line get REFUSED bad_text (1000 characters pass)',
      run: (context) =>
        withStageMembers(context, async (party) => {
          const ada = await joinRoom(party, 'Ada', 'text-rule');
          const bob = await joinRoom(party, 'Bob', 'text-rule');
          for (const [text, what] of [
            ['x'.repeat(MAX_TEXT_CHARS + 1), '1001 characters'],
            ['clear \x1b[2J', 'an ESC'],
            ['abc\u202Etxt.exe', 'U+202E'],
            ['   ', 'a blank line'],
          ] as const) {
            const since = ada.user.mark();
            ada.user.send(jsonFrameBytes(TEXT, { text }));
            await expectRefused(ada, 'text', 'bad_text', `a TEXT of ${what}`, since, 'a text is 1-1000 code points, not blank, with no control, line-separator or bidi-override characters; refused with the connection open');
          }
          const since = bob.user.mark();
          ada.user.send(jsonFrameBytes(TEXT, { text: 'é'.repeat(MAX_TEXT_CHARS) }));
          const got = await bob.user.waitForFrame('the 1000-character TEXT at Bob', (f) => f.type === TEXT, { since, timeoutMs: DEADLINE_MS, hint: '1000 code points are allowed' });
          expect(jsonOf(got).text === 'é'.repeat(MAX_TEXT_CHARS), 'the 1000-character line changed on the way', { expected: '1000 × é', actual: String(jsonOf(got).text).slice(0, 40), hint: 'relay the text unchanged' });
          await barrier(bob.user);
          expect(bob.user.framesOfType(TEXT, since).length === 1, 'a refused line reached the room', { expected: 'only the 1000-character line', actual: bob.user.describeFrames(since), hint: 'REFUSED lines go to nobody' });
        }),
    },
    {
      name: `text: a flood of 30 TEXT at once: exactly ${TEXT_BURST} reach the room, the rest get REFUSED rate_limited, and the ${MAX_TEXTS_REFUSED}th refusal in a row is ERROR rate_limited; the room is told LEFT error`,
      run: (context) =>
        withStageMembers(context, async (party) => {
          const ada = await joinRoom(party, 'Ada', 'text-flood');
          const bob = await joinRoom(party, 'Bob', 'text-flood');
          const since = bob.user.mark();
          const adaSince = ada.user.mark();
          ada.user.send(Buffer.concat(Array.from({ length: 30 }, (_, i) => jsonFrameBytes(TEXT, { text: `line ${i}` }))));
          await expectError(ada, 'rate_limited', `after ${TEXT_BURST} lines, REFUSED rate_limited; the ${MAX_TEXTS_REFUSED}th such refusal in a row is ERROR rate_limited and the connection closes`);
          const left = await bob.user.waitForFrame('LEFT Ada "error"', (f) => f.type === LEFT && jsonOf(f).name === 'Ada', { since, timeoutMs: DEADLINE_MS });
          expect(jsonOf(left).reason === 'error', 'the room was told the wrong reason Ada left', { expected: 'LEFT {"id", "name": "Ada", "reason": "error"}', actual: `LEFT ${left.payload.toString()}`, hint: 'a user closed for an ERROR (rate_limited here) is announced LEFT "error"' });
          const delivered = bob.user.framesOfType(TEXT, since).length;
          const refused = ada.user.framesOfType(REFUSED, adaSince).filter((f) => jsonOf(f).code === 'rate_limited').length;
          expect(delivered === TEXT_BURST && refused === MAX_TEXTS_REFUSED - 1, 'the text rate limit let the wrong number through', {
            expected: `${TEXT_BURST} TEXT at Bob, ${MAX_TEXTS_REFUSED - 1} REFUSED rate_limited at Ada, then ERROR`,
            actual: `${delivered} TEXT at Bob, ${refused} REFUSED rate_limited at Ada`,
            hint: 'a bucket of 10 TEXT per user, refilled at 1 per second (issue 18)',
          });
        }),
    },
    {
      name: `offers: a flood of 30 OFFERs of empty files at once: exactly ${OFFER_BURST} are OFFERED to the room, the rest get REFUSED rate_limited, and the ${MAX_OFFERS_REFUSED}th refusal in a row is ERROR rate_limited; the room is told LEFT error`,
      run: (context) =>
        withStageMembers(context, async (party) => {
          // Empty files end complete at once, so the 2-transfers-per-sender rule never stands in
          // front of the offer bucket: what limits these offers is the bucket alone (issue 18).
          const ada = await joinRoom(party, 'Ada', 'offer-flood');
          const bob = await joinRoom(party, 'Bob', 'offer-flood');
          const since = bob.user.mark();
          const adaSince = ada.user.mark();
          const empty = createHash('sha256').update(Buffer.alloc(0)).digest('hex');
          ada.user.send(Buffer.concat(Array.from({ length: 30 }, (_, i) => jsonFrameBytes(OFFER, { name: `empty-${i}.txt`, size: 0, sha256: empty }))));
          await expectError(ada, 'rate_limited', `after ${OFFER_BURST} offers, REFUSED rate_limited; the ${MAX_OFFERS_REFUSED}th such refusal in a row is ERROR rate_limited and the connection closes`);
          const left = await bob.user.waitForFrame('LEFT Ada "error"', (f) => f.type === LEFT && jsonOf(f).name === 'Ada', { since, timeoutMs: DEADLINE_MS });
          expect(jsonOf(left).reason === 'error', 'the room was told the wrong reason Ada left', { expected: 'LEFT {"id", "name": "Ada", "reason": "error"}', actual: `LEFT ${left.payload.toString()}`, hint: 'a user closed for an ERROR (rate_limited here) is announced LEFT "error"' });
          const offered = bob.user.framesOfType(OFFER, since).length;
          const refused = ada.user.framesOfType(REFUSED, adaSince).filter((f) => jsonOf(f).code === 'rate_limited').length;
          expect(offered === OFFER_BURST && refused === MAX_OFFERS_REFUSED - 1, 'the offer rate limit let the wrong number through', {
            expected: `${OFFER_BURST} OFFER at Bob, ${MAX_OFFERS_REFUSED - 1} REFUSED rate_limited at Ada, then ERROR`,
            actual: `${offered} OFFER at Bob, ${refused} REFUSED rate_limited at Ada`,
            hint: 'a bucket of 5 OFFERs per user, refilled at 1 per 5 s (issue 18); an empty file ends at once, so it does not count against the 2 running transfers',
          });
        }),
    },
    bucketRefillCheck(wire, { request: 'text', kind: 'TEXT', burst: TEXT_BURST, refillMs: TEXT_REFILL_MS, taken: TEXT, requestBytes: (i) => jsonFrameBytes(TEXT, { text: `line ${i}` }) }),
    // Empty files end complete at once, so the 2-transfers-per-sender rule never stands in front of the bucket.
    bucketRefillCheck(wire, { request: 'offer', kind: 'OFFER', burst: OFFER_BURST, refillMs: OFFER_REFILL_MS, taken: OFFERED, requestBytes: (i) => jsonFrameBytes(OFFER, { name: `empty-${i}.txt`, size: 0, sha256: sha256(Buffer.alloc(0)) }) }),
    {
      name: 'offers: bad_file_name (a/b, .., 256 bytes, ESC), file_too_large (64 MiB + 1; 64 MiB is OFFERED), no_receivers, too_many_transfers; a later joiner is not a receiver; a size-0 file ends complete at once; CANCEL by the sender ends it for everyone',
      run: (context) =>
        withStageMembers(context, async (party) => {
          const ada = await joinRoom(party, 'Ada', 'offers');
          const hint = 'OFFER checks in order: fields (ERROR), the file name rule, size <= 64 MiB, receivers, 2 transfers per sender, the offer bucket; each refusal is REFUSED with the connection open';
          const refusedOffer = async (fields: Record<string, unknown>, code: string, what: string) => {
            const since = ada.user.mark();
            ada.user.send(jsonFrameBytes(OFFER, { name: 'a.bin', size: 10, sha256: 'ab'.repeat(32), ...fields }));
            await expectRefused(ada, 'offer', code, what, since, hint);
          };
          await refusedOffer({}, 'no_receivers', 'an OFFER in a room with nobody else');
          const bob = await joinRoom(party, 'Bob', 'offers');
          await refusedOffer({ name: 'a/b' }, 'bad_file_name', 'an OFFER of "a/b"');
          await refusedOffer({ name: '..' }, 'bad_file_name', 'an OFFER of ".."');
          await refusedOffer({ name: 'x'.repeat(256) }, 'bad_file_name', 'an OFFER of a 256-byte name');
          await refusedOffer({ name: 'a\x1b[2J.txt' }, 'bad_file_name', 'an OFFER of a name with ESC');
          await refusedOffer({ size: 64 * MB + 1 }, 'file_too_large', 'an OFFER of 64 MiB + 1 bytes');
          const empty = Buffer.alloc(0);
          const zero = await offer(ada, 'empty.txt', empty);
          await bob.user.waitForFrame('TRANSFER_END complete for the empty file', isEnd(zero, 'complete'), { timeoutMs: DEADLINE_MS, hint: 'a file of size 0 has no CHUNK: TRANSFER_END complete right after the OFFERs' });
          await ada.user.waitForFrame('TRANSFER_END complete to the sender of the empty file', isEnd(zero, 'complete'), { timeoutMs: DEADLINE_MS });
          const big = await offer(ada, 'big.bin', Buffer.alloc(0), { size: 64 * MB, sha256: 'cd'.repeat(32) });
          const second = await offer(ada, 'two.bin', Buffer.alloc(0), { size: 100, sha256: 'cd'.repeat(32) });
          expect(second !== big, 'two transfers got the same id', { expected: 'distinct transfer ids', actual: `${big} and ${second}`, hint: 'ids are u16, increasing, skipping ids in use' });
          await refusedOffer({}, 'too_many_transfers', 'a third OFFER while two are running');
          const cat = await joinRoom(party, 'Cat', 'offers');
          const catSince = 0; // all Cat got since it connected: an OFFER sent with its welcome counts too
          const bobSince = bob.user.mark();
          ada.user.send(jsonFrameBytes(CANCEL, { transfer: big }));
          const cancelled = await bob.user.waitForFrame('TRANSFER_END cancelled at Bob', isEnd(big, 'cancelled'), { since: bobSince, timeoutMs: DEADLINE_MS, hint: 'CANCEL by the sender: TRANSFER_END cancelled, "by" the sender, to everyone in the transfer' });
          expect((jsonOf(cancelled).by as { id?: number } | undefined)?.id === ada.id, 'TRANSFER_END cancelled does not say who cancelled', { expected: `"by": {"id": ${ada.id}, "name": "Ada"}`, actual: cancelled.payload.toString(), hint: 'say who cancelled in "by"' });
          await ada.user.waitForFrame('TRANSFER_END cancelled at Ada', isEnd(big, 'cancelled'), { timeoutMs: DEADLINE_MS });
          await barrier(cat.user);
          const catGot = cat.user.frames.slice(catSince).filter((f) => f.type === OFFER || f.type === TRANSFER_END || f.type === CHUNK);
          expect(catGot.length === 0, 'a member who joined after the offer was told of the transfer', { expected: 'nothing about transfers for Cat', actual: cat.user.describeFrames(catSince), hint: 'receivers are the room\'s members at the time of the OFFER' });
        }),
    },
    {
      name: `largest TEXT, OFFER and CANCEL: a TEXT of exactly 8 KiB (${MAX_TEXT_PAYLOAD} bytes) is delivered, an OFFER of exactly 2 KiB (${MAX_OFFER_PAYLOAD} bytes) and one of a ${MAX_FILE_NAME_BYTES}-byte file name are OFFERED, a CANCEL of exactly 1 KiB (${MAX_CANCEL_PAYLOAD} bytes) ends its transfer`,
      run: (context) =>
        withStageMembers(context, async (party) => {
          const ada = await joinRoom(party, 'Ada', 'largest');
          const bob = await joinRoom(party, 'Bob', 'largest');
          const bobSince = bob.user.mark();
          await expectTaken(ada, paddedJsonFrameBytes(TEXT, { text: 'the longest TEXT' }, MAX_TEXT_PAYLOAD), TEXT, 'the TEXT limit is not 8 KiB', `a TEXT of exactly ${MAX_TEXT_PAYLOAD} bytes`);
          await bob.user.waitForFrame(`the ${MAX_TEXT_PAYLOAD}-byte TEXT at Bob`, (f) => f.type === TEXT, { since: bobSince, timeoutMs: DEADLINE_MS, hint: 'a TEXT goes to every member of the room' });
          const empty = sha256(Buffer.alloc(0));
          await expectTaken(ada, paddedJsonFrameBytes(OFFER, { name: 'largest.txt', size: 0, sha256: empty }, MAX_OFFER_PAYLOAD), OFFERED, 'the OFFER limit is not 2 KiB', `an OFFER of exactly ${MAX_OFFER_PAYLOAD} bytes`);
          const longName = 'n'.repeat(MAX_FILE_NAME_BYTES - '.txt'.length) + '.txt';
          const named = await expectTaken(ada, jsonFrameBytes(OFFER, { name: longName, size: 0, sha256: empty }), OFFERED, `the file name limit is not ${MAX_FILE_NAME_BYTES} bytes`, `an OFFER of a ${MAX_FILE_NAME_BYTES}-byte name`);
          expect(jsonOf(named).name === longName, `the ${MAX_FILE_NAME_BYTES}-byte file name changed on the way`, { expected: `OFFERED {"name": "${longName.slice(0, 20)}..." (${MAX_FILE_NAME_BYTES} bytes), ...}`, actual: `OFFERED ${named.payload.toString().slice(0, 120)}`, hint: 'a file name of 1-255 bytes that passes the rule is relayed as offered' });
          const running = await offer(ada, 'to-cancel.bin', Buffer.alloc(0), { size: 100, sha256: 'cd'.repeat(32) });
          const end = await expectTaken(ada, paddedJsonFrameBytes(CANCEL, { transfer: running }, MAX_CANCEL_PAYLOAD), TRANSFER_END, 'the CANCEL limit is not 1 KiB', `a CANCEL of exactly ${MAX_CANCEL_PAYLOAD} bytes`);
          expect(isEnd(running, 'cancelled')(end), `a CANCEL of exactly ${MAX_CANCEL_PAYLOAD} bytes did not end its transfer as cancelled`, { expected: `TRANSFER_END {"transfer": ${running}, "result": "cancelled", ...}`, actual: `TRANSFER_END ${end.payload.toString().slice(0, 200)}`, hint: 'CANCEL by the sender: TRANSFER_END cancelled to everyone in the transfer' });
        }),
    },
    {
      name: 'relay: a random 2 MiB file sent within CREDIT arrives byte for byte (SHA-256 equal) at two ACKing receivers, TRANSFER_END complete to each and complete "delivered": 2 to the sender',
      run: (context) =>
        withStageMembers(context, async (party, cleanups) => {
          const ada = await joinRoom(party, 'Ada', 'relay');
          const bob = await joinRoom(party, 'Bob', 'relay');
          const cat = await joinRoom(party, 'Cat', 'relay');
          const file = randomFile(7, 2 * MB + 123);
          const transfer = await offer(ada, 'report.bin', file);
          const receivers = [bob, cat].map((m) => new AckingReceiver(m, transfer));
          cleanups.push(() => receivers.forEach((r) => r.stop()));
          await sendWithinCredit(ada, transfer, file);
          for (const receiver of receivers) {
            await receiver.member.user.waitForFrame('TRANSFER_END complete', isEnd(transfer, 'complete'), { timeoutMs: 30_000, hint: 'after the last chunk (hash checked), TRANSFER_END {"result": "complete"} to each receiver' });
            const got = receiver.bytes();
            expect(sha256(got) === sha256(file), `${receiver.member.name} got a different file`, { expected: `${file.length} bytes, SHA-256 ${sha256(file)}`, actual: `${got.length} bytes, SHA-256 ${sha256(got)}`, hint: 'relay each CHUNK payload unchanged, in order, to every receiver' });
          }
          const end = await ada.user.waitForFrame('TRANSFER_END complete to the sender', isEnd(transfer), { timeoutMs: 10_000, hint: 'once every receiver ACKed all bytes: TRANSFER_END complete with "delivered" and "dropped"' });
          expect(jsonOf(end).result === 'complete' && jsonOf(end).delivered === 2, 'the sender was not told of a complete delivery', { expected: '{"result": "complete", "delivered": 2, "dropped": 0}', actual: end.payload.toString(), hint: 'count receivers that ACKed every byte' });
          const credits = ada.user.framesOfType(CREDIT).map((f) => f.payload.readUInt32BE(2));
          expect(credits[0] === TRANSFER_BUFFER, 'the first CREDIT is not 256 KiB', { expected: `until ${TRANSFER_BUFFER}`, actual: `CREDITs: ${credits.slice(0, 5).join(', ')}`, hint: 'the first CREDIT grants the transfer buffer, 256 KiB' });
        }),
    },
    {
      name: 'integrity: a sender whose bytes do not match the offered SHA-256 is refused at the end: the receivers never get the last chunk, everyone gets TRANSFER_END hash_mismatch, the sender stays connected',
      run: (context) =>
        withStageMembers(context, async (party, cleanups) => {
          const ada = await joinRoom(party, 'Ada', 'lies');
          const bob = await joinRoom(party, 'Bob', 'lies');
          const cat = await joinRoom(party, 'Cat', 'lies');
          const file = randomFile(8, 200_000);
          const lie = Buffer.from(file);
          lie[lie.length - 1]! ^= 0xff; // the last byte differs from the offered hash
          const transfer = await offer(ada, 'lie.bin', file);
          const receivers = [bob, cat].map((m) => new AckingReceiver(m, transfer));
          cleanups.push(() => receivers.forEach((r) => r.stop()));
          await sendWithinCredit(ada, transfer, lie);
          for (const member of [ada, bob, cat]) {
            await member.user.waitForFrame('TRANSFER_END hash_mismatch', isEnd(transfer, 'hash_mismatch'), { timeoutMs: DEADLINE_MS * 2, hint: 'hash the bytes as they pass; hold back the last chunk; on a mismatch TRANSFER_END hash_mismatch to everyone in the transfer' });
          }
          for (const member of [bob, cat]) {
            const got = chunkDataSince(member.user, transfer);
            expect(got < file.length, `${member.name} got every byte of a file whose hash did not match`, { expected: `fewer than ${file.length} bytes (the last chunk withheld)`, actual: `${got} bytes`, hint: 'check the SHA-256 before forwarding the last chunk' });
          }
          await barrier(ada.user); // still connected
        }),
    },
    {
      name: 'integrity: a CHUNK past the offered size, out of order, before any offer, or for a running transfer that is not yours gets ERROR bad_chunk; the receivers are told sender_left',
      run: (context) =>
        withStageMembers(context, async (party) => {
          const ada = await joinRoom(party, 'Ada', 'chunks');
          const bob = await joinRoom(party, 'Bob', 'chunks');
          const eve = await joinRoom(party, 'Eve', 'chunks');
          const fay = await joinRoom(party, 'Fay', 'chunks-elsewhere');
          eve.user.send(chunkBytes(1, 0, Buffer.from('before any offer')));
          await expectError(eve, 'bad_chunk', 'a CHUNK for a transfer id this connection does not send is ERROR bad_chunk');
          const file = randomFile(9, 40_000);
          const transfer = await offer(ada, 'a.bin', file);
          await ada.user.waitForFrame('CREDIT', (f) => f.type === CREDIT, { timeoutMs: DEADLINE_MS });
          // Someone else writes into Ada's running transfer: refused, and Ada's first CHUNK below is still the one expected.
          const intruder = chunkBytes(transfer, 0, Buffer.alloc(10_000));
          fay.user.send(intruder);
          await expectError(fay, 'bad_chunk', `a CHUNK of a running transfer (${transfer}, Ada's) from a connection that does not send it is ERROR bad_chunk`, 0, intruder);
          ada.user.send(chunkBytes(transfer, 0, file.subarray(0, 10_000)));
          ada.user.send(chunkBytes(transfer, 20_000, file.subarray(20_000, 30_000))); // skips 10 000 bytes
          await expectError(ada, 'bad_chunk', 'each CHUNK\'s offset must equal the bytes received so far');
          await bob.user.waitForFrame('TRANSFER_END sender_left', isEnd(transfer, 'sender_left'), { timeoutMs: DEADLINE_MS, hint: 'a sender that is disconnected ends its transfers: sender_left to every receiver' });
          const carol = await joinRoom(party, 'Carol', 'chunks');
          const small = randomFile(10, 100);
          const second = await offer(bob, 'b.bin', small);
          await bob.user.waitForFrame('CREDIT', (f) => f.type === CREDIT && f.payload.readUInt16BE(0) === second, { timeoutMs: DEADLINE_MS });
          bob.user.send(chunkBytes(second, 0, Buffer.concat([small, Buffer.from('more than offered')])));
          await expectError(bob, 'bad_chunk', 'a CHUNK may not end past the offered size (a sender lying about the size)');
          await carol.user.waitForFrame('TRANSFER_END sender_left', isEnd(second, 'sender_left'), { timeoutMs: DEADLINE_MS });
        }),
    },
    {
      name: 'flow: a receiver that never reads gets at most 64 KiB past its last ACK, is dropped with TRANSFER_END too_slow while the other receiver completes, and CREDIT never passes the slowest ACK + 256 KiB (a 24 MiB file)',
      timeLimitMs: 90_000,
      run: (context) =>
        withStageMembers(context, async (party, cleanups) => {
          const ada = await joinRoom(party, 'Ada', 'slow');
          const bob = await joinRoom(party, 'Bob', 'slow');
          const cat = await joinRoom(party, 'Cat', 'slow');
          cat.user.pauseReading();
          const file = randomFile(11, 24 * MB);
          const transfer = await offer(ada, 'big.bin', file);
          const bobReceiver = new AckingReceiver(bob, transfer);
          cleanups.push(() => bobReceiver.stop());
          await sendWithinCredit(ada, transfer, file, { timeoutMs: 40_000 });
          // Credit: while Cat (ACK 0) is in the transfer, no CREDIT may pass 0 + 256 KiB; Cat is dropped
          // no sooner than the too_slow tolerance (7.9 s) after the buffer fills.
          const credits = ada.user.framesOfType(CREDIT).filter((f) => f.payload.readUInt16BE(0) === transfer);
          const firstPast = credits.find((f) => f.payload.readUInt32BE(2) > TRANSFER_BUFFER);
          const heldFor = firstPast === undefined ? Infinity : firstPast.at - credits[0]!.at;
          expect(credits[0]?.payload.readUInt32BE(2) === TRANSFER_BUFFER && heldFor >= 7_900, 'a CREDIT passed the slowest receiver\'s ACK + 256 KiB', {
            expected: `CREDIT until ${TRANSFER_BUFFER} at first, and no more until the never-reader (ACK 0) is dropped, at least 7.9 s later`,
            actual: `first CREDIT until ${credits[0]?.payload.readUInt32BE(2)}; the first CREDIT past ${TRANSFER_BUFFER} came ${heldFor.toFixed(0)} ms after it`,
            hint: 'grant the sender CREDIT only up to the slowest receiver\'s ACK + 256 KiB: the server then never holds more than 256 KiB of a transfer',
          });
          await bob.user.waitForFrame('TRANSFER_END complete at Bob', isEnd(transfer, 'complete'), { timeoutMs: 30_000, hint: 'the receiver that reads completes once the one that never reads is dropped' });
          expect(sha256(bobReceiver.bytes()) === sha256(file), 'Bob got a different file', { expected: sha256(file), actual: sha256(bobReceiver.bytes()), hint: 'relay the bytes unchanged' });
          const end = await ada.user.waitForFrame('TRANSFER_END complete to the sender', isEnd(transfer), { timeoutMs: 10_000 });
          expect(jsonOf(end).result === 'complete' && jsonOf(end).delivered === 1 && jsonOf(end).dropped === 1, 'the sender was told the wrong outcome', { expected: '{"result": "complete", "delivered": 1, "dropped": 1}', actual: end.payload.toString(), hint: 'the never-reader counts as dropped' });
          cat.user.resumeReading();
          await cat.user.waitForFrame('TRANSFER_END too_slow at Cat', isEnd(transfer, 'too_slow'), { timeoutMs: 10_000, hint: 'a receiver that held the transfer back 10 s and acknowledged under 256 KiB gets TRANSFER_END too_slow' });
          const catBytes = chunkDataSince(cat.user, transfer);
          expect(catBytes <= RECEIVE_WINDOW, 'a receiver that never ACKed was sent more than its window', { expected: `at most ${RECEIVE_WINDOW} bytes of file data (its ACK, 0, + 64 KiB)`, actual: `${catBytes} bytes`, hint: 'send a receiver a transfer\'s bytes only below its last ACK + 64 KiB' });
        }),
    },
    {
      name: `too_slow: a receiver that reads but never ACKs is dropped with TRANSFER_END too_slow ${TOO_SLOW_MS / 1000} s after the sender used up its ${TRANSFER_BUFFER / 1024} KiB credit (accepted: ${describeWindow(timingWindow(TOO_SLOW_MS, { pipelineMs: TRANSFER_RULE_PIPELINE_MS }))})`,
      run: (context) =>
        withStageMembers(context, async (party) => {
          const window = timingWindow(TOO_SLOW_MS, { pipelineMs: TRANSFER_RULE_PIPELINE_MS });
          const hint = `a receiver at the lowest ACK that acknowledged under ${TRANSFER_BUFFER / 1024} KiB over ${TOO_SLOW_MS / 1000} s of the transfer being held back (the sender has no credit left) gets TRANSFER_END too_slow`;
          const ada = await joinRoom(party, 'Ada', 'too-slow');
          // Cat reads every frame but ACKs none, so the TRANSFER_END is timed as it arrives.
          const cat = await joinRoom(party, 'Cat', 'too-slow');
          const file = randomFile(23, 2 * TRANSFER_BUFFER);
          const transfer = await offer(ada, 'held.bin', file);
          await withStallWatch(async (watch) => {
            await sendWithinCredit(ada, transfer, file, { stopAt: TRANSFER_BUFFER });
            // The first CREDIT used up: from here the transfer is held back, by Cat alone (the server's clock starts a little later).
            const heldFrom = performance.now();
            const timed = 'TRANSFER_END too_slow at the receiver that never ACKed';
            let end: ReceivedFrame;
            try {
              end = await expectWithinWindow(
                cat.user.waitForFrame(`${timed} (accepted: ${describeWindow(window)} after the sender's last CHUNK within its credit)`, isEnd(transfer), { timeoutMs: window.latestMs - (performance.now() - heldFrom), hint }),
                window,
                'the too_slow hold',
                timed,
              );
            } catch (error) {
              watch.judge(() => {
                throw error;
              }, TRANSFER_RULE_STALL_ALLOWANCE_MS);
              throw error;
            }
            expect(jsonOf(end).result === 'too_slow', 'the held-back transfer ended otherwise at the receiver that never ACKed', { expected: `TRANSFER_END {"transfer": ${transfer}, "result": "too_slow", ...}`, actual: end.payload.toString().slice(0, 200), hint });
            watch.judge(() => expectDuration(end.at - heldFrom, window, 'the too_slow hold', `${timed} (timed from the sender's last CHUNK within its ${TRANSFER_BUFFER / 1024} KiB credit)`, hint), TRANSFER_RULE_STALL_ALLOWANCE_MS);
          });
        }),
    },
    {
      name: `memory: Ada and Bob swap ${WARM_UP_FILE_BYTES / MB} MiB files ${WARM_UP_ROUNDS} times, then ${LARGEST_FILE_BYTES / MB} MiB files (the largest allowed), which arrive intact while the server's RSS grows under ${MEMORY_GROWTH_BOUND / MB} MiB above its highest during the small ones: a server that keeps whole files does not fit`,
      timeLimitMs: 120_000,
      run: (context) =>
        withStageMembers(context, async (party, cleanups) => {
          const server = findServerProcess(context.server.port);
          if (server === undefined) throw new CheckSkipped(processNotFound('memory'));
          // Files first: making 160 MiB of random bytes takes the grader a while, and must not sit between the phases.
          const warmUps = Array.from({ length: WARM_UP_ROUNDS }, (_, round) => [randomFile(20 + 2 * round, WARM_UP_FILE_BYTES), randomFile(21 + 2 * round, WARM_UP_FILE_BYTES)]);
          const largest = [randomFile(30, LARGEST_FILE_BYTES), randomFile(31, LARGEST_FILE_BYTES)];
          // Fresh members: each one's offer bucket (5) holds all its offers.
          const ada = await joinRoom(party, 'Ada', 'memory');
          const bob = await joinRoom(party, 'Bob', 'memory');
          /** `from` sends `file` to `to`, who ACKs every chunk; resolves with what `to` received once both heard TRANSFER_END. */
          const relay = async (from: Member, to: Member, name: string, file: Buffer): Promise<Buffer> => {
            const transfer = await offer(from, name, file);
            const receiver = new AckingReceiver(to, transfer);
            cleanups.push(() => receiver.stop());
            await sendWithinCredit(from, transfer, file, { timeoutMs: 40_000 });
            await to.user.waitForFrame(`TRANSFER_END complete for ${name} at ${to.name}`, isEnd(transfer, 'complete'), { timeoutMs: 30_000, hint: 'a receiver that ACKs every chunk completes' });
            // The sender's end too, before its next OFFER (2 transfers per sender at once).
            await from.user.waitForFrame(`TRANSFER_END for ${name} to ${from.name}`, isEnd(transfer), { timeoutMs: 10_000 });
            receiver.stop();
            return receiver.bytes();
          };
          const swap = (ofAda: Buffer, ofBob: Buffer, name: string) => Promise.all([relay(ada, bob, `ada-${name}`, ofAda), relay(bob, ada, `bob-${name}`, ofBob)]);
          let highest = server.rss();
          const sampler = setInterval(() => {
            try {
              highest = Math.max(highest, server.rss());
            } catch {
              /* gone: the check fails elsewhere */
            }
          }, RSS_SAMPLE_MS);
          cleanups.push(() => clearInterval(sampler));
          for (const [round, [ofAda, ofBob]] of warmUps.entries()) await swap(ofAda!, ofBob!, `small-${round + 1}.bin`);
          const warmUpHighest = highest;
          const received = await swap(largest[0]!, largest[1]!, 'large.bin');
          clearInterval(sampler);
          for (const [index, file] of largest.entries()) {
            const [sender, receiver] = index === 0 ? ['Ada', 'Bob'] : ['Bob', 'Ada'];
            expect(sha256(received[index]!) === sha256(file), `${receiver} got a different file from ${sender}`, { expected: sha256(file), actual: sha256(received[index]!), hint: 'relay the bytes unchanged' });
          }
          const growth = highest - warmUpHighest;
          expect(growth < MEMORY_GROWTH_BOUND, 'the server\'s memory grew with the files', {
            expected: `RSS at most ${MEMORY_GROWTH_BOUND / MB} MiB above ${(warmUpHighest / MB).toFixed(1)} MiB (its highest while ${WARM_UP_FILE_BYTES / MB} MiB files were swapped) while two ${LARGEST_FILE_BYTES / MB} MiB files are`,
            actual: `${(highest / MB).toFixed(1)} MiB: ${(growth / MB).toFixed(1)} MiB more`,
            hint: 'hold at most a transfer\'s 256 KiB buffer: CREDIT up to the slowest receiver\'s ACK + 256 KiB, and let each chunk go once every receiver has it',
          });
        }),
    },
    {
      name: 'interleaving: during a 16 MiB transfer to R, a TEXT and a JOINED reach R, which has stopped reading for a moment, with at most 64 KiB + one chunk of file data ahead of them',
      timeLimitMs: 90_000,
      run: (context) =>
        withStageMembers(context, async (party, cleanups) => {
          const ada = await joinRoom(party, 'Ada', 'mux');
          const rob = await joinRoom(party, 'Rob', 'mux');
          const tom = await joinRoom(party, 'Tom', 'mux');
          const file = randomFile(12, 16 * MB);
          const transfer = await offer(ada, 'big.bin', file);
          const receivers = [new AckingReceiver(rob, transfer, 20), new AckingReceiver(tom, transfer)];
          cleanups.push(() => receivers.forEach((r) => r.stop()));
          const sending = inBackground(sendWithinCredit(ada, transfer, file, { timeoutMs: 40_000 }));
          // Rob stops reading while the transfer goes on (a slow link, a busy machine): whatever the
          // server then writes to him waits in the kernel, and a control message written meanwhile
          // waits behind it. Rob has ACKed at most what he read before, so a server that keeps to
          // his 64 KiB window has at most that much (plus the one chunk in its own queue) ahead of
          // the message; one that does not can have the sender's whole 256 KiB credit there.
          const aheadOf = async (what: string, cause: () => Promise<void>, isIt: (f: ReceivedFrame) => boolean): Promise<number> => {
            rob.user.pauseReading();
            const robSince = rob.user.mark();
            await new Promise((resolve) => setTimeout(resolve, 150)); // time for the server to fill what it may send Rob
            await cause();
            await new Promise((resolve) => setTimeout(resolve, 50)); // the message is written behind it
            rob.user.resumeReading();
            const message = await rob.user.waitForFrame(what, isIt, { since: robSince, timeoutMs: 10_000, hint: 'control messages are written at once, never behind more than one chunk' });
            return rob.user.frames.slice(robSince, rob.user.frames.indexOf(message)).filter((f) => f.type === CHUNK).reduce((sum, f) => sum + f.payload.length - 6, 0);
          };
          let worst = 0;
          for (let i = 0; i < 5; i++) {
            await new Promise((resolve) => setTimeout(resolve, 100)); // Rob reads and ACKs again
            const ahead = await aheadOf('Tom\'s TEXT at Rob', async () => {
              const tomSince = tom.user.mark();
              tom.user.send(jsonFrameBytes(TEXT, { text: `line ${i}` }));
              await tom.user.waitForFrame('the echo of Tom\'s TEXT', (f) => f.type === TEXT, { since: tomSince, timeoutMs: 10_000 });
            }, (f) => f.type === TEXT);
            worst = Math.max(worst, ahead);
          }
          await new Promise((resolve) => setTimeout(resolve, 100));
          worst = Math.max(worst, await aheadOf('JOINED Zed at Rob', async () => void (await joinRoom(party, 'Zed', 'mux')), (f) => f.type === JOINED));
          expect(worst <= RECEIVE_WINDOW + CHUNK_DATA, 'a control message waited behind more file data than the window and one chunk', {
            expected: `at most ${RECEIVE_WINDOW + CHUNK_DATA} bytes of CHUNK data ahead of a TEXT or JOINED at Rob, who stopped reading 200 ms around it (his window: ${RECEIVE_WINDOW} bytes past his last ACK)`,
            actual: `${worst} bytes`,
            hint: 'write a CHUNK only when no other chunk waits in the socket\'s queue, and never past the receiver\'s window; control and voice go at once',
          });
          await sending;
        }),
    },
    {
      name: 'room rules: a receiver who moves mid-transfer gets TRANSFER_END moved and no CHUNK of it afterwards; the other receiver completes',
      timeLimitMs: 90_000,
      run: (context) =>
        withStageMembers(context, async (party, cleanups) => {
          const ada = await joinRoom(party, 'Ada', 'movers');
          const bob = await joinRoom(party, 'Bob', 'movers');
          const cat = await joinRoom(party, 'Cat', 'movers');
          const file = randomFile(13, 4 * MB);
          const transfer = await offer(ada, 'm.bin', file);
          const receivers = [new AckingReceiver(bob, transfer), new AckingReceiver(cat, transfer, 5)];
          cleanups.push(() => receivers.forEach((r) => r.stop()));
          const sending = inBackground(sendWithinCredit(ada, transfer, file));
          await bob.user.waitForFrame('a first CHUNK at Bob', (f) => f.type === CHUNK, { timeoutMs: 10_000 });
          bob.user.send(jsonFrameBytes(JOIN, { room: 'elsewhere' }));
          const moved = await bob.user.waitForFrame('TRANSFER_END moved at Bob', isEnd(transfer, 'moved'), { timeoutMs: DEADLINE_MS, hint: 'a receiver that JOINs another room stops receiving at once: TRANSFER_END {"result": "moved"}' });
          const movedIndex = bob.user.frames.indexOf(moved);
          await sending;
          await cat.user.waitForFrame('TRANSFER_END complete at Cat', isEnd(transfer, 'complete'), { timeoutMs: 30_000 });
          await barrier(bob.user);
          const after = chunkDataSince(bob.user, transfer, movedIndex);
          expect(after === 0, 'a receiver who moved kept receiving the file', { expected: 'no CHUNK of the transfer after TRANSFER_END moved', actual: `${after} bytes of CHUNK data after it`, hint: 'take a mover out of every transfer it receives before handling the move' });
        }),
    },
    {
      name: `transfers at once: ${MAX_TRANSFERS_PER_SERVER} running on the server (${MAX_TRANSFERS_PER_SENDER} from each of ${MAX_TRANSFERS_PER_SERVER / MAX_TRANSFERS_PER_SENDER} senders) are all OFFERED, one more OFFER gets REFUSED server_busy, and once one ends an OFFER is taken again`,
      run: (context) =>
        withStageMembers(context, async (party) => {
          const hint = `a server runs at most ${MAX_TRANSFERS_PER_SERVER} transfers at once (${MAX_TRANSFERS_PER_SERVER} × 256 KiB = 16 MiB of buffers): the next OFFER gets REFUSED server_busy until one ends`;
          await joinRoom(party, 'Rex', 'busy'); // the receiver of every transfer (it never reads them: they wait, running, with their first CREDIT)
          const senders: Member[] = [];
          for (let i = 0; i < MAX_TRANSFERS_PER_SERVER / MAX_TRANSFERS_PER_SENDER; i++) senders.push(await joinRoom(party, `Sender${i}`, 'busy'));
          const file = randomFile(14, 100_000);
          const ids: number[] = [];
          for (const [i, sender] of senders.entries()) {
            for (let k = 0; k < MAX_TRANSFERS_PER_SENDER; k++) ids.push(await offer(sender, `f${i}-${k}.bin`, file, {}, `transfer number ${ids.length + 1} on the server must be OFFERED: ${hint}`));
          }
          const late = await joinRoom(party, 'Late', 'busy');
          const since = late.user.mark();
          late.user.send(jsonFrameBytes(OFFER, { name: 'late.bin', size: file.length, sha256: sha256(file) }));
          await expectRefused(late, 'offer', 'server_busy', `OFFER number ${MAX_TRANSFERS_PER_SERVER + 1} while ${MAX_TRANSFERS_PER_SERVER} transfers run`, since, hint);
          senders[0]!.user.send(jsonFrameBytes(CANCEL, { transfer: ids[0] }));
          await senders[0]!.user.waitForFrame('TRANSFER_END cancelled for the cancelled transfer', isEnd(ids[0]!, 'cancelled'), { timeoutMs: DEADLINE_MS, hint: 'CANCEL by the sender ends the transfer' });
          await offer(late, 'late.bin', file, {}, `once one of the ${MAX_TRANSFERS_PER_SERVER} transfers ended, an OFFER is taken again: server_busy counts the transfers running now`);
        }),
    },
    {
      name: 'transfer ids: every OFFERED id is 1-65535 and after the one before on the server (from either sender), also once the earlier transfers ended: an id is not reused at once',
      run: (context) =>
        withStageMembers(context, async (party) => {
          const ada = await joinRoom(party, 'Ada', 'ids');
          const bob = await joinRoom(party, 'Bob', 'ids');
          const ids: number[] = [];
          for (const [i, sender] of [ada, bob, ada, bob].entries()) {
            const id = await offer(sender, `id-${i}.txt`, Buffer.alloc(0)); // an empty file ends complete at once: its id is free again
            await sender.user.waitForFrame(`TRANSFER_END complete of the empty file ${id}`, isEnd(id, 'complete'), { timeoutMs: DEADLINE_MS, hint: 'a file of size 0 ends complete right after the OFFERs' });
            ids.push(id);
          }
          // "After" modulo the wrap from 65535 to 1: at most half the id space ahead.
          const ahead = (from: number, to: number) => (to - from + 0xffff) % 0xffff;
          const increasing = ids.slice(1).every((id, i) => ahead(ids[i]!, id) >= 1 && ahead(ids[i]!, id) < 0x8000);
          expect(increasing, 'transfer ids did not increase', {
            expected: 'each OFFERED "transfer" after the one before (a new id for every transfer, even when the earlier ones ended)',
            actual: `ids ${ids.join(', ')} for four empty files offered one after another`,
            hint: TRANSFER_ID_RULE,
          });
        }),
    },
    {
      name: 'bad_ack: an ACK past the bytes sent to that receiver, an ACK that goes back, and a 5-byte ACK get ERROR bad_ack; the receiver that ACKs right completes and the sender hears delivered 1, dropped 2',
      timeLimitMs: 90_000,
      run: (context) =>
        withStageMembers(context, async (party, cleanups) => {
          const ada = await joinRoom(party, 'Ada', 'acks');
          const bob = await joinRoom(party, 'Bob', 'acks');
          const cat = await joinRoom(party, 'Cat', 'acks');
          const dan = await joinRoom(party, 'Dan', 'acks');
          const eve = await joinRoom(party, 'Eve', 'acks-elsewhere');
          const file = randomFile(15, MB);
          const transfer = await offer(ada, 'acks.bin', file);
          const danReceiver = new AckingReceiver(dan, transfer);
          cleanups.push(() => danReceiver.stop());
          const sending = inBackground(sendWithinCredit(ada, transfer, file));
          // Bob ACKed nothing, so the sender's credit, and what Bob can have been sent, stop at 256 KiB while he is in.
          await bob.user.waitForFrame('a first CHUNK at Bob', (f) => f.type === CHUNK, { timeoutMs: DEADLINE_MS, hint: 'send each receiver the transfer\'s chunks within its window' });
          const overAck = ackBytes(transfer, file.length - 1);
          bob.user.send(overAck);
          await expectError(bob, 'bad_ack', `an ACK may not pass the bytes sent to you: Bob, who ACKed nothing, can have been sent at most ${TRANSFER_BUFFER} bytes (the sender's credit) and ACKed ${file.length - 1}`, 0, overAck);
          const first = await cat.user.waitForFrame('a first CHUNK at Cat', (f) => f.type === CHUNK, { timeoutMs: DEADLINE_MS });
          const got = chunkOf(first).offset + chunkOf(first).data.length;
          const goingBack = Buffer.concat([ackBytes(transfer, got), ackBytes(transfer, got - 1)]);
          cat.user.send(goingBack);
          await expectError(cat, 'bad_ack', `an ACK's "received" may not decrease: Cat ACKed ${got}, then ${got - 1}`, 0, goingBack);
          const short = frameBytes(ACK, Buffer.alloc(5));
          eve.user.send(short);
          await expectError(eve, 'bad_ack', 'an ACK declaring 5 bytes (it is exactly 6) is ERROR bad_ack, on the header', 0, short);
          await sending;
          await dan.user.waitForFrame('TRANSFER_END complete at Dan', isEnd(transfer, 'complete'), { timeoutMs: 30_000, hint: 'the receivers that sent a bad ACK are out; the one that ACKs right completes' });
          expect(sha256(danReceiver.bytes()) === sha256(file), 'Dan got a different file', { expected: sha256(file), actual: sha256(danReceiver.bytes()), hint: 'relay the bytes unchanged' });
          const end = await ada.user.waitForFrame('TRANSFER_END to the sender', isEnd(transfer), { timeoutMs: 10_000 });
          expect(jsonOf(end).result === 'complete' && jsonOf(end).delivered === 1 && jsonOf(end).dropped === 2, 'the sender was told the wrong outcome', { expected: '{"result": "complete", "delivered": 1, "dropped": 2}', actual: end.payload.toString(), hint: 'a receiver disconnected for a bad ACK counts as dropped' });
        }),
    },
    {
      name: 'cancel by a receiver: it alone gets TRANSFER_END cancelled "by" itself and no CHUNK after it, the other receiver completes and the sender hears delivered 1, dropped 1; a CANCEL from outside the transfer is ignored; when every receiver cancels, the sender gets no_receivers',
      timeLimitMs: 90_000,
      run: (context) =>
        withStageMembers(context, async (party, cleanups) => {
          const ada = await joinRoom(party, 'Ada', 'cancels');
          const bob = await joinRoom(party, 'Bob', 'cancels');
          const cat = await joinRoom(party, 'Cat', 'cancels');
          const eve = await joinRoom(party, 'Eve', 'cancels-elsewhere');
          const file = randomFile(16, MB);
          const transfer = await offer(ada, 'c.bin', file);
          const catReceiver = new AckingReceiver(cat, transfer);
          // Bob ACKs all he gets, before and after his CANCEL: a server that kept him in the transfer would send him the rest.
          const bobReceiver = new AckingReceiver(bob, transfer);
          cleanups.push(() => catReceiver.stop(), () => bobReceiver.stop());
          // Ada sends the first 64 KiB, then waits for Bob's CANCEL before the rest: he cancels mid-transfer.
          const firstPart = 4 * CHUNK_DATA;
          await sendWithinCredit(ada, transfer, file, { stopAt: firstPart });
          await bob.user.waitForFrame('a first CHUNK at Bob', (f) => f.type === CHUNK, { timeoutMs: DEADLINE_MS });
          const outsider = jsonFrameBytes(CANCEL, { transfer });
          const eveSince = eve.user.mark();
          eve.user.send(outsider);
          await expectStillConnected(eve, eveSince, 'a CANCEL of a transfer Eve is not in', 'a CANCEL for a transfer you are not in is ignored', outsider);
          const cancel = jsonFrameBytes(CANCEL, { transfer });
          bob.user.send(cancel);
          const bobEnd = await withSent(cancel, bob.user.waitForFrame('TRANSFER_END at Bob after his CANCEL', isEnd(transfer), { timeoutMs: DEADLINE_MS, hint: 'CANCEL from a receiver: TRANSFER_END cancelled, "by" that receiver, to it alone' }));
          expect(jsonOf(bobEnd).result === 'cancelled' && (jsonOf(bobEnd).by as { id?: number } | undefined)?.id === bob.id, 'the receiver who cancelled was told the wrong end', { expected: `TRANSFER_END {"transfer": ${transfer}, "result": "cancelled", "by": {"id": ${bob.id}, "name": "Bob"}}`, actual: bobEnd.payload.toString(), sent: cancel, hint: 'CANCEL from a receiver: TRANSFER_END cancelled "by" itself, to it alone' });
          const bobEndIndex = bob.user.frames.indexOf(bobEnd);
          await sendWithinCredit(ada, transfer, file, { startAt: firstPart });
          const catEnd = await cat.user.waitForFrame('TRANSFER_END at Cat', isEnd(transfer), { timeoutMs: 30_000, hint: 'the receivers who did not cancel go on to the end' });
          await barrier(bob.user);
          const after = chunkDataSince(bob.user, transfer, bobEndIndex);
          expect(after === 0, 'a receiver who cancelled kept receiving the file', { expected: 'no CHUNK of the transfer after TRANSFER_END cancelled', actual: `${after} bytes of CHUNK data after it (Bob ACKed every CHUNK he got)`, hint: 'take the receiver out of the transfer before telling it' });
          expect(jsonOf(catEnd).result === 'complete', 'a receiver\'s CANCEL ended the transfer for another receiver', { expected: 'TRANSFER_END complete at Cat', actual: catEnd.payload.toString(), hint: 'CANCEL from a receiver stops the transfer for that receiver alone' });
          expect(sha256(catReceiver.bytes()) === sha256(file), 'Cat got a different file', { expected: sha256(file), actual: sha256(catReceiver.bytes()), hint: 'relay the bytes unchanged' });
          const adaEnd = await ada.user.waitForFrame('TRANSFER_END to the sender', isEnd(transfer), { timeoutMs: 10_000 });
          expect(jsonOf(adaEnd).result === 'complete' && jsonOf(adaEnd).delivered === 1 && jsonOf(adaEnd).dropped === 1, 'the sender was told the wrong outcome', { expected: '{"result": "complete", "delivered": 1, "dropped": 1}', actual: adaEnd.payload.toString(), hint: 'a receiver who cancelled counts as dropped' });
          const second = await offer(ada, 'c2.bin', randomFile(17, 100_000));
          const adaSince = ada.user.mark();
          const cancels = jsonFrameBytes(CANCEL, { transfer: second });
          for (const member of [bob, cat]) member.user.send(cancels);
          const last = await withSent(cancels, ada.user.waitForFrame('TRANSFER_END to the sender once both receivers cancelled', isEnd(second), { since: adaSince, timeoutMs: DEADLINE_MS, hint: 'when the last receiver cancels, TRANSFER_END no_receivers to the sender' }));
          expect(jsonOf(last).result === 'no_receivers', 'the sender was not told that nobody is left', { expected: `TRANSFER_END {"transfer": ${second}, "result": "no_receivers", ...}`, actual: last.payload.toString(), sent: cancels, hint: 'every receiver cancelled: no_receivers to the sender' });
        }),
    },
    {
      name: 'room rules for senders: a sender who moves mid-transfer ends it: TRANSFER_END sender_left to each receiver and moved to the sender, no CHUNK after it, a late CHUNK of it discarded without an ERROR; a sender whose connection drops ends it with sender_left',
      run: (context) =>
        withStageMembers(context, async (party, cleanups) => {
          const ada = await joinRoom(party, 'Ada', 'sender-moves');
          const bob = await joinRoom(party, 'Bob', 'sender-moves');
          const cat = await joinRoom(party, 'Cat', 'sender-moves');
          const file = randomFile(18, MB);
          const transfer = await offer(ada, 's.bin', file);
          // 128 KiB sent and none ACKed: each receiver got its 64 KiB window, the other 64 KiB wait in the server.
          await sendWithinCredit(ada, transfer, file, { stopAt: 8 * CHUNK_DATA });
          await bob.user.waitForFrame('a first CHUNK at Bob', (f) => f.type === CHUNK, { timeoutMs: DEADLINE_MS });
          const move = jsonFrameBytes(JOIN, { room: 'sender-moved' });
          ada.user.send(move);
          const ends: number[] = [];
          for (const member of [bob, cat]) {
            const end = await withSent(move, member.user.waitForFrame(`TRANSFER_END sender_left at ${member.name}`, isEnd(transfer, 'sender_left'), { timeoutMs: DEADLINE_MS, hint: 'a sender that JOINs another room ends its transfers: TRANSFER_END sender_left to every receiver' }));
            ends.push(member.user.frames.indexOf(end));
          }
          // Both ACK what they got only now: a server that still had them in the transfer would send what it holds.
          const acking = [bob, cat].map((member) => new AckingReceiver(member, transfer));
          cleanups.push(() => acking.forEach((receiver) => receiver.stop()));
          for (const receiver of acking) receiver.bytes();
          await withSent(move, ada.user.waitForFrame('TRANSFER_END moved at Ada', isEnd(transfer, 'moved'), { timeoutMs: DEADLINE_MS, hint: 'a sender that moves is told TRANSFER_END moved, so its client stops sending' }));
          const adaSince = ada.user.mark();
          const late = chunkBytes(transfer, 4 * CHUNK_DATA, file.subarray(4 * CHUNK_DATA, 5 * CHUNK_DATA));
          ada.user.send(late);
          await expectStillConnected(ada, adaSince, 'a CHUNK of a transfer that ended a moment ago (it was in flight)', 'a CHUNK for one of your last 4 ended transfers is discarded silently', late);
          for (const [i, member] of [bob, cat].entries()) {
            await barrier(member.user);
            const after = chunkDataSince(member.user, transfer, ends[i]);
            expect(after === 0, `${member.name} got CHUNKs after the transfer ended`, { expected: 'no CHUNK of the transfer after TRANSFER_END sender_left', actual: `${after} bytes of CHUNK data after it (it ACKed the 64 KiB it had)`, sent: late, hint: 'an ended transfer sends nothing more: neither a late CHUNK nor what the server held of it' });
          }
          const dan = await joinRoom(party, 'Dan', 'sender-drops');
          const fay = await joinRoom(party, 'Fay', 'sender-drops');
          const second = await offer(dan, 'd.bin', file);
          await sendWithinCredit(dan, second, file, { stopAt: 4 * CHUNK_DATA });
          await fay.user.waitForFrame('a first CHUNK at Fay', (f) => f.type === CHUNK, { timeoutMs: DEADLINE_MS });
          dan.user.reset(); // a crash: no BYE
          await fay.user.waitForFrame('TRANSFER_END sender_left at Fay', isEnd(second, 'sender_left'), { timeoutMs: DEADLINE_MS, hint: 'a sender whose connection closes (no BYE: a reset) ends its transfers: TRANSFER_END sender_left to every receiver' });
        }),
    },
    {
      name: `tiny chunks: while the receiver ACKs nothing, 256 CHUNKs of 1 KiB (~320 KiB held at 256 bytes of bookkeeping each) and 1800 of 1 byte (~470 KiB) are taken, and by 2200 of 1 byte (over 512 KiB) ERROR bad_chunk`,
      run: (context) =>
        withStageMembers(context, async (party) => {
          const ada = await joinRoom(party, 'Ada', 'tiny');
          await joinRoom(party, 'Bob', 'tiny'); // reads, never ACKs: every chunk stays held
          const hint = `the chunks held for a transfer, each counted as its bytes + ${CHUNK_BOOKKEEPING} of bookkeeping, may cost at most ${MAX_HELD_CHUNK_COST / 1024} KiB: one more is ERROR bad_chunk (1-byte chunks reach it at ~1950, 1 KiB chunks never within the 256 KiB credit)`;
          const inChunks = (transfer: number, file: Buffer, size: number, from: number, count: number) =>
            Buffer.concat(Array.from({ length: count }, (_, i) => chunkBytes(transfer, from + i * size, file.subarray(from + i * size, from + (i + 1) * size))));
          const waitForCredit = (transfer: number) => ada.user.waitForFrame(`CREDIT for transfer ${transfer}`, (f) => f.type === CREDIT && f.payload.readUInt16BE(0) === transfer, { timeoutMs: DEADLINE_MS });
          const kibFile = randomFile(19, MB);
          const kib = await offer(ada, 'kib.bin', kibFile);
          await waitForCredit(kib);
          let since = ada.user.mark();
          const kibChunks = inChunks(kib, kibFile, 1024, 0, TRANSFER_BUFFER / 1024);
          ada.user.send(kibChunks);
          await expectStillConnected(ada, since, '256 CHUNKs of 1 KiB, the first CREDIT (cost ~320 KiB, under 512 KiB)', hint, kibChunks);
          const tinyFile = randomFile(20, MB);
          const tiny = await offer(ada, 'tiny.bin', tinyFile);
          await waitForCredit(tiny);
          since = ada.user.mark();
          const taken = inChunks(tiny, tinyFile, 1, 0, 1800);
          ada.user.send(taken);
          await expectStillConnected(ada, since, '1800 CHUNKs of 1 byte (cost at most 1800 × 268 = 471 KiB, under 512 KiB)', hint, taken);
          const tooMany = inChunks(tiny, tinyFile, 1, 1800, 400);
          ada.user.send(tooMany);
          await expectError(ada, 'bad_chunk', `${hint}; 2200 chunks of 1 byte cost at least 2200 × 257 = 552 KiB`, since, tooMany);
        }),
    },
    // Stage 05's move bucket holds here too (README, limits: moves); one check for every stage.
  ];
}

/** Stage 07's own: its chat and file checks, and stage 05's move bucket (08 runs that one itself). */
export const serverChecks: Check[] = [...chatFilesServerChecksFor(WIRES['07']), moveRefillCheck(WIRES['07'])];

/**
 * Checks that take long on purpose (a timeout waited out, or 65 535 ids burnt through to see them
 * wrap), longer than a default grade should: graded with `npm run grade --
 * --stage 07 --slow`, and by tests/07-chat-files-slow.test.ts.
 */
export function chatFilesSlowServerChecksFor(wire: StageWire): Check[] {
  const protocol = wire.protocol ?? PROTOCOL;
  const joinRoom = (party: Party, name: string, room: string) => join(party, name, room, protocol);
  const withStageMembers = (context: Parameters<Check['run']>[0], body: (party: Party, cleanups: (() => void)[]) => Promise<void>) => withMembers(context, body, wire.typeNames);
  return [
    {
      name: `sender stalled: a sender that has credit and sends no CHUNK for ${SENDER_STALL_MS / 1000} s ends its transfer: TRANSFER_END sender_stalled to the sender and each receiver, ${describeWindow(timingWindow(SENDER_STALL_MS, { pipelineMs: TRANSFER_RULE_PIPELINE_MS }))} after its last CHUNK`,
      timeLimitMs: 90_000,
      run: (context) =>
        withStageMembers(context, async (party, cleanups) => {
          const window = timingWindow(SENDER_STALL_MS, { pipelineMs: TRANSFER_RULE_PIPELINE_MS });
          const hint = `a sender with credit that sends no CHUNK for ${SENDER_STALL_MS / 1000} s ends the transfer: TRANSFER_END sender_stalled to everyone in it`;
          // Evidence that this process, not the server, was late: how late the grader's own timer ran.
          const watch = new StallWatch();
          cleanups.push(() => watch.stop());
          const ada = await joinRoom(party, 'Ada', 'stall');
          const bob = await joinRoom(party, 'Bob', 'stall');
          const cat = await joinRoom(party, 'Cat', 'stall');
          const file = randomFile(21, MB);
          const transfer = await offer(ada, 'stall.bin', file);
          const receivers = [bob, cat].map((m) => new AckingReceiver(m, transfer)); // they read and ACK: only the sender holds it up
          cleanups.push(() => receivers.forEach((r) => r.stop()));
          await sendWithinCredit(ada, transfer, file, { stopAt: 2 * CHUNK_DATA });
          const lastChunkAt = performance.now();
          for (const member of [bob, cat, ada]) {
            const what = `TRANSFER_END sender_stalled at ${member.name}, ${SENDER_STALL_MS / 1000} s after the sender's last CHUNK (accepted: ${describeWindow(window)})`;
            let end: ReceivedFrame;
            try {
              end = await member.user.waitForFrame(what, isEnd(transfer), { timeoutMs: Math.max(0, lastChunkAt + window.latestMs - performance.now()), hint });
            } catch (error) {
              if (error instanceof CheckFailure && watch.worstLateMs > TRANSFER_RULE_STALL_ALLOWANCE_MS) throw new CheckSkipped(`could not judge the ${SENDER_STALL_MS / 1000} s sender_stalled timeout: the grader's own timers ran ${showMs(watch.worstLateMs)} late (the machine was too busy), and no TRANSFER_END came within ${showMs(window.latestMs)}`);
              throw error;
            }
            expect(jsonOf(end).result === 'sender_stalled', `the stalled transfer ended otherwise at ${member.name}`, { expected: `TRANSFER_END {"transfer": ${transfer}, "result": "sender_stalled", ...}`, actual: end.payload.toString(), hint });
            const after = end.at - lastChunkAt;
            const verdict = judgeDuration(after, window);
            if (verdict === 'late' && watch.worstLateMs > TRANSFER_RULE_STALL_ALLOWANCE_MS) throw new CheckSkipped(`could not judge the ${SENDER_STALL_MS / 1000} s sender_stalled timeout: the grader's own timers ran ${showMs(watch.worstLateMs)} late (the machine was too busy)`);
            expect(verdict === 'ok', `the sender_stalled timeout is not ${SENDER_STALL_MS / 1000} s: TRANSFER_END sender_stalled came too ${verdict}, after ${showMs(after)}`, {
              expected: `TRANSFER_END sender_stalled ${describeWindow(window)} after the sender's last CHUNK (the README: ${SENDER_STALL_MS / 1000} s)`,
              actual: `at ${member.name} ${showMs(after)} after it`,
              hint,
            });
          }
        }),
    },
    {
      name: `transfer ids wrap: after 65535 comes 1, and an id in use is skipped (a transfer kept running with its id while ${OFFER_BURST} empty files are offered on each of ~13 100 short connections, ${WRAP_PARALLEL} at once, until the ids come round to it)`,
      timeLimitMs: 300_000,
      run: (context) =>
        withStageMembers(context, async (party, cleanups) => {
          // The kept transfer: Ada sends 1 KiB every 2 s (never stalled), Bob reads and ACKs (never too slow).
          const ada = await joinRoom(party, 'Ada', 'ids-kept');
          const bob = await joinRoom(party, 'Bob', 'ids-kept');
          const file = randomFile(22, MB);
          // An ended transfer first, so the kept id is not 1 even on a fresh server: the wrap must then
          // land on 1 (free) and the skip comes later, each judged on its own.
          const first = await offer(ada, 'first.txt', Buffer.alloc(0));
          await ada.user.waitForFrame(`TRANSFER_END complete of the empty file ${first}`, isEnd(first, 'complete'), { timeoutMs: DEADLINE_MS, hint: 'a file of size 0 ends complete right after the OFFERs' });
          const kept = await offer(ada, 'kept.bin', file);
          const receiver = new AckingReceiver(bob, kept);
          let sent = 0;
          const keepAlive = setInterval(() => {
            if (ada.user.isClosed || sent >= 240 * 1024) return; // within the first CREDIT (256 KiB): 8 minutes, past the time limit
            ada.user.send(chunkBytes(kept, sent, file.subarray(sent, sent + 1024)));
            sent += 1024;
          }, 2_000);
          cleanups.push(() => (clearInterval(keepAlive), receiver.stop()));
          // One member in each burner room receives the empty files (an OFFER needs a receiver).
          for (let room = 0; room < WRAP_PARALLEL; room++) await joinRoom(party, `Receiver${room}`, `ids-wrap-${room}`);
          const empty = Buffer.alloc(0);
          const keptEnded = () => {
            const end = ada.user.frames.find(isEnd(kept));
            return end && `TRANSFER_END ${end.payload.toString().slice(0, 200)}`;
          };
          await checkIdWrap({
            what: 'transfer id',
            heldId: kept,
            idsPerConnection: OFFER_BURST,
            parallel: WRAP_PARALLEL,
            hint: TRANSFER_ID_RULE,
            heldEnded: keptEnded,
            takeIds: async (index, lane) => {
              const user = await FramedUser.join(context.server.host, context.server.port, { name: `Burner${index}`, room: `ids-wrap-${lane}`, protocol }, { typeNames: wire.typeNames });
              try {
                const ids: number[] = [];
                for (let k = 0; k < OFFER_BURST; k++) {
                  const since = user.mark();
                  user.send(jsonFrameBytes(OFFER, { name: `wrap-${k}.txt`, size: 0, sha256: sha256(empty) }));
                  const answer = await user.waitForFrame(`OFFERED for empty file ${k + 1} of ${OFFER_BURST} on a new connection`, (f) => f.type === OFFERED || f.type === REFUSED || f.type === ERROR, {
                    since,
                    timeoutMs: 10_000,
                    hint: `a new connection has ${OFFER_BURST} OFFERs in its bucket, and an empty file ends complete at once, so it never has 2 running`,
                  });
                  expect(answer.type === OFFERED, `an OFFER of an empty file on a new connection was not taken`, {
                    expected: 'OFFERED {"transfer": ...}',
                    actual: `${TYPE_NAMES[answer.type]} ${answer.payload.toString().slice(0, 200)}`,
                    hint: `a new connection has ${OFFER_BURST} OFFERs in its bucket, and an empty file ends complete at once, so it never has 2 running`,
                  });
                  const id = jsonOf(answer).transfer as number;
                  ids.push(id);
                  if (plainlyWrong(id, kept)) return ids;
                  await user.waitForFrame(`TRANSFER_END complete of the empty file ${id}`, isEnd(id, 'complete'), { since, timeoutMs: 10_000, hint: 'a file of size 0 ends complete right after the OFFERs' });
                }
                return ids;
              } finally {
                user.destroy();
              }
            },
          });
          const ended = keptEnded();
          expect(ended === undefined, `the transfer kept running by the check (${kept}) ended while it sent and ACKed`, {
            expected: `transfer ${kept} still running: a CHUNK every 2 s, every byte ACKed`,
            actual: ended ?? '',
            hint: 'neither sender_stalled (30 s without a CHUNK) nor too_slow applies to a transfer that moves',
          });
        }),
    },
  ];
}

export const slowServerChecks: Check[] = chatFilesSlowServerChecksFor(WIRES['07']);
