// Stage 08's client checks: the client under test (CLIENT_CMD, default the reference) is run
// through its command line while the check plays BOTH the server (raw frames over TCP, raw
// datagrams on a UDP socket named in WELCOME's udp_port) AND the peer of the call (a second UDP
// socket of its own, named as `peer_address` in CALL_START). They use only the protocol and the
// command line in 08-calls/README.md (nothing from 08-calls/ is imported), so they grade a client
// written in any language. The check encodes and decodes Opus itself; what a client plays is
// judged by the power of each test tone in its --output WAV (Goertzel, 20 ms windows holding a
// whole number of periods of each tone, so where the client's frames start does not matter).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE } from '#shared/audio/format.ts';
import { readWavPcm } from '#shared/audio/wav-source.ts';
import { createOpusDecoder, createOpusEncoder } from '#shared/codec/opus.ts';
import { CheckFailure, CheckSkipped, showBytes } from '../harness/check-failure.ts';
import { expect, type Check, type CheckContext } from '../harness/checks.ts';
import { describeFrames, finishSession, orStop, startSession as startClientSession, thenExit, type Session } from '../harness/client-session.ts';
import { DatagramPeer, type ReceivedDatagram } from '../harness/datagram-peer.ts';
import { jsonFrameBytes, jsonObjectOf } from '../harness/frame-wire.ts';
import { dominantHz, levelDb, samplesOf, tonePower } from '../harness/opus-voice.ts';
import { writeSpeechWav } from '../harness/speech-wav.ts';
import { StallWatch, withStallWatch } from '../harness/stall-watch.ts';
import { rawCharacters } from '../harness/program-output.ts';
import { udpReturnCheck } from '../harness/udp-return-check.ts';
import { describeWindow, expectDuration, periodWindow, SCHEDULING_NOISE_MS, showMs, timingWindow, type TimingWindow } from '../harness/tolerance.ts';
import { controlLimitClientCheck } from '../harness/control-limit-check.ts';
import { type DocumentedBucket, expectBucketLimit, GRANULARITY_TOKENS, mostLetThrough } from '../harness/bucket-limit.ts';
import { Unmeasured } from '../harness/unmeasured.ts';

// The message types of the README's tables: TCP frames, then datagrams.
const HELLO = 0x01;
const WELCOME = 0x02;
const VOICE = 0x03;
const BYE = 0x04;
const USERS = 0x06;
const PATH = 0x0e;
const REFUSED = 0x10;
const ADDRESS = 0x18;
const LOOKUP = 0x19;
const FOUND = 0x1a;
const INVITE = 0x1b;
const RINGING = 0x1c;
const ACCEPT = 0x1d;
const DECLINE = 0x1e;
const HANGUP = 0x1f;
const CALL_START = 0x20;
const CALL_END = 0x21;
const TYPE_NAMES: Record<number, string> = {
  [HELLO]: 'HELLO', [VOICE]: 'VOICE', [BYE]: 'BYE', [PATH]: 'PATH', 0x0f: 'TEXT', [LOOKUP]: 'LOOKUP', [INVITE]: 'INVITE',
  [ACCEPT]: 'ACCEPT', [DECLINE]: 'DECLINE', [HANGUP]: 'HANGUP',
};
const VOICE_UP = 0x01;
const VOICE_DOWN = 0x02;
const PING = 0x03;
const PONG = 0x04;
const CALL_PROBE = 0x05;
const CALL_VOICE = 0x06;
const DATAGRAM_NAMES: Record<number, string> = { [VOICE_UP]: 'VOICE_UP', [PING]: 'PING', [CALL_PROBE]: 'CALL_PROBE', [CALL_VOICE]: 'CALL_VOICE' };

const PROTOCOL = 'voice-chat/08';
const DEFAULT_ROOM = 'lobby';
const OWN_ID = 7;
const SESSION_TOKEN = Buffer.from('5ac1e0b79d2f4e63', 'hex');
const CALL_TOKEN = Buffer.from('7e21c4095b3af0d2', 'hex');
const WRONG_TOKEN = Buffer.from('7e21c4095b3af0d3', 'hex'); // one bit off: a client must compare all 8 bytes
const BOB = { id: 5, name: 'Bob' };
/** A member of the client's room: its voice would play outside a call, so it must not in one. */
const CYD = { id: 9, name: 'Cyd' };

// The README's numbers ("Hole punching and the path", "The guard", "Timing and limits").
const FIRST_PROBE_MS = 300; // "Tests the stage needs": the first probe within 300 ms of CALL_START
const PROBE_PERIOD_MS = 200; // while connecting
const SETTLED_PROBE_PERIOD_MS = 1_000; // once direct or relayed
const CONNECTING_MS = 3_000; // connecting -> relayed
const DIRECT_SILENCE_MS = 3_000; // direct -> relayed
const UPGRADE_MS = SETTLED_PROBE_PERIOD_MS + PROBE_PERIOD_MS; // relayed -> direct once the path opens: our next probe, then the peer's
const GUARD_MS = 1_000; // no room voice for 1 s after CALL_END
const CALL_LOOKUP_FOR_MS = 10_000; // --call looks again once a second while FOUND says offline, for up to 10 s
const MAX_CALL_LOOKUPS = 11; // "11 LOOKUPs at most"
const AFTER_GIVING_UP_MS = 3_000; // how long no LOOKUP is watched for after the give-up line
const GIVE_UP_SLACK_MS = 1_000; // the give-up line may follow the last FOUND by this much
/** Judging "nothing after X" on datagrams and TCP frames: one already on its way when X was sent may still come. */
const IN_FLIGHT_MS = SCHEDULING_NOISE_MS;
/** "Full level" and "20 dB under", as stage 05's rule and the README's test say. */
const LEVEL_TOLERANCE_DB = 3;
const UNDER_DB = 20;
/** The test tones, each a whole number of periods in 20 ms (Goertzel windows see them whole). */
const PEER_HZ = 300;
const WRONG_TOKEN_HZ = 700;
const STRANGER_HZ = 500;
const OTHER_SPEAKER_HZ = 700;
const OLD_TOKEN_HZ = 700;
const LARGEST_HZ = 400;
const OVERSIZE_HZ = 600;
/** The client's own voice: the input WAV's tone (speech-wav.ts: 440 Hz at -12 dBFS RMS). */
const INPUT_HZ = 440;
const INPUT_DB = -12;
/** CALL_PROBE: type, token, probe u32, received u32. CALL_VOICE: type, token, sequence, then an Opus packet of 1-1275 bytes (the README's 12-1286). */
const CALL_PROBE_BYTES = 17;
const MAX_OPUS_PACKET_BYTES = 1275;
const MIN_CALL_VOICE_BYTES = 11 + 1;
const MAX_CALL_VOICE_BYTES = 11 + MAX_OPUS_PACKET_BYTES;
/** Datagrams sent at once before pacing the rest (slack against the check's own timer jitter). */
const BURST = 4;
/** The client's bucket for the peer's CALL_VOICE ("What the client does with each direct datagram", check 4). */
const CALL_VOICE_BUCKET: DocumentedBucket = { burst: 50, perSecond: 55 };
/** The flood the bucket is judged by: a client without the bucket counts all of it in `received`. */
const CALL_VOICE_FLOOD = 200;
/** The flood is sent this long before the client's next probe is due: more than IN_FLIGHT_MS, so that probe counts it. */
const FLOOD_LEAD_MS = 2 * IN_FLIGHT_MS;
/** CALL_VOICE a stranger sends right after the peer's burst has emptied that bucket: every one is dropped (rate_limited). */
const STRANGER_BURST = 10;
/** Tries of the stranger's burst: a try in which the client read a stranger's datagram after a token refilled proves nothing. */
const STRANGER_BURST_TRIES = 3;
/** Between tries: the bucket refills to its burst (50 / 55 a second = 0.91 s) with room to spare. */
const BUCKET_REFILL_MS = 1_500;

type Address = { address: string; port: number };

interface CallSession extends Session {
  /** The fake server's UDP socket (WELCOME's udp_port): answers PINGs, as a server does. */
  udp: DatagramPeer;
  /** The peer's UDP socket: the `peer_address` the check names in CALL_START. */
  peer: DatagramPeer;
  /** Sends a JSON frame to the client. */
  send(type: number, value: unknown): void;
}

/**
 * Runs the client against a fake server that welcomes it into its room (with Cyd), answers every
 * PING with a PONG and, after the first, tells it its address (ADDRESS), as a stage 08 server does.
 */
async function startSession(context: CheckContext, args: string[], name = 'Ada'): Promise<CallSession> {
  const udp = await DatagramPeer.start();
  const peer = await DatagramPeer.start();
  try {
    const session = await startClientSession(context, name, args, (hello) => {
      const room = typeof hello.room === 'string' ? hello.room : DEFAULT_ROOM;
      return Buffer.concat([
        jsonFrameBytes(WELCOME, { name, room, id: OWN_ID, protocol: PROTOCOL, codec: 'opus', sample_rate: SAMPLE_RATE, frame_ms: FRAME_MS, channels: 1, token: SESSION_TOKEN.toString('hex'), udp_port: udp.port }),
        jsonFrameBytes(USERS, { room, users: [{ ...CYD, in_call: false }, { id: OWN_ID, name, in_call: false }] }),
      ]);
    });
    const close = session.fake.close.bind(session.fake);
    session.fake.close = async () => (udp.close(), peer.close(), close()); // whoever closes the fake closes the UDP sockets too
    const send = (type: number, value: unknown) => session.connection.send(jsonFrameBytes(type, value));
    let pinged = false;
    udp.onDatagram = (datagram) => {
      if (!isPing(datagram)) return;
      const { data } = datagram;
      const pong = Buffer.alloc(13);
      pong[0] = PONG;
      data.copy(pong, 1, 9, 17); // ping number and client time, as received
      pong.writeUInt32BE(udp.received.length, 9);
      udp.send(pong, datagram);
      if (!pinged) {
        pinged = true;
        send(ADDRESS, { address: datagram.address, port: datagram.port });
      }
    };
    return { ...session, udp, peer, send };
  } catch (error) {
    udp.close();
    peer.close();
    throw error;
  }
}

/** A stage 06 PING with the session's token. */
const isPing = ({ data }: ReceivedDatagram) => data.length === 17 && data[0] === PING && data.subarray(1, 9).equals(SESSION_TOKEN);

/** Waits for the client's first PING (within 5 s of WELCOME), answered and followed by ADDRESS: the call's datagrams must come from its socket. */
function pinged(session: CallSession): Promise<ReceivedDatagram> {
  return session.udp.waitFor(
    () => session.udp.received.find(isPing),
    5_000,
    `a PING (17 bytes, WELCOME's token ${SESSION_TOKEN.toString('hex')}) after WELCOME`,
    'send PING to udp_port as soon as WELCOME comes, as in stage 06: 03 | token | ping u32 | client_time u32',
    () => describeDatagrams(session.udp.received),
  );
}

/** The next frame of `type` the client sent at or after index `from` of session.sent(), parsed. */
async function frameOf(session: Session, type: number, from: number, timeoutMs: number, what: string, hint: string): Promise<{ index: number; fields: Record<string, unknown>; payload: Buffer }> {
  const found = await session.connection.waitFor(
    () => {
      const frames = session.sent();
      for (let i = from; i < frames.length; i++) if (frames[i]!.type === type) return { index: i, frame: frames[i]! };
      return undefined;
    },
    timeoutMs,
    what,
    hint,
  );
  const parsed = jsonObjectOf(found.frame.payload);
  expect('object' in parsed, `${what}: its payload is not a JSON object`, {
    expected: `${what} with a UTF-8 JSON object as payload`,
    actual: (parsed as { problem: string }).problem,
    received: found.frame.payload,
    hint: 'every control payload is one UTF-8 JSON object',
  });
  return { index: found.index, fields: parsed.object, payload: found.frame.payload };
}

/** When CALL_START went out, and the frames the client had sent by the time it could have read it. */
interface CallStarted {
  at: number;
  /**
   * How many frames the client had sent IN_FLIGHT_MS after CALL_START went out (as relayedVoice
   * allows for VOICE_UP): a TCP VOICE the client wrote before CALL_START reached it is no fault.
   * Until then, the frames sent so far (stricter).
   */
  frames(): number;
}

const NOT_STARTED: CallStarted = { at: 0, frames: () => 0 };

/** Rings the client (INVITE from `from`), waits for its ACCEPT of that call, and starts the call. */
async function ringAndStart(session: CallSession, { call = 7, from = BOB, peerAddress }: { call?: number; from?: { id: number; name: string }; peerAddress: Address | null }): Promise<CallStarted> {
  const mark = session.sent().length;
  session.send(INVITE, { call, from });
  const accept = await frameOf(session, ACCEPT, mark, 5_000, `ACCEPT (0x1D) {"call":${call}} after INVITE {"call":${call},"from":${JSON.stringify(from)}}`, 'with --auto-accept, answer every INVITE at once with ACCEPT {"call": the INVITE\'s call}');
  expect(accept.fields.call === call, 'the ACCEPT names another call', {
    expected: `ACCEPT {"call":${call}}`,
    actual: `ACCEPT ${accept.payload.toString('utf8')}`,
    hint: 'ACCEPT carries the call id of the INVITE it answers',
  });
  session.send(CALL_START, { call, peer: from, token: CALL_TOKEN.toString('hex'), peer_address: peerAddress });
  const at = performance.now();
  let landed: number | undefined;
  setTimeout(() => (landed = session.sent().length), IN_FLIGHT_MS);
  return { at, frames: () => landed ?? session.sent().length };
}

/** TCP VOICE frames the client sent after its first `frames` frames (its voice through the server on the TCP path). */
const tcpVoiceAfter = (session: Session, frames: number) => session.sent().slice(frames).filter((frame) => frame.type === VOICE).length;

/** The peer's socket as CALL_START names it. */
const addressOf = (peer: DatagramPeer): Address => ({ address: '127.0.0.1', port: peer.port });

function describeDatagrams(list: ReceivedDatagram[], since = 0): string {
  const shown = list.filter((d) => d.at >= since);
  if (shown.length === 0) return 'no datagram';
  const types = new Map<string, number>();
  for (const { data } of shown) {
    const key = `${DATAGRAM_NAMES[data[0] ?? 0] ?? 'type'} 0x${(data[0] ?? 0).toString(16).padStart(2, '0')} (${data.length} bytes)`;
    types.set(key, (types.get(key) ?? 0) + 1);
  }
  return `${shown.length} datagrams: ${[...types].map(([key, count]) => `${count} x ${key}`).join(', ')}; the first: ${showBytes(shown[0]!.data, 24)}`;
}

const isProbe = (d: ReceivedDatagram) => d.data[0] === CALL_PROBE;
const isCallVoice = (d: ReceivedDatagram) => d.data[0] === CALL_VOICE;
const isVoiceUp = (d: ReceivedDatagram) => d.data[0] === VOICE_UP;
/** A datagram of the call (probe or voice) with the call's token: what the peer counts in `received`. */
const validForCall = (d: ReceivedDatagram) => ((d.data[0] === CALL_PROBE && d.data.length === 17) || (d.data[0] === CALL_VOICE && d.data.length >= 12)) && d.data.subarray(1, 9).equals(CALL_TOKEN);

function callProbe(token: Buffer, probe: number, received: number): Buffer {
  const datagram = Buffer.alloc(17);
  datagram[0] = CALL_PROBE;
  token.copy(datagram, 1);
  datagram.writeUInt32BE(probe, 9);
  datagram.writeUInt32BE(received, 13);
  return datagram;
}

function callVoice(token: Buffer, sequence: number, packet: Buffer): Buffer {
  const head = Buffer.alloc(11);
  head[0] = CALL_VOICE;
  token.copy(head, 1);
  head.writeUInt16BE(sequence & 0xffff, 9);
  return Buffer.concat([head, packet]);
}

/**
 * `packet` (one 20 ms frame) rewritten as an Opus code 3 packet of exactly `bytes` bytes, the rest
 * padding (RFC 6716, 3.2.5): it decodes to the same audio, whatever its length.
 */
function paddedOpus(packet: Buffer, bytes: number): Buffer {
  const frame = packet.subarray(1);
  // Padding length: a 255 for every 254 bytes, then the rest (0-253).
  const lengthBytes = (padding: number) => [...Array<number>(Math.floor(padding / 254)).fill(255), padding % 254];
  let padding = bytes - 2 - frame.length;
  while (padding > 0 && 2 + lengthBytes(padding).length + frame.length + padding > bytes) padding--;
  const padded = Buffer.concat([Buffer.of((packet[0]! & 0xfc) | 3, 0x41), Buffer.from(lengthBytes(padding)), frame, Buffer.alloc(padding)]);
  if (padded.length !== bytes) throw new Error(`paddedOpus: could not pad a ${packet.length}-byte packet to ${bytes} bytes (got ${padded.length})`);
  return padded;
}

function voiceDown(speaker: number, sequence: number, packet: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = VOICE_DOWN;
  head.writeUInt16BE(speaker, 1);
  head.writeUInt16BE(sequence & 0xffff, 3);
  return Buffer.concat([head, packet]);
}

/** `frames` 20 ms Opus packets of a steady tone, encoded by the check. */
function tonePackets(hz: number, frames: number, amplitude = 0.3): Buffer[] {
  const encoder = createOpusEncoder({ bitrate: 24_000, fec: false, expectedLossPercent: 0 });
  let phase = 0;
  return Array.from({ length: frames }, () => {
    const frame = Buffer.alloc(FRAME_BYTES);
    for (let i = 0; i < FRAME_SAMPLES; i++) {
      frame.writeInt16LE(Math.round(amplitude * 32_767 * Math.sin(phase)), i * 2);
      phase += (2 * Math.PI * hz) / SAMPLE_RATE;
    }
    return encoder.encode(frame);
  });
}

/** The power at `hz` a client that plays `packets` whole would put in its recording (our decoder's output). */
function expectedPower(packets: Buffer[], hz: number): number {
  const decoder = createOpusDecoder();
  return tonePower(samplesOf(Buffer.concat(packets.map((packet) => decoder.decode(packet)))), hz);
}

const dbOf = (ratio: number) => (ratio > 0 ? 10 * Math.log10(ratio) : -Infinity);
const showDb = (db: number) => (Number.isFinite(db) ? `${db.toFixed(1)} dB` : 'nothing at all');

async function inTempDir<T>(steps: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(joinPath(tmpdir(), 'calls-check-'));
  try {
    return await steps(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A WAV input of the README's test voice held for the whole session: 440 Hz at -12 dBFS, no pause. */
function continuousVoice(dir: string, seconds: number): string {
  const path = joinPath(dir, 'voice.wav');
  writeSpeechWav(path, 0, seconds, 0);
  return path;
}

/**
 * The peer's side of the direct path: once the client's first probe arrives, it probes back every
 * 200 ms from the peer's socket to where that probe came from, each probe saying how many of the
 * client's valid datagrams it has had (`received`), as the README's client does.
 */
class PeerProbes {
  private timer: NodeJS.Timeout | undefined;
  private probe = 0;
  /** performance.now() of the last probe sent. */
  lastSentAt = 0;
  /** performance.now() of the last probe whose `received` was higher than the one before it. */
  lastGrowthSentAt = 0;
  private lastReceivedSent = 0;
  /** Set by stall(): every probe from then on says this `received`, whatever comes. */
  private stalledAt: number | undefined;
  /** Datagrams that came before this moment were lost on the way (a path that opens late): not counted. */
  private openedAt = 0;
  clientAddress: Address | undefined;

  /**
   * @param deaf the peer's probes say received 0 whatever came: our probes do not reach it (a one-way path)
   * @param closed the path is closed until open(): the client's probes are lost, and the peer does not probe
   */
  constructor(
    private readonly peer: DatagramPeer,
    private readonly deaf = false,
    private readonly closed = false,
  ) {
    peer.onDatagram = (datagram) => {
      if (this.clientAddress === undefined && validForCall(datagram) && isProbe(datagram)) {
        this.clientAddress = { address: datagram.address, port: datagram.port };
        if (!this.closed) this.start();
      }
    };
  }

  /** The client's valid call datagrams so far (since the path opened). */
  received(): number {
    return this.peer.received.filter((d) => validForCall(d) && d.at >= this.openedAt).length;
  }

  /** The path opens late: from now on the client's datagrams count, and the peer probes to where its first probe came from. */
  open(): void {
    this.openedAt = performance.now();
    this.start();
  }

  /** The client's datagrams stop reaching the peer while the peer's still reach the client: its probes keep coming, their `received` stays. */
  stall(): void {
    this.stalledAt = this.lastReceivedSent;
  }

  start(): void {
    if (this.timer !== undefined || this.clientAddress === undefined) return;
    const send = () => {
      const received = this.deaf ? 0 : (this.stalledAt ?? this.received());
      this.peer.send(callProbe(CALL_TOKEN, ++this.probe, received), this.clientAddress!);
      this.lastSentAt = performance.now();
      if (received > this.lastReceivedSent) this.lastGrowthSentAt = this.lastSentAt;
      this.lastReceivedSent = received;
    };
    send();
    this.timer = setInterval(send, PROBE_PERIOD_MS);
    this.timer.unref(); // a check that failed half-way must not keep the grader alive
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Waits until the peer has answered the client's probes (so both directions are proven), then one probe period more. */
  async answered(session: CallSession): Promise<Address> {
    await this.peer.waitFor(
      () => (this.clientAddress !== undefined && this.probe >= 2 ? true : undefined),
      FIRST_PROBE_MS + 2_000,
      'a CALL_PROBE (0x05, 17 bytes, the call\'s token) from the client at peer_address',
      'from CALL_START, send CALL_PROBE to peer_address every 200 ms from the socket you use for the server',
      () => `at peer_address: ${describeDatagrams(this.peer.received)}; over TCP: ${describeFrames(session.sent().slice(1), TYPE_NAMES)}`,
    );
    return this.clientAddress!;
  }
}

/** The client's CALL_PROBE as the peer reads it. */
interface ClientProbe {
  datagram: ReceivedDatagram;
  received: number;
}

const probeOf = (datagram: ReceivedDatagram): ClientProbe => ({ datagram, received: datagram.data.readUInt32BE(13) });

/**
 * A direct call whose peer then falls quiet, so that only what the check sends next can grow the
 * client's `received`: the call goes direct (the peer's probes answered), the peer stops probing,
 * and the client's first probe after that (1 s probes once direct) gives the count to grow from.
 */
async function quietDirectCall(session: CallSession, probes: PeerProbes): Promise<{ client: Address; before: ClientProbe }> {
  await pinged(session);
  await ringAndStart(session, { peerAddress: addressOf(session.peer) });
  const client = await probes.answered(session);
  await sleep(PROBE_PERIOD_MS); // both directions proven: the client is direct
  probes.stop();
  const before = await nextClientProbe(session, performance.now() + IN_FLIGHT_MS, 'after the peer stopped probing');
  return { client, before };
}

/** The client's first valid CALL_PROBE at the peer that arrived after `since` (performance.now()). */
function nextClientProbe(session: CallSession, since: number, after: string): Promise<ClientProbe> {
  return session.peer.waitFor(
    () => {
      const found = session.peer.received.find((d) => d.at > since && validForCall(d) && isProbe(d));
      return found === undefined ? undefined : probeOf(found);
    },
    Math.max(1, since - performance.now()) + SETTLED_PROBE_PERIOD_MS + 2 * SCHEDULING_NOISE_MS,
    `a CALL_PROBE (17 bytes, the call's token) from the client ${after}`,
    `once direct, probe the peer every ${SETTLED_PROBE_PERIOD_MS / 1000} s, each probe saying in received how many valid direct datagrams you have had from it`,
    () => `at the peer: ${describeDatagrams(session.peer.received, since)}`,
  );
}

/**
 * What the client's probes say it counted of datagrams the peer sent up to `sentUntil`: the first
 * probe that left after them, or the one after it when the first says fewer than `least` (a client
 * busy when its probe timer fired may read them just after it; the count only grows).
 */
async function countedAfter(session: CallSession, sentUntil: number, before: ClientProbe, least: number, what: string): Promise<ClientProbe> {
  const first = await nextClientProbe(session, sentUntil + IN_FLIGHT_MS, `after ${what}`);
  if (first.received - before.received >= least) return first;
  return nextClientProbe(session, first.datagram.at, `after ${what} (the second one)`);
}

/** Judges the median gap between consecutive datagrams by tolerance.ts's rate rule on `periodMs` (±10% of 1/period). */
function expectPeriod(list: ReceivedDatagram[], periodMs: number, what: string, hint: string): void {
  const gaps = list.slice(1).map((d, i) => d.at - list[i]!.at).sort((a, b) => a - b);
  expect(gaps.length >= 2, `too few ${what} to judge their period`, {
    expected: `at least 3 ${what}, ${showMs(periodMs)} apart`,
    actual: `${list.length}`,
    hint,
  });
  const median = gaps[Math.floor(gaps.length / 2)]!;
  expectDuration(median, periodWindow(periodMs), `the period of ${what}`, `the median gap between ${what} (gaps: ${gaps.map((gap) => Math.round(gap)).join(', ')} ms)`, hint);
}

/** Turns a wait that gave up at the window's end into a failure that names the README's number. */
async function withinWindow<T>(waiting: Promise<T>, window: TimingWindow, what: string, event: string): Promise<T> {
  try {
    return await waiting;
  } catch (error) {
    if (!(error instanceof CheckFailure) || !/^no /.test(error.summary)) throw error;
    throw new CheckFailure(`${what} is not ${showMs(window.documentedMs)}: no ${event} within ${showMs(window.latestMs)}`, {
      ...error.details,
      expected: `${event} after ${showMs(window.documentedMs)} (accepted: ${describeWindow(window)})`,
    });
  }
}

/** The tone powers of a recording, against what a client that plays a stream whole would have. */
function toneLevels(path: string, streams: { hz: number; packets: Buffer[] }[]): { db: number[]; summary: string } {
  const played = samplesOf(readWavPcm(path));
  const db = streams.map(({ hz, packets }) => dbOf(tonePower(played, hz) / expectedPower(packets, hz)));
  return { db, summary: `${played.length} samples (${(played.length / SAMPLE_RATE).toFixed(2)} s); ${streams.map(({ hz }, i) => `${hz} Hz at ${showDb(db[i]!)} against the stream sent`).join('; ')}` };
}

/** Voice sent through the server after `since`: VOICE_UP datagrams, and TCP VOICE frames by their count. */
function relayedVoice(session: CallSession, since: number): ReceivedDatagram[] {
  return session.udp.received.filter((d) => isVoiceUp(d) && d.at >= since);
}

/** How a direct path dies mid-call in a fallback check, and the words of that check's failures. */
interface DirectPathDeath {
  /** Breaks the path (the call is direct); returns the moment the fallback's 3 s count from. */
  breakPath(probes: PeerProbes): number;
  /** The README's limit, as failures name it: "the direct path's silence limit". */
  limit: string;
  /** That moment, after "through the server": "after the peer's last datagram". */
  after: string;
  /** That moment in the transcripts ("at the server since ..."): "the peer went quiet". */
  since: string;
  /** Hints: no VOICE_UP through the server within the window; one outside it. */
  waitHint: string;
  durationHint: string;
  /** Why the client's "relayed through the server (...)" line says it fell back. */
  relayedBecause: string;
  /** Expected and hint when CALL_VOICE goes on after the fallback. */
  noCallVoiceAfter: { expected: string; hint: string };
}

/**
 * The mid-call fallback checks: a call goes direct (the peer's probes answered, 25 CALL_VOICE at
 * the peer), `death` breaks the path, and the client must send its voice through the server
 * DIRECT_SILENCE_MS later (within the window), print "relayed", and send no more CALL_VOICE.
 */
async function expectRelayAfterDirectPathDies(context: CheckContext, death: DirectPathDeath): Promise<void> {
  await withStallWatch(async (watch) => {
    await inTempDir(async (dir) => {
      const window = timingWindow(DIRECT_SILENCE_MS);
      const session = await startSession(context, ['--auto-accept', '--input', continuousVoice(dir, 10), '--output', 'null', '--duration', '8']);
      const probes = new PeerProbes(session.peer);
      let diedAt = 0;
      let relayedAt = 0;
      await orStop(session, async () => {
        await pinged(session);
        await ringAndStart(session, { peerAddress: addressOf(session.peer) });
        await probes.answered(session);
        await session.peer.waitFor(
          () => (session.peer.received.filter(isCallVoice).length >= 25 ? true : undefined),
          3_000,
          '25 CALL_VOICE datagrams at the peer (the direct path in use)',
          'once both directions are proven, send the voice as CALL_VOICE to the peer',
          () => describeDatagrams(session.peer.received),
        );
        diedAt = death.breakPath(probes);
        watch.reset();
        const fallback = `VOICE_UP through the server ${death.after}`;
        const first = await watch.during(withinWindow(
          session.udp.waitFor(
            () => relayedVoice(session, diedAt + IN_FLIGHT_MS)[0],
            Math.max(1, diedAt + window.latestMs - performance.now()),
            fallback,
            death.waitHint,
            () => `at the server since ${death.since}: ${describeDatagrams(session.udp.received, diedAt)}; at the peer since: ${describeDatagrams(session.peer.received, diedAt)}`,
          ),
          window,
          death.limit,
          fallback,
        ));
        relayedAt = first.at;
        watch.judge(() => expectDuration(relayedAt - diedAt, window, death.limit, `the first voice through the server ${death.after}`, death.durationHint));
        await session.client.waitForStdout((out) => /call 7 with Bob: relayed/.test(out), 1_000, `the line "call 7 with Bob: relayed through the server (${death.relayedBecause})"`, 'print the path when it changes');
        await sleep(500);
      });
      probes.stop();
      await finishSession(session, 10_000, 'when --duration 8 is over');
      const lateVoice = session.peer.received.filter((d) => isCallVoice(d) && d.at > relayedAt + IN_FLIGHT_MS);
      expect(lateVoice.length === 0, 'the client still sent CALL_VOICE once relayed', {
        expected: death.noCallVoiceAfter.expected,
        actual: `${lateVoice.length} CALL_VOICE after the fallback; at the peer since: ${describeDatagrams(session.peer.received, relayedAt)}`,
        hint: death.noCallVoiceAfter.hint,
      });
    });
  });
}

/** A CALL_PROBE of the client, and whether it went to the stranger's socket rather than the peer's. */
interface ProbeSeen extends ClientProbe {
  atStranger: boolean;
}

/** The client's first valid CALL_PROBE that arrived after `since`, at the peer's socket or the stranger's. */
function nextProbeAtEither(session: CallSession, stranger: DatagramPeer, since: number, after: string): Promise<ProbeSeen> {
  const firstAfter = (peer: DatagramPeer) => peer.received.find((d) => d.at > since && validForCall(d) && isProbe(d));
  stranger.onDatagram = () => session.peer.nudge(); // the wait below sleeps on the peer's socket: wake it for the stranger's too
  return session.peer.waitFor(
    () => {
      const [atPeer, atStranger] = [firstAfter(session.peer), firstAfter(stranger)];
      if (atStranger !== undefined && (atPeer === undefined || atStranger.at < atPeer.at)) return { ...probeOf(atStranger), atStranger: true };
      return atPeer === undefined ? undefined : { ...probeOf(atPeer), atStranger: false };
    },
    Math.max(1, since - performance.now()) + SETTLED_PROBE_PERIOD_MS + 2 * SCHEDULING_NOISE_MS,
    `a CALL_PROBE (17 bytes, the call's token) from the client ${after}, at the peer's socket or the stranger's`,
    `probe the peer's bound address every ${SETTLED_PROBE_PERIOD_MS / 1000} s once direct or relayed, each probe saying in received how many valid direct datagrams you have had`,
    () => `at the peer: ${describeDatagrams(session.peer.received, since)}; at the stranger: ${describeDatagrams(stranger.received, since)}`,
  );
}

export const clientChecks: Check[] = [
  {
    name: 'client: --call Bob sends LOOKUP {"name":"Bob"}, again about once a second while FOUND says offline, then INVITE {"to":"Bob"} without relay_only, and prints "calling Bob (call 7): ringing" on RINGING',
    subject: 'client',
    async run(context) {
      await withStallWatch(async (watch) => {
        const session = await startSession(context, ['--call', 'Bob', '--input', 'silence', '--output', 'null', '--duration', '5']);
        await orStop(session, async () => {
          const first = await frameOf(session, LOOKUP, 1, 5_000, 'LOOKUP (0x19) after WELCOME', 'with --call NAME, look NAME up once welcomed: LOOKUP {"name": NAME}');
          const firstAt = performance.now();
          watch.reset();
          expect(first.fields.name === 'Bob', 'the LOOKUP does not name Bob', { expected: 'LOOKUP {"name":"Bob"}', actual: `LOOKUP ${first.payload.toString('utf8')}`, hint: 'LOOKUP carries the exact name given to --call' });
          session.send(FOUND, { name: 'Bob', online: false });
          const second = await frameOf(session, LOOKUP, first.index + 1, 4_000, 'a second LOOKUP (0x19) after FOUND {"online":false}', 'while NAME is not online, look it up again once a second (up to 10 s)');
          watch.judge(() => expectDuration(performance.now() - firstAt, timingWindow(1_000), 'the look-up interval while offline', 'the second LOOKUP', 'while NAME is not online, look it up again once a second, up to 10 s'));
          const early = session.sent().findIndex((frame) => frame.type === INVITE);
          expect(early === -1, 'the client sent INVITE although FOUND said Bob is offline', {
            expected: 'no INVITE before a FOUND with "online": true, "state": "available"',
            actual: `after WELCOME: ${describeFrames(session.sent().slice(1), TYPE_NAMES)}`,
            hint: 'call only once the look-up says the user is online and available',
          });
          session.send(FOUND, { name: 'Bob', online: true, state: 'available' });
          const invite = await frameOf(session, INVITE, second.index + 1, 3_000, 'INVITE (0x1B) after FOUND available', 'once FOUND says online and available, send INVITE {"to": NAME}');
          expect(invite.fields.to === 'Bob' && (invite.fields.relay_only === undefined || invite.fields.relay_only === false), 'the INVITE is not {"to":"Bob"}', {
            expected: 'INVITE {"to":"Bob"} (relay_only absent or false without --relay)',
            actual: `INVITE ${invite.payload.toString('utf8')}`,
            hint: '"to" is the name called; relay_only only with --relay',
          });
          session.send(RINGING, { call: 7, to: BOB });
          await session.client.waitForStdout((out) => /calling Bob \(call 7\): ringing/.test(out), 3_000, 'the line "calling Bob (call 7): ringing"', 'on RINGING print: calling NAME (call ID): ringing');
          session.send(CALL_END, { call: 7, reason: 'no_answer' });
        });
        await finishSession(session, 10_000, 'when --duration 5 is over');
      });
    },
  },
  {
    name: `client: --call Bob, answered FOUND offline every time, looks Bob up for about ${CALL_LOOKUP_FOR_MS / 1000} s (${MAX_CALL_LOOKUPS} LOOKUPs at most), prints "not called: nobody named Bob is online" and sends no LOOKUP for ${AFTER_GIVING_UP_MS / 1000} s after`,
    subject: 'client',
    async run(context) {
      await withStallWatch(async (watch) => {
        const session = await startSession(context, ['--call', 'Bob', '--input', 'silence', '--output', 'null']);
        await orStop(session, async () => {
          const window = timingWindow(CALL_LOOKUP_FOR_MS);
          const first = await frameOf(session, LOOKUP, 1, 5_000, 'LOOKUP (0x19) after WELCOME', 'with --call NAME, look NAME up once welcomed: LOOKUP {"name": NAME}');
          const firstAt = performance.now();
          watch.reset();
          const lookupsAt: number[] = [];
          const gaveUp = (stdout: string) => /not called: nobody named Bob is online/.test(stdout);
          let answered = first.index;
          let gaveUpAt: number | undefined;
          // Every LOOKUP gets FOUND offline at once; the watch ends AFTER_GIVING_UP_MS after the
          // give-up line, or when the line has not come by the latest the look-up may last.
          for (;;) {
            const now = performance.now();
            const frames = session.sent();
            for (; answered < frames.length; answered++) {
              if (frames[answered]!.type !== LOOKUP) continue;
              lookupsAt.push(now - firstAt);
              session.send(FOUND, { name: 'Bob', online: false });
            }
            const story = () => `LOOKUPs at ${lookupsAt.map((ms) => showMs(ms)).join(', ')} after the first, each answered FOUND {"name":"Bob","online":false} at once`;
            expect(lookupsAt.length <= MAX_CALL_LOOKUPS, `the --call look-up is not ${CALL_LOOKUP_FOR_MS / 1000} s: the client sent more than ${MAX_CALL_LOOKUPS} LOOKUPs while Bob was offline`, {
              expected: `at most ${MAX_CALL_LOOKUPS} LOOKUPs (one a second for up to ${CALL_LOOKUP_FOR_MS / 1000} s), then the line "not called: nobody named Bob is online"`,
              actual: story(),
              hint: `--call NAME looks NAME up again once a second while FOUND says offline, for up to ${CALL_LOOKUP_FOR_MS / 1000} s, then gives up`,
            });
            expect(!session.connection.isClosed, 'the client closed the connection while looking Bob up', { expected: 'the client stays connected', actual: story(), hint: 'FOUND offline is an answer, not an error' });
            if (gaveUpAt === undefined && gaveUp(session.client.stdout)) gaveUpAt = now;
            if (gaveUpAt !== undefined && now - gaveUpAt >= AFTER_GIVING_UP_MS) break;
            if (gaveUpAt === undefined && now - firstAt > window.latestMs + GIVE_UP_SLACK_MS) {
              expect(false, `the client did not give up looking Bob up within ${showMs(window.latestMs + GIVE_UP_SLACK_MS)}`, {
                expected: `after at most ${MAX_CALL_LOOKUPS} LOOKUPs in about ${CALL_LOOKUP_FOR_MS / 1000} s, the line "not called: nobody named Bob is online"`,
                actual: `${story()}; standard output ends ${JSON.stringify(session.client.stdout.slice(-300))}`,
                hint: 'once the look-up time is over, say so: not called: nobody named NAME is online',
              });
            }
            await sleep(10);
          }
          const lastLookupMs = lookupsAt.at(-1)!;
          const after = lookupsAt.filter((ms) => ms > gaveUpAt! - firstAt);
          expect(after.length === 0, 'the client looked Bob up again after it gave up', {
            expected: `no LOOKUP in the ${AFTER_GIVING_UP_MS / 1000} s after the line "not called: nobody named Bob is online"`,
            actual: `the line came ${showMs(gaveUpAt! - firstAt)} after the first LOOKUP; LOOKUPs at ${lookupsAt.map((ms) => showMs(ms)).join(', ')}`,
            hint: 'giving up ends the look-up: stop its timer',
          });
          watch.judge(() => expectDuration(lastLookupMs, window, 'the --call look-up time', `the last LOOKUP (of ${lookupsAt.length}) while Bob was offline`, `--call NAME looks NAME up again once a second while FOUND says offline, for up to ${CALL_LOOKUP_FOR_MS / 1000} s (${MAX_CALL_LOOKUPS} LOOKUPs at most)`));
          const invites = session.sent().filter((frame) => frame.type === INVITE).length;
          expect(invites === 0, 'the client sent INVITE although FOUND always said Bob is offline', {
            expected: 'no INVITE: Bob was never online',
            actual: `after WELCOME: ${describeFrames(session.sent().slice(1), TYPE_NAMES)}`,
            hint: 'call only once the look-up says the user is online and available',
          });
          session.client.type('/exit\n');
        });
        await finishSession(session, 5_000, 'after /exit');
      });
    },
  },
  {
    name: 'client: --auto-accept answers an INVITE with ACCEPT of that call, without relay_only, and an INVITE that comes during the call with DECLINE of the second call',
    subject: 'client',
    async run(context) {
      const session = await startSession(context, ['--auto-accept', '--input', 'silence', '--output', 'null', '--duration', '5']);
      await orStop(session, async () => {
        await pinged(session);
        const mark = session.sent().length;
        await ringAndStart(session, { call: 7, peerAddress: null });
        const accept = session.sent().slice(mark).find((frame) => frame.type === ACCEPT)!;
        const fields = (jsonObjectOf(accept.payload) as { object: Record<string, unknown> }).object;
        expect(fields.relay_only === undefined || fields.relay_only === false, 'the ACCEPT asks for the relay without --relay', {
          expected: 'ACCEPT {"call":7} (relay_only absent or false)',
          actual: `ACCEPT ${accept.payload.toString('utf8')}`,
          hint: 'relay_only only with --relay: it hides your address, and costs the relay\'s load',
        });
        const during = session.sent().length;
        session.send(INVITE, { call: 8, from: { id: 11, name: 'Cat' } });
        const decline = await frameOf(session, DECLINE, during, 3_000, 'DECLINE (0x1E) {"call":8} for an INVITE that came during call 7', 'a client that gets INVITE while not idle (a server that does not apply busy) sends DECLINE of that call');
        const answers = session.sent().slice(during).filter((frame) => frame.type === ACCEPT);
        expect(decline.fields.call === 8 && answers.length === 0, 'the second INVITE was not declined', {
          expected: 'DECLINE {"call":8} and no ACCEPT of call 8',
          actual: `DECLINE ${decline.payload.toString('utf8')}; ${answers.length} ACCEPT after it came`,
          hint: 'one call at a time: decline an INVITE while ringing or in a call, even with --auto-accept',
        });
        session.send(CALL_END, { call: 7, reason: 'hangup', by: BOB });
      });
      await finishSession(session, 10_000, 'when --duration 5 is over');
    },
  },
  {
    name: 'client: --relay sends relay_only in INVITE and in ACCEPT, prints "relayed", sends no datagram to a peer_address it is given anyway, and its voice goes through the server',
    subject: 'client',
    async run(context) {
      await inTempDir(async (dir) => {
        const session = await startSession(context, ['--relay', '--call', 'Bob', '--auto-accept', '--input', continuousVoice(dir, 8), '--output', 'null', '--duration', '6']);
        await orStop(session, async () => {
          await pinged(session);
          const lookup = await frameOf(session, LOOKUP, 1, 5_000, 'LOOKUP (0x19) after WELCOME', 'with --call NAME, look NAME up once welcomed');
          session.send(FOUND, { name: 'Bob', online: true, state: 'available' });
          const invite = await frameOf(session, INVITE, lookup.index + 1, 3_000, 'INVITE (0x1B) after FOUND available', 'once FOUND says available, send INVITE');
          expect(invite.fields.relay_only === true, 'the INVITE does not carry relay_only with --relay', {
            expected: 'INVITE {"to":"Bob","relay_only":true}',
            actual: `INVITE ${invite.payload.toString('utf8')}`,
            hint: '--relay: relay_only true in every INVITE and ACCEPT, so the server never gives your address away',
          });
          session.send(REFUSED, { request: 'invite', code: 'busy', message: 'Bob is busy' });
          // Then Bob calls; a server that ignores relay_only gives an address anyway: the client must still not use it.
          const mark = session.sent().length;
          const started = await ringAndStart(session, { call: 8, peerAddress: addressOf(session.peer) });
          const accept = session.sent().slice(mark).find((frame) => frame.type === ACCEPT)!;
          expect((jsonObjectOf(accept.payload) as { object: Record<string, unknown> }).object.relay_only === true, 'the ACCEPT does not carry relay_only with --relay', {
            expected: 'ACCEPT {"call":8,"relay_only":true}',
            actual: `ACCEPT ${accept.payload.toString('utf8')}`,
            hint: '--relay: relay_only true in every INVITE and ACCEPT',
          });
          await sleep(2_500);
          const toPeer = session.peer.received;
          const relayed = relayedVoice(session, started.at).length + tcpVoiceAfter(session, started.frames());
          expect(toPeer.length === 0, 'with --relay the client sent datagrams to peer_address', {
            expected: 'nothing at peer_address: --relay never sends a probe or voice to the peer (its address must not be learnt either)',
            actual: describeDatagrams(toPeer),
            hint: 'with --relay (or a null peer_address) send no CALL_PROBE and no CALL_VOICE: the voice goes through the server',
          });
          expect(relayed >= 75, 'with --relay the voice did not go through the server', {
            expected: 'at least 75 voice packets (1.5 s of the 2.5 s waited) through the server as VOICE_UP or TCP VOICE after CALL_START',
            actual: `VOICE_UP after CALL_START: ${relayedVoice(session, started.at).length}; over TCP after CALL_START: ${describeFrames(session.sent().slice(started.frames()), TYPE_NAMES)}`,
            hint: 'relayed: send your voice as in stage 06 (VOICE_UP with the session token); the server forwards it to the peer',
          });
          await session.client.waitForStdout((out) => /call 8 with Bob: relayed/.test(out), 500, 'the line "call 8 with Bob: relayed through the server (--relay)"', 'print the path of the call: with --relay it is relayed from the start');
          session.send(CALL_END, { call: 8, reason: 'hangup', by: BOB });
        });
        await finishSession(session, 10_000, 'when --duration 6 is over');
      });
    },
  },
  {
    name: `client: after CALL_START it sends CALL_PROBE (17 bytes, the call's token, probe +1 each, received 0) to peer_address from the socket of its PINGs, the first within ${FIRST_PROBE_MS} ms, then every ${PROBE_PERIOD_MS} ms while connecting, and no voice to anyone`,
    subject: 'client',
    async run(context) {
      await withStallWatch(async (watch) => {
        await inTempDir(async (dir) => {
          const session = await startSession(context, ['--auto-accept', '--input', continuousVoice(dir, 8), '--output', 'null', '--duration', '4']);
          let started = NOT_STARTED;
          let ping: ReceivedDatagram | undefined;
          await orStop(session, async () => {
            ping = await pinged(session);
            started = await ringAndStart(session, { peerAddress: addressOf(session.peer) });
            watch.reset();
            await sleep(CONNECTING_MS * 0.8 - SCHEDULING_NOISE_MS); // the peer never answers: the whole of connecting, minus the rule's margin
          });
          const watched = performance.now();
          const tcpVoice = tcpVoiceAfter(session, started.frames());
          await finishSession(session, 8_000, 'when --duration 4 is over');
          const startedAt = started.at;
          const atPeer = session.peer.received.filter((d) => d.at <= watched);
          const probes = atPeer.filter(isProbe);
          const story = `at peer_address since CALL_START: ${describeDatagrams(atPeer)}; the client's PINGs came from ${ping!.address}:${ping!.port}`;
          const firstMs = probes.length > 0 ? probes[0]!.at - startedAt : Infinity;
          watch.judge(() => expect(firstMs <= FIRST_PROBE_MS, `no CALL_PROBE within ${FIRST_PROBE_MS} ms of CALL_START`, {
            expected: `a CALL_PROBE at peer_address within ${FIRST_PROBE_MS} ms of CALL_START`,
            actual: `${Number.isFinite(firstMs) ? `the first after ${Math.round(firstMs)} ms` : 'none'}; ${story}`,
            hint: 'both send first (hole punching): probe the peer at once on CALL_START, then every 200 ms',
          }));
          const callVoice = atPeer.filter(isCallVoice);
          const relayed = relayedVoice(session, startedAt + IN_FLIGHT_MS).filter((d) => d.at <= watched);
          expect(callVoice.length === 0 && relayed.length === 0 && tcpVoice === 0, 'the client sent voice while connecting', {
            expected: `no voice while connecting (the first ${showMs(CONNECTING_MS * 0.8 - SCHEDULING_NOISE_MS)} after CALL_START): no CALL_VOICE, no VOICE_UP, no TCP VOICE; its input is a steady tone`,
            actual: `${callVoice.length} CALL_VOICE at the peer, ${relayed.length} VOICE_UP and ${tcpVoice} TCP VOICE after CALL_START; ${story}`,
            hint: 'hold your voice while connecting (the microphone\'s frames are dropped): it goes direct once both directions are proven, or through the server after 3 s',
          });
          const wrong = atPeer.find((d) => !isProbe(d) || d.data.length !== 17 || !d.data.subarray(1, 9).equals(CALL_TOKEN) || d.address !== ping!.address || d.port !== ping!.port);
          expect(wrong === undefined, 'a datagram at peer_address is not a CALL_PROBE with the token from the client\'s server socket', {
            expected: `only CALL_PROBE: 05 | ${CALL_TOKEN.toString('hex')} | probe u32 | received u32 (17 bytes), each from ${ping!.address}:${ping!.port} (where the PINGs came from: the NAT mapping the server announced)`,
            actual: wrong === undefined ? story : `${showBytes(wrong.data, 24)} from ${wrong.address}:${wrong.port}; ${story}`,
            hint: 'send probes from the same UDP socket you use for the server, so a NAT maps them to the port the server saw; nothing but probes while connecting',
          });
          const numbers = probes.map((d) => d.data.readUInt32BE(9));
          const counts = probes.map((d) => d.data.readUInt32BE(13));
          expect(numbers.every((n, i) => i === 0 || n === numbers[i - 1]! + 1) && counts.every((c) => c === 0), 'the probes\' numbers do not go up by 1, or their received is not 0', {
            expected: 'probe numbers n, n+1, n+2 ... and received 0 in each (the peer sent nothing)',
            actual: `probe numbers ${numbers.join(', ')}; received ${counts.join(', ')}`,
            hint: 'probe: +1 per probe sent; received: the valid datagrams you have had from the peer in this call',
          });
          watch.judge(() => expectPeriod(probes, PROBE_PERIOD_MS, 'CALL_PROBEs while connecting', 'while connecting, probe every 200 ms (15 probes in 3 s cover round trips up to ~1 s)'));
        });
      });
    },
  },
  {
    name: `client: once the peer's probes say received > 0 it prints "direct" and sends its voice only as CALL_VOICE to the peer, with the call's token and consecutive sequence numbers, decoding to its input's tone at its level`,
    subject: 'client',
    async run(context) {
      await inTempDir(async (dir) => {
        const session = await startSession(context, ['--auto-accept', '--input', continuousVoice(dir, 8), '--output', 'null', '--duration', '5']);
        const probes = new PeerProbes(session.peer);
        let started = NOT_STARTED;
        await orStop(session, async () => {
          await pinged(session);
          started = await ringAndStart(session, { peerAddress: addressOf(session.peer) });
          await probes.answered(session);
          await session.client.waitForStdout((out) => /call 7 with Bob: direct/.test(out), 3_000, 'the line "call 7 with Bob: direct to ADDRESS:PORT"', 'once you have had a valid datagram from the peer and its latest probe says received > 0, the path is direct: say so');
          await session.peer.waitFor(
            () => (session.peer.received.filter(isCallVoice).length >= 75 ? true : undefined),
            3_000,
            '75 CALL_VOICE datagrams (1.5 s of voice) at the peer',
            'direct: send each Opus packet as 06 | call token | sequence u16 | packet to the peer\'s address',
            () => describeDatagrams(session.peer.received),
          );
        });
        await finishSession(session, 8_000, 'when --duration 5 is over'); // the peer probes to the end: the path stays direct
        probes.stop();
        const voice = session.peer.received.filter(isCallVoice);
        const directAt = voice[0]!.at;
        const story = `at the peer: ${describeDatagrams(session.peer.received)}; at the server after the first CALL_VOICE: ${describeDatagrams(session.udp.received, directAt + IN_FLIGHT_MS)}`;
        const badToken = voice.find((d) => d.data.length < 12 || !d.data.subarray(1, 9).equals(CALL_TOKEN));
        expect(badToken === undefined, 'a CALL_VOICE does not carry the call\'s token', { expected: `06 | ${CALL_TOKEN.toString('hex')} | sequence u16 | packet`, actual: showBytes(badToken?.data), hint: 'CALL_VOICE carries CALL_START\'s token (16 hex digits decoded to 8 bytes)' });
        const sequences = voice.map((d) => d.data.readUInt16BE(9));
        const gap = sequences.findIndex((s, i) => i > 0 && s !== ((sequences[i - 1]! + 1) & 0xffff));
        expect(gap === -1, 'the CALL_VOICE sequence numbers are not consecutive', {
          expected: 'each CALL_VOICE\'s sequence (bytes 9-10) is the previous one + 1',
          actual: `CALL_VOICE ${gap} has sequence ${sequences[gap]} after ${sequences[gap - 1]}`,
          hint: 'one sequence counter for all your voice packets, +1 per packet, whichever path',
        });
        const decoder = createOpusDecoder();
        const middle = samplesOf(Buffer.concat(voice.slice(10, 70).map((d) => decoder.decode(d.data.subarray(11)))));
        const hz = dominantHz(middle);
        const level = levelDb(middle);
        expect(Math.abs(hz - INPUT_HZ) <= 10 && Math.abs(level - INPUT_DB) <= LEVEL_TOLERANCE_DB, 'the CALL_VOICE packets do not decode to the input\'s tone', {
          expected: `a ${INPUT_HZ} Hz tone (±10 Hz) at ${INPUT_DB} dBFS (±${LEVEL_TOLERANCE_DB} dB)`,
          actual: `about ${hz.toFixed(0)} Hz at ${level.toFixed(1)} dBFS`,
          hint: 'encode the input frames with Opus, 48 kHz mono, 20 ms, one packet per CALL_VOICE',
        });
        const relayed = relayedVoice(session, directAt + IN_FLIGHT_MS).length;
        const tcpVoice = tcpVoiceAfter(session, started.frames());
        expect(relayed === 0 && tcpVoice === 0, 'the client sent its voice through the server too while direct', {
          expected: 'no VOICE_UP (and no TCP VOICE) once the voice goes as CALL_VOICE',
          actual: `${relayed} VOICE_UP, ${tcpVoice} TCP VOICE; ${story}`,
          hint: 'a client in direct sends no VOICE_UP: the relay is for calls whose direct path failed',
        });
      });
    },
  },
  {
    name: `client: the peer's CALL_VOICE plays at full level; CALL_VOICE with a wrong token, or replayed from a stranger's socket, plays ${UNDER_DB} dB under, and a stranger's old probe does not draw the client's datagrams`,
    subject: 'client',
    async run(context) {
      await inTempDir(async (dir) => {
        const output = joinPath(dir, 'heard.wav');
        const peerTone = tonePackets(PEER_HZ, 75);
        const wrongTone = tonePackets(WRONG_TOKEN_HZ, 50);
        const strangerTone = tonePackets(STRANGER_HZ, 50);
        const stranger = await DatagramPeer.start();
        try {
          const session = await startSession(context, ['--auto-accept', '--input', 'silence', '--output', output, '--duration', '7']);
          const probes = new PeerProbes(session.peer);
          let strangerFrom = 0;
          await orStop(session, async () => {
            await pinged(session);
            await ringAndStart(session, { peerAddress: addressOf(session.peer) });
            const client = await probes.answered(session);
            await sleep(PROBE_PERIOD_MS); // both directions proven: the client is direct
            await session.peer.sendPaced(peerTone.map((packet, i) => [callVoice(CALL_TOKEN, 1000 + i, packet)]), client, BURST);
            // The next sequence numbers, from the peer's own address, with a token one bit off.
            await session.peer.sendPaced(wrongTone.map((packet, i) => [callVoice(WRONG_TOKEN, 1075 + i, packet)]), client, BURST);
            // A stranger who learnt the token: an old probe number (must not rebind), then the peer's
            // sequence numbers again (already had: replayed). The peer stays quiet meanwhile, so a
            // client that moved to the stranger's address has a probe period to show it.
            probes.stop();
            strangerFrom = performance.now();
            stranger.send(callProbe(CALL_TOKEN, 1, 1), client);
            await stranger.sendPaced(strangerTone.map((packet, i) => [callVoice(CALL_TOKEN, 1025 + i, packet)]), client, BURST);
            await sleep(SETTLED_PROBE_PERIOD_MS * 0.5 + SCHEDULING_NOISE_MS);
            probes.start();
          });
          probes.stop();
          await finishSession(session, 12_000, 'when --duration 7 is over');
          const { db, summary } = toneLevels(output, [{ hz: PEER_HZ, packets: peerTone }, { hz: WRONG_TOKEN_HZ, packets: wrongTone }, { hz: STRANGER_HZ, packets: strangerTone }]);
          const [peerDb, wrongDb, strangerDb] = db as [number, number, number];
          expect(Math.abs(peerDb) <= LEVEL_TOLERANCE_DB, 'the peer\'s CALL_VOICE was not played at full level', {
            expected: `the peer's ${PEER_HZ} Hz tone (75 CALL_VOICE with the call's token) in the output WAV within ${LEVEL_TOLERANCE_DB} dB of its level`,
            actual: summary,
            hint: 'direct: put each valid CALL_VOICE into the peer\'s jitter buffer (the one its relayed VOICE_DOWN would use) and play it',
          });
          expect(wrongDb <= -UNDER_DB, 'CALL_VOICE with a wrong token was played', {
            expected: `the ${WRONG_TOKEN_HZ} Hz tone (50 CALL_VOICE from the peer's address, the token's last bit flipped) at least ${UNDER_DB} dB under its level`,
            actual: summary,
            hint: 'drop every direct datagram whose 8 token bytes are not the call\'s (compare all of them, in constant time)',
          });
          expect(strangerDb <= -UNDER_DB, 'CALL_VOICE replayed from a stranger\'s socket was played', {
            expected: `the ${STRANGER_HZ} Hz tone (50 CALL_VOICE with the token but sequence numbers already had, from another socket) at least ${UNDER_DB} dB under its level`,
            actual: summary,
            hint: 'keep a 64-packet replay window per call (stage 06\'s): a sequence already had is dropped, and never rebinds the peer\'s address',
          });
          expect(stranger.received.length === 0, 'a stranger\'s old probe drew the client\'s datagrams', {
            expected: `nothing at the stranger's socket after its CALL_PROBE with an old probe number (1): the peer's bound address stays`,
            actual: `at the stranger since ${Math.round(performance.now() - strangerFrom)} ms ago: ${describeDatagrams(stranger.received)}`,
            hint: 'a valid-token datagram from another address rebinds the peer only if it is new: a probe number above the last, or a sequence that passes the replay window',
          });
        } finally {
          stranger.close();
        }
      });
    },
  },
  {
    name: `client: a CALL_VOICE of ${MAX_CALL_VOICE_BYTES} bytes (the most: its Opus packet padded to ${MAX_OPUS_PACKET_BYTES}) plays at full level; one of ${MAX_CALL_VOICE_BYTES + 1} bytes plays ${UNDER_DB} dB under`,
    subject: 'client',
    async run(context) {
      await inTempDir(async (dir) => {
        const output = joinPath(dir, 'heard.wav');
        // Opus's own padding makes a packet of any length that decodes to the same 20 ms: libopus
        // plays one over 1275 bytes too, so only the client's size check keeps the long one out.
        const largestTone = tonePackets(LARGEST_HZ, 75);
        const oversizeTone = tonePackets(OVERSIZE_HZ, 50);
        const session = await startSession(context, ['--auto-accept', '--input', 'silence', '--output', output, '--duration', '6']);
        const probes = new PeerProbes(session.peer);
        await orStop(session, async () => {
          await pinged(session);
          await ringAndStart(session, { peerAddress: addressOf(session.peer) });
          const client = await probes.answered(session);
          await sleep(PROBE_PERIOD_MS); // both directions proven: the client is direct
          await session.peer.sendPaced(largestTone.map((packet, i) => [callVoice(CALL_TOKEN, 1000 + i, paddedOpus(packet, MAX_OPUS_PACKET_BYTES))]), client, BURST);
          await session.peer.sendPaced(oversizeTone.map((packet, i) => [callVoice(CALL_TOKEN, 1075 + i, paddedOpus(packet, MAX_OPUS_PACKET_BYTES + 1))]), client, BURST);
        });
        probes.stop();
        await finishSession(session, 11_000, 'when --duration 6 is over');
        const { db, summary } = toneLevels(output, [{ hz: LARGEST_HZ, packets: largestTone }, { hz: OVERSIZE_HZ, packets: oversizeTone }]);
        const [largestDb, oversizeDb] = db as [number, number];
        const hint = `a CALL_VOICE is ${MIN_CALL_VOICE_BYTES}-${MAX_CALL_VOICE_BYTES} bytes (an Opus packet of 1-${MAX_OPUS_PACKET_BYTES}); drop one of another size (bad_size) before decoding it`;
        expect(Math.abs(largestDb) <= LEVEL_TOLERANCE_DB, `a CALL_VOICE of ${MAX_CALL_VOICE_BYTES} bytes was not played at full level: the size limit is ${MAX_CALL_VOICE_BYTES} bytes`, {
          expected: `the peer's ${LARGEST_HZ} Hz tone (75 CALL_VOICE of ${MAX_CALL_VOICE_BYTES} bytes with the call's token) within ${LEVEL_TOLERANCE_DB} dB of its level`,
          actual: summary,
          hint,
        });
        expect(oversizeDb <= -UNDER_DB, `a CALL_VOICE of ${MAX_CALL_VOICE_BYTES + 1} bytes was played: the size limit is ${MAX_CALL_VOICE_BYTES} bytes`, {
          expected: `the ${OVERSIZE_HZ} Hz tone (50 CALL_VOICE of ${MAX_CALL_VOICE_BYTES + 1} bytes from the peer, with the token and new sequence numbers) at least ${UNDER_DB} dB under its level`,
          actual: summary,
          hint,
        });
      });
    },
  },
  {
    name: `client: CALL_PROBEs of ${CALL_PROBE_BYTES + 1} bytes (a probe is exactly ${CALL_PROBE_BYTES}) with the call's token, saying received > 0, do not make the path direct: no CALL_VOICE to the peer`,
    subject: 'client',
    async run(context) {
      await inTempDir(async (dir) => {
        const session = await startSession(context, ['--auto-accept', '--input', continuousVoice(dir, 6), '--output', 'null', '--duration', '4']);
        let longProbes = 0;
        let timer: NodeJS.Timeout | undefined;
        try {
          await orStop(session, async () => {
            await pinged(session);
            await ringAndStart(session, { peerAddress: addressOf(session.peer) });
            const first = await session.peer.waitFor(
              () => session.peer.received.find((d) => validForCall(d) && isProbe(d)),
              FIRST_PROBE_MS + 2_000,
              'a CALL_PROBE (0x05, 17 bytes, the call\'s token) from the client at peer_address',
              'from CALL_START, send CALL_PROBE to peer_address every 200 ms from the socket you use for the server',
              () => `at peer_address: ${describeDatagrams(session.peer.received)}`,
            );
            // A peer that proves both directions, but with a byte too many in every probe: were they
            // 17 bytes, the client would be direct within a probe period (the check before this one).
            const send = () => {
              const received = session.peer.received.filter(validForCall).length;
              session.peer.send(Buffer.concat([callProbe(CALL_TOKEN, ++longProbes, received), Buffer.of(0)]), { address: first.address, port: first.port });
            };
            send();
            timer = setInterval(send, PROBE_PERIOD_MS);
            await sleep(CONNECTING_MS * 0.8 - SCHEDULING_NOISE_MS); // before the fall to relayed: direct is the only way out
          });
        } finally {
          clearInterval(timer);
        }
        await finishSession(session, 8_000, 'when --duration 4 is over');
        const callVoice = session.peer.received.filter(isCallVoice);
        expect(callVoice.length === 0 && !/call 7 with Bob: direct/.test(session.client.stdout), `the client went direct on CALL_PROBEs of ${CALL_PROBE_BYTES + 1} bytes: a CALL_PROBE is exactly ${CALL_PROBE_BYTES} bytes`, {
          expected: `no CALL_VOICE at the peer and no line "direct": ${longProbes} probes of ${CALL_PROBE_BYTES + 1} bytes are dropped (bad_size), so nothing proves the path`,
          actual: `at the peer: ${describeDatagrams(session.peer.received)}`,
          hint: `a CALL_PROBE is exactly ${CALL_PROBE_BYTES} bytes (type, token, probe u32, received u32); drop one of another size before reading it`,
        });
      });
    },
  },
  {
    name: `client: a flood of ${CALL_VOICE_FLOOD} CALL_VOICE from the peer counts in the received of its probes only as far as its bucket lets (${CALL_VOICE_BUCKET.perSecond} a second, burst ${CALL_VOICE_BUCKET.burst})`,
    subject: 'client',
    async run(context) {
      const flood = tonePackets(PEER_HZ, CALL_VOICE_FLOOD);
      const session = await startSession(context, ['--auto-accept', '--input', 'silence', '--output', 'null', '--duration', '7']);
      const probes = new PeerProbes(session.peer);
      let count: { before: ClientProbe; after: ClientProbe; firstSentAt: number; lastSentAt: number; watch: StallWatch } | undefined;
      await orStop(session, async () => {
        const { client, before } = await quietDirectCall(session, probes);
        // Just before the client's next probe is due (1 s after `before`), so that the probe counted
        // comes soon after: a correct client's count is then bounded closely even if the grader stalled.
        await sleep(Math.max(0, before.datagram.at + SETTLED_PROBE_PERIOD_MS - FLOOD_LEAD_MS - performance.now()));
        count = await withStallWatch(async (watch) => {
          // All at once but for a millisecond's pause every 50, so the kernel's receive buffer drops none.
          const firstSentAt = performance.now();
          for (const [i, packet] of flood.entries()) {
            session.peer.send(callVoice(CALL_TOKEN, 1000 + i, packet), client);
            if (i % 50 === 49) await sleep(1);
          }
          const lastSentAt = performance.now();
          const after = await countedAfter(session, lastSentAt, before, CALL_VOICE_BUCKET.burst, `${CALL_VOICE_FLOOD} CALL_VOICE`);
          return { before, after, firstSentAt, lastSentAt, watch };
        });
      });
      probes.stop();
      await finishSession(session, 12_000, 'when --duration 7 is over');
      const { before, after, firstSentAt, lastSentAt, watch } = count!;
      const counted = after.received - before.received;
      const unmeasured = new Unmeasured();
      // The peer sent no CALL_VOICE before the flood, so the bucket was full: the burst at least.
      expectBucketLimit({ passed: counted, firstSentAt, lastSentAt, lastSeenAt: after.datagram.at, readLater: true }, {
        bucket: CALL_VOICE_BUCKET,
        least: CALL_VOICE_BUCKET.burst,
        brokenPasses: 2 * CALL_VOICE_BUCKET.burst,
        broken: 'a bucket of twice the burst',
        measures: `whether the client takes at most ${CALL_VOICE_BUCKET.perSecond} CALL_VOICE a second`,
        summary: `the client's probes counted ${counted} of ${CALL_VOICE_FLOOD} CALL_VOICE sent at once: its CALL_VOICE bucket is not ${CALL_VOICE_BUCKET.perSecond} a second, burst ${CALL_VOICE_BUCKET.burst}`,
        expected: (allowed) => `received to grow by ${allowed} between the client's probes around the flood (the peer sent nothing else)`,
        actual: `received ${before.received} in ${showBytes(before.datagram.data)}, then ${after.received} in ${showBytes(after.datagram.data)}: ${counted} counted`,
        hint: `take each new CALL_VOICE from the peer only with a token of a bucket of ${CALL_VOICE_BUCKET.burst}, refilled ${CALL_VOICE_BUCKET.perSecond} a second; drop the rest (rate_limited) before counting it in received`,
      }, unmeasured, watch);
      unmeasured.settle();
    },
  },
  {
    // "a rate-limited burst never moves it" (What the client does with each direct datagram). Timing
    // cannot make a stranger's datagrams certain to find the bucket empty (it refills 55 a second,
    // by the client's clock), but the count can tell afterwards whether they did: the peer's 50 go
    // into a full bucket, so all 50 are taken whatever the timing, and the stranger's go after them
    // (the peer's socket had handed them all to the kernel). So `received` grew by exactly 50 when
    // none of the stranger's was taken, and then the client must still probe the peer; a probe at
    // the stranger's socket saying 50 or less is a client moved by a dropped datagram. A client that
    // reads at once (the timing rule: within 100 ms) takes of the stranger's at most what its bucket
    // refilled while the grader sent both bursts and 100 ms more (bucket-limit.ts): more is a FAIL,
    // unless the grader's own timers were late too (a StallWatch), which voids the try. A try in
    // which the client took some, but no more than that, proves nothing: moving was right. The
    // client is bound back to the peer (a new probe from it) and, once the bucket is full again,
    // tried anew; after STRANGER_BURST_TRIES such tries, a SKIP that says why each try proved nothing.
    name: `client: a burst of ${STRANGER_BURST} CALL_VOICE from another address, right after the peer's ${CALL_VOICE_BUCKET.burst} emptied the client's bucket (burst ${CALL_VOICE_BUCKET.burst}), is dropped and does not move the peer's bound address: the client's next two probes go to the peer, counting the peer's ${CALL_VOICE_BUCKET.burst} only`,
    subject: 'client',
    async run(context) {
      const { burst } = CALL_VOICE_BUCKET;
      const peerTone = tonePackets(PEER_HZ, burst);
      const strangerTone = tonePackets(STRANGER_HZ, STRANGER_BURST);
      const stranger = await DatagramPeer.start();
      const unjudged: string[] = [];
      let judged = false;
      try {
        const session = await startSession(context, ['--auto-accept', '--input', 'silence', '--output', 'null']);
        const probes = new PeerProbes(session.peer);
        await thenExit(session, () => withStallWatch(async (watch) => {
          const quiet = await quietDirectCall(session, probes);
          const { client } = quiet;
          let before: ClientProbe = quiet.before;
          let sequence = 1000;
          for (let attempt = 1; attempt <= STRANGER_BURST_TRIES && !judged; attempt++) {
            if (attempt > 1) {
              // A new probe from the peer's own socket binds the client back to it; then the bucket refills.
              session.peer.send(callProbe(CALL_TOKEN, 1000 + attempt, session.peer.received.filter(validForCall).length), client);
              await sleep(BUCKET_REFILL_MS);
              const start = await nextProbeAtEither(session, stranger, performance.now(), `${showMs(BUCKET_REFILL_MS)} after the peer's new probe`);
              expect(!start.atStranger, 'a new probe from the peer\'s own socket did not bind the client back to it', {
                expected: `the client's probes at the peer's socket again after the peer's CALL_PROBE number ${1000 + attempt} from there`,
                actual: `a probe at the stranger's socket: ${showBytes(start.datagram.data)}`,
                hint: 'a valid datagram that is new (a probe number above the last) from another address than the bound one binds that address',
              });
              before = start;
            }
            watch.reset();
            const firstSentAt = performance.now();
            await session.peer.sendAll(peerTone.map((packet, i) => callVoice(CALL_TOKEN, sequence + i, packet)), client);
            await stranger.sendAll(strangerTone.map((packet, i) => callVoice(CALL_TOKEN, sequence + burst + i, packet)), client);
            const sentUntil = performance.now();
            sequence += burst + STRANGER_BURST;
            let first = await nextProbeAtEither(session, stranger, sentUntil + IN_FLIGHT_MS, `after the peer's ${burst} CALL_VOICE and the stranger's ${STRANGER_BURST}`);
            if (first.received - before.received < burst) first = await nextProbeAtEither(session, stranger, first.datagram.at, 'after the bursts (the second one)');
            const second = await nextProbeAtEither(session, stranger, first.datagram.at, 'after the bursts (the one after the judged one)');
            const counted = (probe: ProbeSeen) => probe.received - before.received;
            const story = `received ${before.received} in the client's probe before the bursts (at the peer), then ${[first, second].map((probe) => `${probe.received} at the ${probe.atStranger ? 'STRANGER' : 'peer'}`).join(', then ')}`;
            const movedEarly = stranger.received.find((d) => d.at >= firstSentAt && validForCall(d) && isProbe(d) && probeOf(d).received - before.received <= burst);
            expect(movedEarly === undefined, `the client moved the peer's address to a stranger whose CALL_VOICE its bucket dropped (rate_limited): a rate-limited datagram never moves it`, {
              expected: `the client's probes at the peer's socket while received has grown by ${burst} or less: the peer's ${burst} CALL_VOICE (into a full bucket: all taken), none of the stranger's ${STRANGER_BURST} sent right after (the bucket empty)`,
              actual: `a probe at the stranger's socket saying received ${movedEarly === undefined ? '' : probeOf(movedEarly).received} (${showBytes(movedEarly?.data)}); ${story}`,
              hint: `check the CALL_VOICE bucket (check 4) before anything else the datagram does: only a datagram that passes all five checks counts in received and, from another address, becomes the peer's bound one`,
            });
            expect(counted(first) >= burst, `the client counted fewer than ${burst} of the peer's CALL_VOICE sent into its full bucket: the burst is ${burst}`, {
              expected: `received to grow by ${burst} at least: no CALL_VOICE had come for ${showMs(BUCKET_REFILL_MS)} or more (none at all before the first try), so the bucket held its ${burst} tokens`,
              actual: story,
              hint: `take each new CALL_VOICE from the peer with a token of a bucket of ${burst}, refilled ${CALL_VOICE_BUCKET.perSecond} a second (it starts full)`,
            });
            const sendMs = sentUntil - firstSentAt;
            // What a client reading at once took of the stranger's: the refill while both bursts were sent, and the timing rule's noise.
            const refillAllowed = mostLetThrough(CALL_VOICE_BUCKET, sendMs + SCHEDULING_NOISE_MS) - burst;
            const took = counted(second) - burst;
            const graderLate = watch.worstLateMs > SCHEDULING_NOISE_MS;
            expect(took <= refillAllowed || graderLate, `the client took ${took} of the stranger's ${STRANGER_BURST} CALL_VOICE sent right after the peer's ${burst} emptied its bucket: its CALL_VOICE bucket is not ${CALL_VOICE_BUCKET.perSecond} a second, burst ${burst}`, {
              expected: `at most ${refillAllowed} of the stranger's taken (received to grow by ${burst} to ${burst + refillAllowed}): ${CALL_VOICE_BUCKET.perSecond}/s × (${showMs(sendMs)} the grader took to send both bursts + ${SCHEDULING_NOISE_MS} ms the timing rule allows for reading them "at once"), rounded up, + ${GRANULARITY_TOKENS} for timer granularity`,
              actual: `${story}; the grader's own 20 ms timer was at most ${Math.round(watch.worstLateMs)} ms late meanwhile`,
              hint: `take each new CALL_VOICE from the peer only with a token of a bucket of ${burst}, refilled ${CALL_VOICE_BUCKET.perSecond} a second; drop the rest (rate_limited), whatever address it comes from`,
            });
            if (!first.atStranger && !second.atStranger && counted(first) === burst && counted(second) === burst) {
              judged = true;
            } else if (took > refillAllowed) {
              unjudged.push(`try ${attempt}: ${story}, so ${took} of the stranger's were taken, more than the ${refillAllowed} its refill allows in ${showMs(sendMs)} + ${SCHEDULING_NOISE_MS} ms, but the grader's own timers were ${Math.round(watch.worstLateMs)} ms late meanwhile (the machine stalled)`);
            } else {
              unjudged.push(`try ${attempt}: ${story}, so ${took} of the stranger's were taken with tokens that refilled while the client read the bursts (at most ${refillAllowed} may, in the ${showMs(sendMs)} the grader took to send them + ${SCHEDULING_NOISE_MS} ms)`);
            }
          }
        }));
      } finally {
        stranger.close();
      }
      if (!judged) {
        throw new CheckSkipped(`whether a rate-limited burst moves the peer's address could not be judged: in each of ${STRANGER_BURST_TRIES} tries the client took some of the stranger's CALL_VOICE, as a correct bucket may when a token refills before it reads them, and moving to a stranger whose datagram was taken is right (${unjudged.join('; ')}); grade again on a quieter machine`);
      }
    },
  },
  {
    name: `client: CALL_VOICE of ${MIN_CALL_VOICE_BYTES - 1} bytes (no Opus packet) do not count in the received of its probes; CALL_VOICE of ${MIN_CALL_VOICE_BYTES} bytes (the least: a 1-byte Opus packet) do`,
    subject: 'client',
    async run(context) {
      // Fewer than any bucket's burst (the server's 10 among them), so only the size can drop them.
      const short = 4;
      const least = 5;
      const tocOnly = Buffer.of(tonePackets(PEER_HZ, 1)[0]![0]! & 0xfc); // code 0 with an empty frame: a valid 1-byte Opus packet
      const session = await startSession(context, ['--auto-accept', '--input', 'silence', '--output', 'null', '--duration', '7']);
      const probes = new PeerProbes(session.peer);
      let count: { before: ClientProbe; after: ClientProbe } | undefined;
      await orStop(session, async () => {
        const { client, before } = await quietDirectCall(session, probes);
        for (let i = 0; i < short; i++) session.peer.send(callVoice(CALL_TOKEN, 1000 + i, Buffer.alloc(0)), client);
        for (let i = 0; i < least; i++) session.peer.send(callVoice(CALL_TOKEN, 1000 + short + i, tocOnly), client);
        const after = await countedAfter(session, performance.now(), before, least, `${short} CALL_VOICE of ${MIN_CALL_VOICE_BYTES - 1} bytes and ${least} of ${MIN_CALL_VOICE_BYTES}`);
        count = { before, after };
      });
      probes.stop();
      await finishSession(session, 12_000, 'when --duration 7 is over');
      const { before, after } = count!;
      const counted = after.received - before.received;
      const actual = `received ${before.received} in ${showBytes(before.datagram.data)}, then ${after.received} in ${showBytes(after.datagram.data)}: ${counted} counted`;
      const expected = `received to grow by exactly ${least} (the ${least} CALL_VOICE of ${MIN_CALL_VOICE_BYTES} bytes; the ${short} of ${MIN_CALL_VOICE_BYTES - 1} bytes dropped, bad_size), with nothing else sent by the peer`;
      const hint = `a CALL_VOICE is ${MIN_CALL_VOICE_BYTES}-${MAX_CALL_VOICE_BYTES} bytes (type, token, sequence, an Opus packet of 1-${MAX_OPUS_PACKET_BYTES}); drop one of another size (bad_size) before counting it in received`;
      expect(counted <= least, `CALL_VOICE of ${MIN_CALL_VOICE_BYTES - 1} bytes counted in received: a CALL_VOICE is ${MIN_CALL_VOICE_BYTES} bytes at least`, { expected, actual, hint });
      expect(counted === least, `CALL_VOICE of ${MIN_CALL_VOICE_BYTES} bytes did not count in received: a CALL_VOICE of ${MIN_CALL_VOICE_BYTES} bytes (a 1-byte Opus packet) is valid`, { expected, actual, hint });
    },
  },
  {
    name: `client: with a peer that never answers, ${CONNECTING_MS / 1000} s after CALL_START it prints "relayed" and sends its voice through the server, never as CALL_VOICE; probes go on every ${SETTLED_PROBE_PERIOD_MS / 1000} s; VOICE_DOWN from the peer plays at full level, another speaker's ${UNDER_DB} dB under`,
    subject: 'client',
    async run(context) {
      await withStallWatch(async (watch) => {
        await inTempDir(async (dir) => {
          const output = joinPath(dir, 'heard.wav');
          const peerTone = tonePackets(PEER_HZ, 50);
          const otherTone = tonePackets(OTHER_SPEAKER_HZ, 50);
          const window = timingWindow(CONNECTING_MS);
          const session = await startSession(context, ['--auto-accept', '--input', continuousVoice(dir, 10), '--output', output, '--duration', '9']);
          let startedAt = 0;
          let relayedAt = 0;
          await orStop(session, async () => {
            const ping = await pinged(session);
            startedAt = (await ringAndStart(session, { peerAddress: addressOf(session.peer) })).at;
            watch.reset();
            const first = await watch.during(withinWindow(
              session.udp.waitFor(
                () => relayedVoice(session, startedAt + IN_FLIGHT_MS)[0],
                window.latestMs,
                'VOICE_UP through the server after CALL_START',
                'with no valid datagram from the peer 3 s after CALL_START, the path is relayed: send your voice as VOICE_UP',
                () => `at the server since CALL_START: ${describeDatagrams(session.udp.received, startedAt)}; at the peer: ${describeDatagrams(session.peer.received)}; TCP: ${describeFrames(session.sent().slice(1), TYPE_NAMES)}`,
              ),
              window,
              'the connecting time',
              'VOICE_UP through the server after CALL_START (the peer never answered)',
            ));
            relayedAt = first.at;
            watch.judge(() => expectDuration(relayedAt - startedAt, window, 'the connecting time', 'the first voice through the server after CALL_START', 'hold the voice while connecting; after 3 s without both directions proven, relay it through the server'));
            await session.client.waitForStdout((out) => /call 7 with Bob: relayed/.test(out), 1_000, 'the line "call 7 with Bob: relayed through the server (no direct packet within 3 s)"', 'print the path when it changes');
            await session.udp.sendPaced(peerTone.map((packet, i) => [voiceDown(BOB.id, 300 + i, packet), voiceDown(CYD.id, 800 + i, otherTone[i]!)]), ping, BURST);
          });
          await finishSession(session, 14_000, 'when --duration 9 is over');
          const atPeer = session.peer.received;
          const callVoice = atPeer.filter(isCallVoice);
          expect(callVoice.length === 0, 'the client sent CALL_VOICE to a peer that never proved the direct path', {
            expected: 'no CALL_VOICE at peer_address (no probe from the peer ever arrived)',
            actual: describeDatagrams(atPeer),
            hint: 'direct needs both directions proven: a valid datagram from the peer and its probe saying received > 0',
          });
          watch.judge(() => expectPeriod(atPeer.filter((d) => isProbe(d) && d.at >= relayedAt + IN_FLIGHT_MS), SETTLED_PROBE_PERIOD_MS, 'CALL_PROBEs once relayed', 'once relayed, probe every 1 s (it keeps NAT mappings open, and a path that opens late upgrades to direct)'));
          const { db, summary } = toneLevels(output, [{ hz: PEER_HZ, packets: peerTone }, { hz: OTHER_SPEAKER_HZ, packets: otherTone }]);
          expect(Math.abs(db[0]!) <= LEVEL_TOLERANCE_DB, 'the peer\'s relayed voice was not played at full level', {
            expected: `the peer's ${PEER_HZ} Hz tone (50 VOICE_DOWN with speaker ${BOB.id}, the peer's id from CALL_START) within ${LEVEL_TOLERANCE_DB} dB of its level`,
            actual: summary,
            hint: 'relayed: the peer\'s voice comes as VOICE_DOWN with the peer\'s id (not a member of your room): play it',
          });
          expect(db[1]! <= -UNDER_DB, 'another speaker\'s voice was played during the call', {
            expected: `the ${OTHER_SPEAKER_HZ} Hz tone of ${CYD.name} (id ${CYD.id}, a member of your room) at least ${UNDER_DB} dB under its level`,
            actual: summary,
            hint: 'while in a call play only the peer: VOICE from any other speaker is dropped, should a server send it',
          });
        });
      });
    },
  },
  {
    name: `client: a peer whose probes say received 0 (a one-way path) never gets CALL_VOICE, and ${CONNECTING_MS / 1000} s after CALL_START the client sends its voice through the server`,
    subject: 'client',
    async run(context) {
      await withStallWatch(async (watch) => {
        await inTempDir(async (dir) => {
          const window = timingWindow(CONNECTING_MS);
          const session = await startSession(context, ['--auto-accept', '--input', continuousVoice(dir, 9), '--output', 'null', '--duration', '7']);
          const probes = new PeerProbes(session.peer, true);
          let startedAt = 0;
          await orStop(session, async () => {
            await pinged(session);
            startedAt = (await ringAndStart(session, { peerAddress: addressOf(session.peer) })).at;
            watch.reset();
            await probes.answered(session);
            await sleep(startedAt + window.latestMs + SCHEDULING_NOISE_MS - performance.now()); // the whole accepted window
          });
          probes.stop();
          await finishSession(session, 10_000, 'when --duration 7 is over');
          const callVoice = session.peer.received.filter(isCallVoice);
          expect(callVoice.length === 0, 'the client sent CALL_VOICE to a peer whose probes said our datagrams never reach it', {
            expected: 'no CALL_VOICE at the peer: direct needs a valid datagram from the peer AND its probe saying received > 0 (both directions)',
            actual: `at the peer: ${describeDatagrams(session.peer.received)}`,
            hint: 'a path that works one way only is not direct: wait for the peer\'s received > 0, else relay after 3 s',
          });
          const first = relayedVoice(session, startedAt + IN_FLIGHT_MS)[0];
          expect(first !== undefined && first.at - startedAt <= window.latestMs, `the connecting time is not ${showMs(CONNECTING_MS)}: no VOICE_UP through the server within ${showMs(window.latestMs)} of CALL_START`, {
            expected: `VOICE_UP through the server after ${showMs(CONNECTING_MS)} (accepted: ${describeWindow(window)}), the peer's probes all saying received 0`,
            actual: `${first === undefined ? 'none' : `the first after ${Math.round(first.at - startedAt)} ms`}; at the server since CALL_START: ${describeDatagrams(session.udp.received, startedAt)}`,
            hint: 'the direct path was never proven both ways: after 3 s, relay the voice through the server',
          });
          watch.judge(() => expectDuration(first.at - startedAt, window, 'the connecting time', 'the first voice through the server after CALL_START', 'hold the voice while connecting; after 3 s without both directions proven, relay it through the server'));
        });
      });
    },
  },
  {
    name: `client: once direct, when the peer's datagrams stop, it prints "relayed" and sends its voice through the server ${DIRECT_SILENCE_MS / 1000} s later, and no more CALL_VOICE`,
    subject: 'client',
    run: (context) =>
      expectRelayAfterDirectPathDies(context, {
        breakPath: (probes) => {
          probes.stop();
          return probes.lastSentAt;
        },
        limit: 'the direct path\'s silence limit',
        after: 'after the peer\'s last datagram',
        since: 'the peer went quiet',
        waitHint: 'in direct, 3 s without a valid datagram from the peer (or growth of its received) is relayed: send your voice as VOICE_UP',
        durationHint: 'in direct, fall back to the relay after 3 s without a valid direct datagram or growth of the peer\'s received',
        relayedBecause: 'no direct packet within 3 s',
        noCallVoiceAfter: {
          expected: 'no CALL_VOICE at the peer once the voice goes through the server (probes only, every 1 s)',
          hint: 'one path at a time: relayed means VOICE_UP and no CALL_VOICE',
        },
      }),
  },
  {
    name: `client: once direct, when the peer's probes keep coming but their received stops growing, it prints "relayed" and sends its voice through the server ${DIRECT_SILENCE_MS / 1000} s after the last growth, and no more CALL_VOICE`,
    subject: 'client',
    run: (context) =>
      expectRelayAfterDirectPathDies(context, {
        // A path that dies one way: the client's datagrams stop reaching the peer, whose probes
        // still reach the client (a new probe number every 200 ms) but say the same `received`.
        breakPath: (probes) => {
          probes.stall();
          return probes.lastGrowthSentAt;
        },
        limit: 'the direct path\'s limit without growth of the peer\'s received',
        after: 'after the peer\'s last probe whose received grew',
        since: 'the last growth',
        waitHint: 'in direct, 3 s without growth of the peer\'s received (its probes still coming) is relayed: our packets no longer reach it; send your voice as VOICE_UP',
        durationHint: 'in direct, fall back to the relay after 3 s without a valid direct datagram or growth of the peer\'s received: probes that keep coming are not enough',
        relayedBecause: 'our packets stopped reaching the peer for 3 s',
        noCallVoiceAfter: {
          expected: 'no CALL_VOICE at the peer once the voice goes through the server (probes only, every 1 s): the peer\'s received never grows again',
          hint: 'one path at a time: relayed means VOICE_UP and no CALL_VOICE; back to direct only when both counts have grown since the fall',
        },
      }),
  },
  {
    name: `client: relayed because the peer never answered, it goes direct when the path opens late: once the peer's probes come and say received > 0, within ${UPGRADE_MS / 1000} s it prints "direct to" the peer's address and sends its voice as CALL_VOICE, no more through the server`,
    subject: 'client',
    async run(context) {
      await withStallWatch(async (watch) => {
        await inTempDir(async (dir) => {
          // The README gives an upper bound here, not a delay: the client's next relayed probe
          // (every 1 s) reaches the peer, whose next probe (every 200 ms) proves both ways. So only
          // the late side of the tolerance rule applies; a client that upgrades sooner is right.
          const window: TimingWindow = { ...timingWindow(UPGRADE_MS), earliestMs: 0 };
          const session = await startSession(context, ['--auto-accept', '--input', continuousVoice(dir, 10), '--output', 'null', '--duration', '9']);
          const probes = new PeerProbes(session.peer, false, true);
          let openedAt = 0;
          let directAt = 0;
          let started = NOT_STARTED;
          await orStop(session, async () => {
            await pinged(session);
            started = await ringAndStart(session, { peerAddress: addressOf(session.peer) });
            await session.udp.waitFor(
              () => relayedVoice(session, started.at + IN_FLIGHT_MS)[0],
              timingWindow(CONNECTING_MS).latestMs,
              'VOICE_UP through the server after CALL_START (the peer never answered)',
              'with no valid datagram from the peer 3 s after CALL_START, the path is relayed: send your voice as VOICE_UP',
              () => `at the server since CALL_START: ${describeDatagrams(session.udp.received, started.at)}; at the peer: ${describeDatagrams(session.peer.received)}`,
            );
            await session.client.waitForStdout((out) => /call 7 with Bob: relayed/.test(out), 1_000, 'the line "call 7 with Bob: relayed through the server (no direct packet within 3 s)"', 'print the path when it changes');
            expect(probes.clientAddress !== undefined, 'no CALL_PROBE from the client reached peer_address', {
              expected: 'CALL_PROBE (0x05, 17 bytes, the call\'s token) at peer_address since CALL_START',
              actual: `at the peer: ${describeDatagrams(session.peer.received)}`,
              hint: 'from CALL_START, send CALL_PROBE to peer_address every 200 ms, then every 1 s once relayed',
            });
            await sleep(SETTLED_PROBE_PERIOD_MS / 2);
            // The path opens: from now on the client's datagrams reach the peer, and the peer probes.
            probes.open();
            openedAt = performance.now();
            watch.reset();
            const first = await watch.during(withinWindow(
              session.peer.waitFor(
                () => session.peer.received.find((d) => isCallVoice(d) && d.at >= openedAt),
                window.latestMs,
                'CALL_VOICE at the peer after the path opened',
                'while relayed keep probing every 1 s; once a valid datagram has come from the peer and its probe says received > 0 (both grown since the fall), go direct: voice as CALL_VOICE',
                () => `at the peer since the path opened: ${describeDatagrams(session.peer.received, openedAt)}; at the server since: ${describeDatagrams(session.udp.received, openedAt)}`,
              ),
              window,
              'the upgrade from relayed to direct',
              'CALL_VOICE at the peer after its probes started coming',
            ));
            directAt = first.at;
            watch.judge(() => expectDuration(directAt - openedAt, window, 'the upgrade from relayed to direct', 'the first CALL_VOICE at the peer after its probes started coming', 'while relayed, probe every 1 s and go direct as soon as both counts (yours, the peer\'s received) have grown since the fall'));
            const line = `call 7 with Bob: direct to 127.0.0.1:${session.peer.port}`;
            await session.client.waitForStdout((out) => out.includes(line), 1_000, `the line "${line}"`, 'print the path when it changes: direct to the peer\'s bound address');
            await sleep(1_000);
          });
          await finishSession(session, 12_000, 'when --duration 9 is over'); // the peer probes to the end: the path stays direct
          probes.stop();
          const relayed = relayedVoice(session, directAt + IN_FLIGHT_MS).length;
          const tcpVoice = tcpVoiceAfter(session, started.frames());
          expect(relayed === 0 && tcpVoice === 0, 'the client still sent its voice through the server once direct', {
            expected: 'no VOICE_UP (and no TCP VOICE) once the voice goes as CALL_VOICE again',
            actual: `${relayed} VOICE_UP, ${tcpVoice} TCP VOICE after the first CALL_VOICE; at the server since: ${describeDatagrams(session.udp.received, directAt)}`,
            hint: 'one path at a time: direct means CALL_VOICE and no VOICE_UP',
          });
        });
      });
    },
  },
  {
    name: `client: after CALL_END it sends no CALL_VOICE or CALL_PROBE, plays nothing that comes with the old token, and sends no room voice for ${GUARD_MS / 1000} s, then room voice again`,
    subject: 'client',
    async run(context) {
      await withStallWatch(async (watch) => {
        await inTempDir(async (dir) => {
          const output = joinPath(dir, 'heard.wav');
          const peerTone = tonePackets(PEER_HZ, 50);
          const oldTone = tonePackets(OLD_TOKEN_HZ, 50);
          const window = timingWindow(GUARD_MS);
          const session = await startSession(context, ['--auto-accept', '--input', continuousVoice(dir, 10), '--output', output, '--duration', '7']);
          const probes = new PeerProbes(session.peer);
          let endedAt = 0;
          let roomVoiceAt = Infinity;
          await orStop(session, async () => {
            await pinged(session);
            await ringAndStart(session, { peerAddress: addressOf(session.peer) });
            const client = await probes.answered(session);
            await sleep(PROBE_PERIOD_MS);
            await session.peer.sendPaced(peerTone.map((packet, i) => [callVoice(CALL_TOKEN, 1000 + i, packet)]), client, BURST);
            probes.stop();
            session.send(CALL_END, { call: 7, reason: 'hangup', by: BOB });
            endedAt = performance.now();
            watch.reset();
            // The old call's datagrams keep coming (a peer that has not seen its CALL_END yet, or a replay).
            await session.peer.sendPaced(oldTone.map((packet, i) => [callVoice(CALL_TOKEN, 1050 + i, packet)]), client, BURST);
            const first = await watch.during(withinWindow(
              session.udp.waitFor(
                () => relayedVoice(session, endedAt)[0],
                Math.max(1, endedAt + window.latestMs - performance.now()),
                'room voice (VOICE_UP) after CALL_END',
                'after CALL_END, wait 1 s (the guard), then your voice goes to your room again',
                () => `at the server since CALL_END: ${describeDatagrams(session.udp.received, endedAt)}`,
              ),
              window,
              'the guard after a call',
              'room voice (VOICE_UP) after CALL_END',
            ));
            roomVoiceAt = first.at;
            const late = session.peer.received.filter((d) => (isCallVoice(d) || isProbe(d)) && d.at > endedAt + IN_FLIGHT_MS);
            watch.judge(() => expect(late.length === 0, 'the client went on sending to the peer after CALL_END', {
              expected: 'no CALL_VOICE and no CALL_PROBE at the peer after CALL_END: the call and its token are over',
              actual: `at the peer since CALL_END: ${describeDatagrams(session.peer.received, endedAt)}`,
              hint: 'on CALL_END stop the probes and the call\'s voice at once',
            }));
          });
          await finishSession(session, 12_000, 'when --duration 7 is over');
          watch.judge(() => expectDuration(roomVoiceAt - endedAt, window, 'the guard after a call', 'the first room voice (VOICE_UP) after CALL_END', 'after CALL_END send no room voice for 1 s (a call\'s voice still in flight must not reach the room), then send it again'));
          const { db, summary } = toneLevels(output, [{ hz: PEER_HZ, packets: peerTone }, { hz: OLD_TOKEN_HZ, packets: oldTone }]);
          if (Math.abs(db[0]!) > LEVEL_TOLERANCE_DB) {
            throw new CheckSkipped(`the peer's voice during the call was not played at full level either (${summary}), so silence after CALL_END proves nothing: see the check on the peer's CALL_VOICE`);
          }
          expect(db[1]! <= -UNDER_DB, 'CALL_VOICE with the old call\'s token was played after CALL_END', {
            expected: `the ${OLD_TOKEN_HZ} Hz tone (50 CALL_VOICE with the ended call's token, new sequence numbers) at least ${UNDER_DB} dB under its level`,
            actual: summary,
            hint: 'a token is dead at CALL_END: drop every direct datagram when no call is active',
          });
        });
      });
    },
  },
  {
    name: 'client: prints "declined by Bob", "no answer", "cancelled by Ada" (after /hangup sends HANGUP of the ringing call) and "not called: Bob is busy" for the calls it makes',
    subject: 'client',
    async run(context) {
      const session = await startSession(context, ['--input', 'silence', '--output', 'null']);
      const callBob = async (call: number | null): Promise<number> => {
        const mark = session.sent().length;
        session.client.type('/call Bob\n');
        const lookup = await frameOf(session, LOOKUP, mark, 3_000, 'LOOKUP (0x19) after typing "/call Bob"', '/call NAME: LOOKUP {"name": NAME}, then INVITE');
        session.send(FOUND, { name: 'Bob', online: true, state: 'available' });
        const invite = await frameOf(session, INVITE, lookup.index + 1, 3_000, 'INVITE (0x1B) after FOUND available', '/call NAME: once FOUND says available, INVITE {"to": NAME}');
        if (call !== null) session.send(RINGING, { call, to: BOB });
        return invite.index;
      };
      const printed = (pattern: RegExp, line: string, hint: string) => session.client.waitForStdout((out) => pattern.test(out), 3_000, `the line "${line}"`, hint);
      await orStop(session, async () => {
        await callBob(7);
        await printed(/calling Bob \(call 7\): ringing/, 'calling Bob (call 7): ringing', 'on RINGING print: calling NAME (call ID): ringing');
        session.send(CALL_END, { call: 7, reason: 'declined', by: BOB });
        await printed(/call 7 with Bob ended: declined by Bob/, 'call 7 with Bob ended: declined by Bob', 'CALL_END "declined": say who declined');
        await callBob(8);
        await printed(/calling Bob \(call 8\): ringing/, 'calling Bob (call 8): ringing', 'on RINGING print: calling NAME (call ID): ringing');
        session.send(CALL_END, { call: 8, reason: 'no_answer' });
        await printed(/call 8 with Bob ended: no answer/, 'call 8 with Bob ended: no answer (30 s)', 'CALL_END "no_answer": say nobody answered');
        const invite = await callBob(9);
        await printed(/calling Bob \(call 9\): ringing/, 'calling Bob (call 9): ringing', 'on RINGING print: calling NAME (call ID): ringing');
        session.client.type('/hangup\n');
        const hangup = await frameOf(session, HANGUP, invite + 1, 3_000, 'HANGUP (0x1F) after typing "/hangup" while ringing', '/hangup while your call rings: HANGUP {"call": its id} (a cancel)');
        expect(hangup.fields.call === 9, 'the HANGUP names another call', { expected: 'HANGUP {"call":9}', actual: `HANGUP ${hangup.payload.toString('utf8')}`, hint: 'HANGUP carries the id RINGING gave' });
        session.send(CALL_END, { call: 9, reason: 'cancelled', by: { id: OWN_ID, name: 'Ada' } });
        await printed(/call 9 with Bob ended: cancelled by Ada/, 'call 9 with Bob ended: cancelled by Ada', 'CALL_END "cancelled": say who cancelled');
        await callBob(null);
        session.send(REFUSED, { request: 'invite', code: 'busy', message: 'Bob is busy' });
        await printed(/not called: Bob is busy/, 'not called: Bob is busy', 'REFUSED busy to an INVITE: not called: NAME is busy');
      });
      session.client.type('exit\n');
      await finishSession(session, 5_000, 'after the command exit');
    },
  },
  {
    name: 'client: prints who calls it and the end of an accepted call ("hung up by NAME", "NAME left") with the ESC and U+202E of a name escaped, never raw',
    subject: 'client',
    async run(context) {
      const mallory = { id: 12, name: 'Mal\u001b[2J\u202eory' };
      const session = await startSession(context, ['--auto-accept', '--input', 'silence', '--output', 'null']);
      const printed = (pattern: RegExp, line: string, hint: string) => session.client.waitForStdout((out) => pattern.test(out), 3_000, `the line "${line}"`, hint);
      await orStop(session, async () => {
        await pinged(session);
        await ringAndStart(session, { call: 7, from: mallory, peerAddress: null });
        await printed(/Mal\S*ory is calling you \(call 7\)/, 'Mal\\x1b[2J\\u202eory is calling you (call 7): /accept or /decline', 'on INVITE print: NAME is calling you (call ID), the name escaped');
        session.send(CALL_END, { call: 7, reason: 'hangup', by: mallory });
        await printed(/call 7 with Mal\S*ory ended: hung up by Mal\S*ory/, 'call 7 with Mal\\x1b[2J\\u202eory ended: hung up by Mal\\x1b[2J\\u202eory (...)', 'CALL_END "hangup": say who hung up');
        await ringAndStart(session, { call: 8, from: mallory, peerAddress: null });
        session.send(CALL_END, { call: 8, reason: 'peer_left', by: mallory });
        await printed(/call 8 with Mal\S*ory ended: Mal\S*ory left/, 'call 8 with Mal\\x1b[2J\\u202eory ended: Mal\\x1b[2J\\u202eory left', 'CALL_END "peer_left": say the peer left');
      });
      session.client.type('exit\n');
      const { result } = await finishSession(session, 5_000, 'after the command exit');
      const raw = rawCharacters([result.stdout], ['\u001b', '\u202e']);
      expect(raw.length === 0, 'a control or bidi character of a caller\'s name reached standard output raw', {
        expected: 'no ESC (U+001B) and no U+202E on standard output: shown escaped, e.g. \\x1b and \\u202e',
        actual: `raw characters ${raw.join(', ')} in ${JSON.stringify(result.stdout.slice(-400))}`,
        hint: 'pass every name through the printable() rule before showing it: a caller must not drive your terminal',
      });
    },
  },
  controlLimitClientCheck({ usersType: USERS, start: (context, name) => startSession(context, ['--input', 'silence', '--output', 'null'], name), users: (names) => ({ room: DEFAULT_ROOM, users: names.map((name, i) => ({ id: i === 0 ? OWN_ID : 100 + i, name, in_call: false })) }), usersCommand: '/users' }),
  // Stage 06's UDP path rules hold (README: stage 07's tables hold, so UDP down and UDP up again).
  udpReturnCheck({ protocol: PROTOCOL, userFields: { in_call: false } }),
];
