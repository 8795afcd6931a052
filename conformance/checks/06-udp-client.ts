// Stage 06's client checks: the client under test (CLIENT_CMD, default the reference) is run
// through its command line against a fake server that plays the server's part with raw frames
// over TCP and raw datagrams over UDP (a socket of the test's own, named in WELCOME's udp_port).
// They use only the protocol in 06-udp/README.md (nothing from 06-udp/ is imported), so they
// grade a client written in any language. The test encodes and decodes Opus itself
// (shared/codec/opus.ts); played audio is compared within MATCH_TOLERANCE, as in stage 05.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE } from '#shared/audio/format.ts';
import { readWavPcm } from '#shared/audio/wav-source.ts';
import { createOpusDecoder, createOpusEncoder } from '#shared/codec/opus.ts';
import { showBytes } from '../harness/check-failure.ts';
import { expect, type Check, type CheckContext } from '../harness/checks.ts';
import { describeFrames, finishSession, orStop, startSession as startClientSession, type Session } from '../harness/client-session.ts';
import { DatagramPeer, type ReceivedDatagram } from '../harness/datagram-peer.ts';
import { jsonFrameBytes, jsonObjectOf, type WireFrame } from '../harness/frame-wire.ts';
import { clippedSumOf, dominantHz, findFrame, levelDb, longestZeroRun, MATCH_TOLERANCE, quietestWindowDb, samplesOf } from '../harness/opus-voice.ts';
import { writeSpeechWav } from '../harness/speech-wav.ts';
import { controlLimitClientCheck } from '../harness/control-limit-check.ts';
import { udpReturnCheck } from '../harness/udp-return-check.ts';
import { clientJitterBufferCheck } from '../harness/client-jitter-check.ts';
import { clientJitterStartCheck } from '../harness/client-jitter-start-check.ts';
import { withStallWatch } from '../harness/stall-watch.ts';
import { describeWindow, judgeDuration, showMs, timingWindow } from '../harness/tolerance.ts';

// The message types of the README's tables: TCP frames, then datagrams.
const HELLO = 0x01;
const WELCOME = 0x02;
const VOICE = 0x03;
const BYE = 0x04;
const USERS = 0x06;
const PATH = 0x0e;
const TYPE_NAMES: Record<number, string> = { [HELLO]: 'HELLO', [VOICE]: 'VOICE', [BYE]: 'BYE', [PATH]: 'PATH' };
const VOICE_UP = 0x01;
const VOICE_DOWN = 0x02;
const PING = 0x03;
const PONG = 0x04;

const PROTOCOL = 'voice-chat/06';
const DEFAULT_ROOM = 'lobby';
const OWN_ID = 7;
const TOKEN = Buffer.from('5ac1e0b79d2f4e63', 'hex');
/** The README: UDP is down when PING 1 (sent at WELCOME) gets no PONG within 3 s; judged by tolerance.ts's rule. */
const FIRST_PONG_TIMEOUT_MS = 3_000;
/** Steps of VOICE_DOWN sent at once before pacing the rest (slack against the test's own timer jitter). */
const BURST = 4;

interface UdpSession extends Session {
  udp: DatagramPeer;
  /** performance.now() when WELCOME went out. */
  welcomedAt: number;
}

/**
 * What differs between the stages whose client keeps stage 06's voice (06, 07, 08): the protocol
 * name of HELLO and WELCOME, and the fields every USERS entry carries (08: in_call). The fake
 * server sends 06's WELCOME and USERS with those; a 07 or 08 client needs nothing more outside
 * chat, files and calls (08's ADDRESS only matters to a call, so it is not sent).
 */
export interface UdpClientStage {
  /** WELCOME's and HELLO's protocol: "voice-chat/06". */
  protocol: string;
  /** Fields every user in USERS carries besides id and name (stage 08: in_call). */
  userFields?: Record<string, unknown>;
}

/** Runs the client against a fake server whose WELCOME names TOKEN and the test's UDP socket. */
async function startSession(context: CheckContext, stage: UdpClientStage, name: string, args: string[], others: { id: number; name: string }[] = []): Promise<UdpSession> {
  const udp = await DatagramPeer.start();
  let welcomedAt = 0;
  try {
    const session = await startClientSession(context, name, args, (hello) => {
      const room = typeof hello.room === 'string' ? hello.room : DEFAULT_ROOM;
      welcomedAt = performance.now();
      return Buffer.concat([
        jsonFrameBytes(WELCOME, { name, room, id: OWN_ID, protocol: stage.protocol, codec: 'opus', sample_rate: SAMPLE_RATE, frame_ms: FRAME_MS, channels: 1, token: TOKEN.toString('hex'), udp_port: udp.port }),
        jsonFrameBytes(USERS, { room, users: [...others, { id: OWN_ID, name }].map((user) => ({ ...user, ...stage.userFields })) }),
      ]);
    });
    const close = session.fake.close.bind(session.fake);
    session.fake.close = async () => (udp.close(), close()); // whoever closes the fake closes the UDP side too
    return { ...session, udp, welcomedAt };
  } catch (error) {
    udp.close();
    throw error;
  }
}

/** Answers every well-formed PING with its PONG (received = datagrams counted so far), as a server does. */
function answerPings(udp: DatagramPeer): void {
  udp.onDatagram = ({ data, address, port }) => {
    if (data.length !== 17 || data[0] !== PING) return;
    const pong = Buffer.alloc(13);
    pong[0] = PONG;
    data.copy(pong, 1, 9, 17); // ping number and client time, as received
    pong.writeUInt32BE(udp.received.length, 9);
    udp.send(pong, { address, port });
  };
}

function describeDatagrams(list: ReceivedDatagram[]): string {
  if (list.length === 0) return 'no datagram';
  const types = new Map<string, number>();
  for (const { data } of list) {
    const key = `type 0x${(data[0] ?? 0).toString(16).padStart(2, '0')} (${data.length} bytes)`;
    types.set(key, (types.get(key) ?? 0) + 1);
  }
  return `${list.length} datagrams: ${[...types].map(([key, count]) => `${count} x ${key}`).join(', ')}; the first: ${showBytes(list[0]!.data, 24)}`;
}

function pathFrames(frames: WireFrame[]): string[] {
  return frames.filter((frame) => frame.type === PATH).map((frame) => {
    const parsed = jsonObjectOf(frame.payload);
    return 'object' in parsed ? String(parsed.object.path) : '(not JSON)';
  });
}

async function inTempDir<T>(steps: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(joinPath(tmpdir(), 'udp-check-'));
  try {
    return await steps(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A sweep from `fromHz` to `toHz`, encoded by the test (with in-band FEC when asked). */
function speakerSweep(fromHz: number, toHz: number, amplitude: number, frames: number, fec = false): Buffer[] {
  const encoder = createOpusEncoder({ bitrate: 24_000, fec, expectedLossPercent: fec ? 10 : 0 });
  const total = frames * FRAME_SAMPLES;
  let phase = 0;
  return Array.from({ length: frames }, (_, n) => {
    const frame = Buffer.alloc(FRAME_BYTES);
    for (let i = 0; i < FRAME_SAMPLES; i++) {
      const hz = fromHz + ((toHz - fromHz) * (n * FRAME_SAMPLES + i)) / total;
      phase += (2 * Math.PI * hz) / SAMPLE_RATE;
      frame.writeInt16LE(Math.round(amplitude * 32_767 * Math.sin(phase)), i * 2);
    }
    return encoder.encode(frame);
  });
}

function voiceDown(speaker: number, sequence: number, packet: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = VOICE_DOWN;
  head.writeUInt16BE(speaker, 1);
  head.writeUInt16BE(sequence & 0xffff, 3);
  return Buffer.concat([head, packet]);
}

/**
 * Runs a listening client with --output a WAV: waits for its first PING, answers it (so its path
 * is UDP), then sends `steps` of VOICE_DOWN to the address the PING came from. Returns the recording.
 */
function recordUdp(context: CheckContext, stage: UdpClientStage, others: { id: number; name: string }[], steps: Buffer[][], seconds: number): Promise<Int16Array> {
  return recordUdpWhile(context, stage, others, seconds, (udp, to) => udp.sendPaced(steps, to, BURST));
}

/** As recordUdp, but `speak` sends the datagrams itself, to `to` (where the client's PING came from). */
async function recordUdpWhile(context: CheckContext, stage: UdpClientStage, others: { id: number; name: string }[], seconds: number, speak: (udp: DatagramPeer, to: ReceivedDatagram) => Promise<void>): Promise<Int16Array> {
  return inTempDir(async (dir) => {
    const output = joinPath(dir, 'heard.wav');
    const session = await startSession(context, stage, 'Ada', ['--input', 'silence', '--output', output, '--duration', String(seconds)], others);
    answerPings(session.udp);
    await orStop(session, async () => {
      const ping = await session.udp.waitFor(() => session.udp.received.find((d) => d.data[0] === PING), 5_000, 'a PING datagram after WELCOME', 'send PING (17 bytes) to udp_port as soon as WELCOME comes', () => describeDatagrams(session.udp.received));
      await speak(session.udp, ping);
    });
    await finishSession(session, seconds * 1000 + 10_000, `when --duration ${seconds} is over`);
    return samplesOf(readWavPcm(output));
  });
}

function describeRecording(played: Int16Array): string {
  const loud: string[] = [];
  for (let start = 0; start + FRAME_SAMPLES <= played.length && loud.length < 200; start += FRAME_SAMPLES) {
    loud.push(String(Math.max(-99, Math.round(levelDb(played, start, FRAME_SAMPLES)))));
  }
  return `${played.length} samples (${(played.length / SAMPLE_RATE).toFixed(2)} s); level per 20 ms in dBFS: ${loud.join(' ')}`;
}

/** Runs a client sending a -12 dBFS 440 Hz tone (after `leadSeconds` of silence) with `args`; PINGs answered or not; `onStarted` once WELCOME went out. */
async function sendTone(
  context: CheckContext,
  stage: UdpClientStage,
  { answer, leadSeconds = 0.3, seconds = 3, args = [] as string[], onStarted }: { answer: boolean; leadSeconds?: number; seconds?: number; args?: string[]; onStarted?: () => void },
) {
  return inTempDir(async (dir) => {
    const input = joinPath(dir, 'tone.wav');
    const { toneFrames } = writeSpeechWav(input, leadSeconds, 1.0, 0.8);
    const session = await startSession(context, stage, 'Ada', ['--input', input, '--output', 'null', '--duration', String(seconds), ...args]);
    onStarted?.(); // the client is up: what a check times starts now
    if (answer) answerPings(session.udp);
    const pathAt: { path: string; ms: number }[] = [];
    const watcher = setInterval(() => {
      for (const path of pathFrames(session.sent()).slice(pathAt.length)) pathAt.push({ path, ms: performance.now() - session.welcomedAt });
    }, 20);
    try {
      const { frames } = await finishSession(session, seconds * 1000 + 15_000, `when --duration ${seconds} is over`);
      return { toneFrames, frames, datagrams: session.udp.received, pathAt, welcomedAt: session.welcomedAt };
    } finally {
      clearInterval(watcher);
    }
  });
}

/**
 * Stage 06's client voice checks, for any stage whose client keeps 06's path and playback rules
 * (07's and 08's READMEs, "Timing and limits": 06's client, unchanged outside chat, files and
 * calls). Every one holds there as written: the same HELLO fields (under the stage's protocol),
 * the PING at WELCOME, PATH udp then VOICE_UP, the 3 s fall-back, --tcp, and 06's jitter buffer
 * for VOICE_DOWN (08: the client is in no call, so its room's voice plays). The same names at every
 * stage, but HELLO's, which names the stage's protocol. The UDP return check and the control
 * limit are run by each stage's own list (udpReturnCheck, controlLimitClientCheck).
 */
export function udpClientChecks(stage: UdpClientStage): Check[] {
  const { protocol } = stage;
  return [
    {
      name: `client: HELLO is {"name", "room", "protocol": "${protocol}"}`,
      subject: 'client',
      async run(context) {
        const session = await startSession(context, stage, 'Ada', ['--room', 'game-42', '--input', 'silence', '--output', 'null', '--duration', '1']);
        await orStop(session, () => {
          const { hello } = session;
          expect(hello.name === 'Ada' && hello.room === 'game-42' && hello.protocol === protocol, 'the HELLO does not carry the name, the room and the protocol', {
            expected: `HELLO {"name":"Ada","room":"game-42","protocol":"${protocol}"}`,
            actual: `HELLO ${JSON.stringify(hello)}`,
            hint: `"protocol" is always "${protocol}" in this stage`,
          });
        });
        await finishSession(session, 10_000, 'when --duration 1 is over');
      },
    },
    {
      name: "client: after WELCOME it sends a 17-byte PING with WELCOME's token to udp_port",
      subject: 'client',
      async run(context) {
        const session = await startSession(context, stage, 'Ada', ['--input', 'silence', '--output', 'null', '--duration', '1']);
        await orStop(session, async () => {
          const first = await session.udp.waitFor(() => session.udp.received[0], 3_000, "a datagram at the WELCOME's udp_port", 'on WELCOME open a UDP socket and send PING at once to the TCP connection\'s remote address and udp_port', () => 'no datagram');
          const { data } = first;
          expect(data.length === 17 && data[0] === PING && data.subarray(1, 9).equals(TOKEN), 'the first datagram is not a PING with the token', {
            expected: `17 bytes: 03 | the token ${TOKEN.toString('hex')} | ping u32 | client_time u32`,
            actual: showBytes(data),
            hint: 'PING is type 0x03, then the 8 token bytes (WELCOME\'s 16 hex digits decoded), the ping number and your clock in ms, all big-endian',
          });
        });
        await finishSession(session, 10_000, 'when --duration 1 is over');
      },
    },
    {
      name: 'client: once a PING is answered it sends PATH udp, then its voice as VOICE_UP with the token and consecutive sequence numbers that decode to its input',
      subject: 'client',
      async run(context) {
        const { toneFrames, frames, datagrams, pathAt } = await sendTone(context, stage, { answer: true });
        const voiceUp = datagrams.filter((d) => d.data[0] === VOICE_UP);
        const story = `the input: 0.3 s of silence, ${toneFrames.length} frames of 440 Hz at -12 dBFS; PATH sent: ${JSON.stringify(pathAt.map((p) => p.path))}; over TCP after WELCOME: ${describeFrames(frames, TYPE_NAMES)}; over UDP: ${describeDatagrams(datagrams)}`;
        expect(pathAt[0]?.path === 'udp', 'the client did not send PATH {"path":"udp"} after its PING was answered', {
          expected: 'a PATH frame (0x0E) {"path":"udp"} after the first PONG',
          actual: story,
          hint: 'on the first PONG, tell the server to send you voice by UDP: PATH {"path":"udp"}',
        });
        expect(voiceUp.length >= toneFrames.length - 2, 'the client did not send its voice as VOICE_UP datagrams', {
          expected: `at least ${toneFrames.length - 2} VOICE_UP (0x01) datagrams, one per 20 ms of the tone`,
          actual: story,
          hint: 'once UDP works, send each Opus packet as 01 | token | sequence u16 | packet',
        });
        const badToken = voiceUp.find((d) => !d.data.subarray(1, 9).equals(TOKEN) || d.data.length < 12);
        expect(badToken === undefined, 'a VOICE_UP does not carry the token', { expected: `01 | ${TOKEN.toString('hex')} | sequence | packet`, actual: showBytes(badToken?.data), hint: 'every datagram carries the 8-byte token from WELCOME' });
        const sequences = voiceUp.map((d) => d.data.readUInt16BE(9));
        const gap = sequences.findIndex((s, i) => i > 0 && s !== ((sequences[i - 1]! + 1) & 0xffff));
        expect(gap === -1, 'the VOICE_UP sequence numbers are not consecutive', {
          expected: 'each VOICE_UP\'s sequence (bytes 9-10) is the previous one + 1',
          actual: `VOICE_UP ${gap} has sequence ${sequences[gap]} after ${sequences[gap - 1]}`,
          hint: 'count the voice packets you send: +1 per packet (on either path)',
        });
        const decoder = createOpusDecoder();
        const decoded = voiceUp.map((d) => decoder.decode(d.data.subarray(11)));
        const middle = samplesOf(Buffer.concat(decoded.slice(5, toneFrames.length - 5)));
        const hz = dominantHz(middle);
        const level = levelDb(middle);
        expect(Math.abs(hz - 440) <= 10 && Math.abs(level - -12) <= 3, 'the VOICE_UP packets do not decode to the tone of the input', {
          expected: 'a 440 Hz tone (±10 Hz) at -12 dBFS (±3 dB)',
          actual: `about ${hz.toFixed(0)} Hz at ${level.toFixed(1)} dBFS`,
          hint: 'encode the input frames with Opus, 48 kHz mono, 20 ms, one packet per VOICE_UP',
        });
      },
    },
    {
      name: `client: with no PONG it falls back ${showMs(FIRST_PONG_TIMEOUT_MS)} after its first PING: PATH tcp, and its voice as TCP VOICE`,
      subject: 'client',
      run: (context) =>
        withStallWatch(async (watch) => {
          // The tone starts after 3.5 s and the session lasts 6 s: a fall-back up to the window's latest is seen, then TCP VOICE.
          const { frames, datagrams, pathAt, welcomedAt } = await sendTone(context, stage, { answer: false, leadSeconds: 3.5, seconds: 6, onStarted: () => watch.reset() });
          const tcpVoice = frames.filter((frame) => frame.type === VOICE).length;
          const voiceUp = datagrams.filter((d) => d.data[0] === VOICE_UP).length;
          const story = `PATH sent (after WELCOME): ${JSON.stringify(pathAt.map((p) => `${p.path} after ${Math.round(p.ms)} ms`))}; over TCP after WELCOME: ${describeFrames(frames, TYPE_NAMES)}; over UDP: ${describeDatagrams(datagrams)}`;
          expect(!pathAt.some((p) => p.path === 'udp'), 'the client sent PATH udp although no PING was answered', {
            expected: 'no PATH {"path":"udp"}: the check sent no PONG',
            actual: story,
            hint: 'say PATH udp only once a PONG for one of your PINGs came',
          });
          // The README's 3 s runs from PING 1, which goes out at WELCOME: timed from its arrival (from WELCOME if none came).
          const firstPing = datagrams.find((d) => d.data[0] === PING);
          const startMs = firstPing === undefined ? 0 : firstPing.at - welcomedAt;
          const window = timingWindow(FIRST_PONG_TIMEOUT_MS);
          const fallback = pathAt.find((p) => p.path === 'tcp');
          const from = firstPing === undefined ? 'WELCOME (no PING came)' : 'the first PING';
          const hint = `if PING 1 gets no PONG within ${showMs(FIRST_PONG_TIMEOUT_MS)}, send PATH tcp and send voice as TCP VOICE; not sooner (a PONG may take a while), not much later (nobody hears you meanwhile)`;
          const tookMs = fallback === undefined ? Infinity : fallback.ms - startMs;
          const verdict = judgeDuration(tookMs, window);
          watch.judge(() =>
            expect(verdict === 'ok', fallback === undefined
              ? `the PONG timeout is not ${showMs(FIRST_PONG_TIMEOUT_MS)}: no PATH tcp within ${showMs(window.latestMs)} of ${from}`
              : `the PONG timeout is not ${showMs(FIRST_PONG_TIMEOUT_MS)}: PATH tcp came too ${verdict === 'early' ? 'early' : 'late'}, ${showMs(tookMs)} after ${from}`, {
              expected: `PATH {"path":"tcp"} ${showMs(FIRST_PONG_TIMEOUT_MS)} after ${from} (accepted: ${describeWindow(window)})`,
              actual: `${firstPing === undefined ? 'no PING' : `PING 1 arrived ${Math.round(startMs)} ms after WELCOME`}; ${story}`,
              hint,
            }),
          );
          expect(tcpVoice >= 45 && voiceUp === 0, 'after falling back the voice did not go over TCP', {
            expected: 'about 50 TCP VOICE frames (the 1 s tone) and no VOICE_UP datagram',
            actual: story,
            hint: 'while UDP is down, send voice as stage 05 did: VOICE frames on the TCP connection',
          });
        }),
    },
    {
      name: 'client: --tcp sends no datagram at all, and its voice as TCP VOICE',
      subject: 'client',
      async run(context) {
        const { frames, datagrams, pathAt } = await sendTone(context, stage, { answer: true, args: ['--tcp'] });
        const tcpVoice = frames.filter((frame) => frame.type === VOICE).length;
        expect(datagrams.length === 0 && tcpVoice >= 45 && !pathAt.some((p) => p.path === 'udp'), 'with --tcp the client used UDP, or sent no TCP VOICE', {
          expected: 'no datagram, no PATH udp, about 50 TCP VOICE frames',
          actual: `over UDP: ${describeDatagrams(datagrams)}; over TCP: ${describeFrames(frames, TYPE_NAMES)}`,
          hint: '--tcp means never open the UDP path: no PING, voice as TCP VOICE',
        });
      },
    },
    {
      name: 'client: VOICE_DOWN from two speakers with one 20 ms of packets lost plays without a hole, at full level (FEC or concealment)',
      subject: 'client',
      async run(context) {
        const count = 50;
        const lost = 25;
        const bob = speakerSweep(400, 480, 0.3, count, true);
        const cyd = speakerSweep(700, 650, 0.3, count, true);
        const steps = Array.from({ length: count }, (_, i) => (i === lost ? [] : [voiceDown(1, 100 + i, bob[i]!), voiceDown(2, 65530 + i, cyd[i]!)]));
        const played = await recordUdp(context, stage, [{ id: 1, name: 'Bob' }, { id: 2, name: 'Cyd' }], steps, 2.5);
        const [bobDecoder, cydDecoder] = [createOpusDecoder(), createOpusDecoder()];
        const expected = Array.from({ length: count }, (_, i) => clippedSumOf([bobDecoder.decode(bob[i]!), cydDecoder.decode(cyd[i]!)]));
        const before = lost - 3;
        const start = findFrame(played, expected[before]!, 0);
        expect(start !== -1, 'the output does not hold the two voices before the loss', {
          expected: `the sum of Bob's and Cyd's decoded frame ${before} in the recording (within ${MATCH_TOLERANCE * 100} % RMS)`,
          actual: describeRecording(played),
          hint: 'decode each speaker\'s VOICE_DOWN with its own decoder and add them up at your 20 ms clock',
        });
        const end = start + 9 * FRAME_SAMPLES;
        const zeros = longestZeroRun(played, start, end);
        const quietest = quietestWindowDb(played, start, end);
        const level = levelDb(played, start, end - start);
        const expectedLevel = levelDb(Int16Array.from(expected.slice(before, before + 9).flatMap((frame) => [...frame])));
        expect(zeros < FRAME_SAMPLES / 10 && quietest > expectedLevel - 10 && Math.abs(level - expectedLevel) <= 3, 'the lost packets left a hole or a drop in level', {
          expected: `from frame ${before} to ${before + 8} (both speakers' packet ${lost} lost): no run of ${FRAME_SAMPLES / 10} zero samples, no 10 ms more than 10 dB under the voices, the level within 3 dB of ${expectedLevel.toFixed(1)} dBFS`,
          actual: `longest run of zeros ${zeros}; quietest 10 ms ${quietest.toFixed(1)} dBFS; level ${level.toFixed(1)} dBFS; ${describeRecording(played)}`,
          hint: 'when one packet is missing and the next is there, rebuild it from the next packet\'s FEC (decode with decode_fec) or conceal it; never play silence in its place',
        });
      },
    },
    {
      name: 'client: reordered and duplicated VOICE_DOWN play once each, in sequence order',
      subject: 'client',
      async run(context) {
        const count = 50;
        const bob = speakerSweep(300, 900, 0.3, count);
        const step = (i: number) => [voiceDown(1, 500 + i, bob[i]!)];
        const steps = Array.from({ length: count }, (_, i) => step(i));
        [steps[20], steps[21]] = [step(21), step(20)]; // 21 overtakes 20
        steps[30] = [...step(30), ...step(30)]; // the network sends 30 twice
        steps[36] = [...step(33), ...step(36)]; // and 33 again, late
        const played = await recordUdp(context, stage, [{ id: 1, name: 'Bob' }], steps, 2.5);
        const decoder = createOpusDecoder();
        const expected = bob.map((packet) => samplesOf(decoder.decode(packet)));
        const positions: number[] = [];
        let from = 0;
        for (const frame of expected) {
          const at = findFrame(played, frame, from);
          positions.push(at);
          if (at !== -1) from = at + FRAME_SAMPLES / 2;
        }
        const missing = positions.flatMap((at, i) => (at === -1 && i >= 2 && i < count - 2 ? [i] : []));
        const span = positions[45]! - positions[5]!;
        expect(missing.length === 0 && positions[5] !== -1 && positions[45] !== -1 && Math.abs(span - 40 * FRAME_SAMPLES) <= FRAME_SAMPLES / 4, 'the reordered or duplicated packets were not played once each in order', {
          expected: `every frame 2-47 of Bob's sweep in order (frame 20 too, although 21 came first), frame 45 exactly ${40 * FRAME_MS} ms after frame 5 (a duplicate played twice adds 20 ms)`,
          actual: `missing: ${missing.join(', ') || 'none'}; frame 45 ${((span / FRAME_SAMPLES) * FRAME_MS).toFixed(1)} ms after frame 5; ${describeRecording(played)}`,
          hint: 'keep packets in a jitter buffer ordered by sequence; drop a sequence you already have or already played',
        });
      },
    },
    clientJitterBufferCheck((context, speaker, steps) => recordUdp(context, stage, [speaker], steps.map((step) => step.map((v) => voiceDown(speaker.id, v.sequence, v.packet))), 2.5)),
    clientJitterStartCheck((context, speaker, seconds, speak) => recordUdpWhile(context, stage, [speaker], seconds, (udp, to) => speak((packets) => packets.forEach((v) => udp.send(voiceDown(speaker.id, v.sequence, v.packet), to))))),
  ];
}

export const clientChecks: Check[] = [
  ...udpClientChecks({ protocol: PROTOCOL }),
  udpReturnCheck({ protocol: PROTOCOL }),
  controlLimitClientCheck({ usersType: USERS, start: (context, name) => startSession(context, { protocol: PROTOCOL }, name, ['--input', 'silence', '--output', 'null']), users: (names) => ({ room: DEFAULT_ROOM, users: names.map((name, i) => ({ id: i === 0 ? OWN_ID : 100 + i, name })) }), usersCommand: 'users' }),
];
