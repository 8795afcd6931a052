// Stage 05's client checks: the client under test (CLIENT_CMD, default the reference) is run
// through its command line against a fake server that plays a forwarding server's part with raw
// frames. They use only the protocol in 05-opus/README.md (nothing from 05-opus/ is imported), so
// they grade a client written in any language. The test side encodes and decodes Opus itself
// (shared/codec/opus.ts, libopus): a client's decoder may differ from it by rounding, so played
// audio is compared within MATCH_TOLERANCE (conformance/harness/opus-voice.ts), as the README says.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE } from '#shared/audio/format.ts';
import { readWavPcm } from '#shared/audio/wav-source.ts';
import { createOpusDecoder, createOpusEncoder } from '#shared/codec/opus.ts';
import { expect, type Check, type CheckContext } from '../harness/checks.ts';
import { describeFrames, finishSession, orStop, startSession as startClientSession, type Session } from '../harness/client-session.ts';
import { FakeServer } from '../harness/fake-server.ts';
import { frameBytes, jsonFrameBytes, type WireFrame } from '../harness/frame-wire.ts';
import { clippedSumOf, dominantHz, findFrame, holdsAt, levelDb, longestZeroRun, LOST, MATCH_TOLERANCE, quietestWindowDb, samplesOf, sendPaced, tonePower } from '../harness/opus-voice.ts';
import { errorLines } from '../harness/program-output.ts';
import { runCommand } from '../harness/run-command.ts';
import { describeRun } from '../harness/running-client.ts';
import { writeSpeechWav } from '../harness/speech-wav.ts';
import { controlLimitClientCheck } from '../harness/control-limit-check.ts';
import { clientJitterBufferCheck } from '../harness/client-jitter-check.ts';
import { clientJitterStartCheck } from '../harness/client-jitter-start-check.ts';

// The message types of the README's table.
const HELLO = 0x01;
const WELCOME = 0x02;
const VOICE = 0x03;
const BYE = 0x04;
const USERS = 0x06;
const TYPE_NAMES: Record<number, string> = { [HELLO]: 'HELLO', [VOICE]: 'VOICE', [BYE]: 'BYE' };

const PROTOCOL = 'voice-chat/05';
const DEFAULT_ROOM = 'lobby';
/** The id the fake server gives the client under test. */
const OWN_ID = 7;
/** Issue 14's "done when": a talker's upstream stays under this. */
const UPSTREAM_BUDGET_KBPS = 64;
/** The README's default --bitrate, in kb/s of Opus packets. */
const DEFAULT_BITRATE_KBPS = 24;
/**
 * How far the Opus bytes of a steady tone may be from --bitrate (the README states it): an encoder
 * in VBR mode meets its target on average only, by an amount that differs between libraries and
 * versions (libopus 1.3.1: 24.6 kb/s over 3 s of the tone), while a default of twice or half the
 * README's (48, 12 kb/s) is a difference of bandwidth or sound a user notices.
 */
const BITRATE_TOLERANCE = 0.25;
/** Of a tone's packets, this many at each end are not counted: the encoder's first packets are larger (it ramps up), and the gate may open or close a frame off. */
const RAMP_PACKETS = 5;
/** After a client refused its options and exited, how long a late connection is watched for. */
const NO_CONNECTION_WATCH_MS = 500;
/** VOICE the fake server sends at once before pacing the rest (see sendPaced). */
const BURST = 4;

const welcome = (name: string, room: string, id: number) =>
  jsonFrameBytes(WELCOME, { name, room, id, protocol: PROTOCOL, codec: 'opus', sample_rate: SAMPLE_RATE, frame_ms: FRAME_MS, channels: 1 });
const users = (room: string, list: { id: number; name: string }[]) => jsonFrameBytes(USERS, { room, users: list });

/** Server -> client VOICE: speaker u16 BE, sequence u16 BE, the packet. */
function voice(speaker: number, sequence: number, packet: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(speaker, 0);
  head.writeUInt16BE(sequence & 0xffff, 2);
  return frameBytes(VOICE, Buffer.concat([head, packet]));
}

/**
 * Runs the client under test against a fake server that answers HELLO with WELCOME (id OWN_ID)
 * and USERS listing the client and `others` in the room the HELLO asked for.
 */
function startSession(context: CheckContext, name: string, args: string[], others: { id: number; name: string }[] = []): Promise<Session> {
  return startClientSession(context, name, args, (hello) => {
    const room = typeof hello.room === 'string' ? hello.room : DEFAULT_ROOM;
    return Buffer.concat([welcome(name, room, OWN_ID), users(room, [...others, { id: OWN_ID, name }])]);
  });
}

/**
 * A speaker the fake server forwards: a sweep from `fromHz` to `toHz` (a steady tone would not
 * do: its frames look alike at many offsets, so a frame out of place could pass for the right one),
 * encoded by the test. `pcm` is what was encoded.
 */
function speakerSweep(fromHz: number, toHz: number, amplitude: number, frames: number): { packets: Buffer[]; pcm: Buffer[] } {
  const encoder = createOpusEncoder({ bitrate: 24_000 });
  const total = frames * FRAME_SAMPLES;
  const packets: Buffer[] = [];
  const pcm: Buffer[] = [];
  let phase = 0;
  for (let n = 0; n < frames; n++) {
    const frame = Buffer.alloc(FRAME_BYTES);
    for (let i = 0; i < FRAME_SAMPLES; i++) {
      const hz = fromHz + ((toHz - fromHz) * (n * FRAME_SAMPLES + i)) / total;
      phase += (2 * Math.PI * hz) / SAMPLE_RATE;
      frame.writeInt16LE(Math.round(amplitude * 32_767 * Math.sin(phase)), i * 2);
    }
    packets.push(encoder.encode(frame));
    pcm.push(frame);
  }
  return { packets, pcm };
}

/** The client's VOICE frames, parsed: sequence and packet. */
function voiceSent(frames: WireFrame[]): { sequence: number; packet: Buffer; bytes: number }[] {
  return frames.filter((frame) => frame.type === VOICE).map((frame) => ({ sequence: frame.payload.readUInt16BE(0), packet: frame.payload.subarray(2), bytes: 5 + frame.payload.length }));
}

/** Runs `steps` with a fresh temporary folder, removed afterwards. */
async function inTempDir<T>(steps: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(joinPath(tmpdir(), 'opus-check-'));
  try {
    return await steps(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs a client that sends a -12 dBFS 440 Hz tone (1 s, or `toneSeconds`) from a WAV file and returns what it sent. */
async function sendTone(context: CheckContext, toneSeconds = 1) {
  return inTempDir(async (dir) => {
    const input = joinPath(dir, 'tone.wav');
    const { toneFrames } = writeSpeechWav(input, 0.3, toneSeconds, 0.8);
    const seconds = toneSeconds + 2;
    const session = await startSession(context, 'Ada', ['--input', input, '--output', 'null', '--duration', String(seconds)]);
    const { frames } = await finishSession(session, 15_000, `when --duration ${seconds} is over`);
    return { toneFrames, frames, sent: voiceSent(frames) };
  });
}

/** Runs a client with --output a WAV file while `speak` plays the fake server's part; returns the recording. */
async function recordWhile(context: CheckContext, others: { id: number; name: string }[], seconds: number, speak: (session: Session) => Promise<void>): Promise<Int16Array> {
  return inTempDir(async (dir) => {
    const output = joinPath(dir, 'heard.wav');
    const session = await startSession(context, 'Ada', ['--input', 'silence', '--output', output, '--duration', String(seconds)], others);
    await orStop(session, () => speak(session));
    await finishSession(session, seconds * 1000 + 10_000, `when --duration ${seconds} is over`);
    return samplesOf(readWavPcm(output));
  });
}

/** Runs a client with --output a WAV file while the fake server sends `steps` (see sendPaced); returns the recording. */
function record(context: CheckContext, others: { id: number; name: string }[], steps: Buffer[], seconds: number): Promise<Int16Array> {
  return recordWhile(context, others, seconds, (session) => sendPaced(session.connection, steps, BURST));
}

function describeRecording(played: Int16Array): string {
  const loud: string[] = [];
  for (let start = 0; start + FRAME_SAMPLES <= played.length && loud.length < 200; start += FRAME_SAMPLES) {
    loud.push(String(Math.max(-99, Math.round(levelDb(played, start, FRAME_SAMPLES)))));
  }
  return `${played.length} samples (${(played.length / SAMPLE_RATE).toFixed(2)} s); level per 20 ms in dBFS: ${loud.join(' ')}`;
}

export const clientChecks: Check[] = [
  {
    name: `client: HELLO is {"name", "room", "protocol": "${PROTOCOL}"}`,
    subject: 'client',
    async run(context) {
      const session = await startSession(context, 'Ada', ['--room', 'game-42', '--input', 'silence', '--output', 'null', '--duration', '1']);
      await orStop(session, () => {
        const { hello } = session;
        expect(hello.name === 'Ada' && hello.room === 'game-42' && hello.protocol === PROTOCOL, 'the HELLO does not carry the name, the room and the protocol', {
          expected: `HELLO {"name":"Ada","room":"game-42","protocol":"${PROTOCOL}"}`,
          actual: `HELLO ${JSON.stringify(hello)}`,
          hint: `HELLO's payload is a JSON object with three strings: "name", "room" (--room) and "protocol", always "${PROTOCOL}" in this stage`,
        });
      });
      await finishSession(session, 10_000, 'when --duration 1 is over');
    },
  },
  {
    name: 'client: a tone from the --input WAV is sent as VOICE with consecutive sequence numbers, and its packets decode to that tone',
    subject: 'client',
    async run(context) {
      const { toneFrames, frames, sent } = await sendTone(context);
      const story = `the input: 0.3 s of silence, ${toneFrames.length} frames of a 440 Hz tone at -12 dBFS, 0.8 s of silence; after WELCOME the client sent ${describeFrames(frames, TYPE_NAMES)}`;
      expect(sent.length >= toneFrames.length, 'the client sent fewer VOICE than the tone has 20 ms frames', {
        expected: `at least ${toneFrames.length} VOICE (one per 20 ms of the tone)`,
        actual: story,
        hint: 'while the voice gate is open, encode every 20 ms input frame as one Opus packet and send it as VOICE',
      });
      const gap = sent.findIndex((entry, i) => i > 0 && entry.sequence !== ((sent[i - 1]!.sequence + 1) & 0xffff));
      expect(gap === -1, 'the VOICE sequence numbers are not consecutive', {
        expected: 'each VOICE\'s sequence number (u16 big-endian, first 2 payload bytes) is the previous one + 1 (65535 wraps to 0)',
        actual: `VOICE ${gap} has sequence ${sent[gap]?.sequence} after ${sent[gap - 1]?.sequence}; ${story}`,
        hint: 'count the VOICE you send: +1 per message, not per 20 ms of time',
      });
      const decoder = createOpusDecoder();
      const decoded: Buffer[] = [];
      for (const [i, entry] of sent.entries()) {
        try {
          decoded.push(decoder.decode(entry.packet));
        } catch (error) {
          expect(false, 'a VOICE packet is not a 20 ms Opus packet (48 kHz mono)', {
            expected: 'after the 2-byte sequence number, one Opus packet of one 20 ms frame that libopus decodes',
            actual: `VOICE ${i} (${entry.packet.length} packet bytes, first byte 0x${(entry.packet[0] ?? 0).toString(16)}): ${(error as Error).message}`,
            hint: 'encode with an Opus encoder at 48 000 Hz, 1 channel, 20 ms frames (960 samples), one packet per VOICE',
          });
        }
      }
      // The tone's middle (the encoder's first frames ramp up): frequency and level as sent.
      const middle = samplesOf(Buffer.concat(decoded.slice(5, toneFrames.length - 5)));
      const hz = dominantHz(middle);
      const level = levelDb(middle);
      expect(Math.abs(hz - 440) <= 10 && Math.abs(level - -12) <= 3, 'the VOICE packets do not decode to the tone of the input', {
        expected: 'a 440 Hz tone (±10 Hz) at -12 dBFS (±3 dB), as in the input WAV',
        actual: `decoded VOICE 5 to ${toneFrames.length - 5}: about ${hz.toFixed(0)} Hz at ${level.toFixed(1)} dBFS`,
        hint: 'encode the input frames as they are (48 kHz mono s16le), in order, at the level they have',
      });
    },
  },
  {
    name: `client: at the default bitrate its VOICE messages (headers included) stay under ${UPSTREAM_BUDGET_KBPS} kb/s`,
    subject: 'client',
    async run(context) {
      const { frames, sent } = await sendTone(context);
      const bytes = sent.reduce((total, entry) => total + entry.bytes, 0);
      const kbps = sent.length === 0 ? 0 : (bytes * 8) / (sent.length * FRAME_MS);
      expect(sent.length > 0, 'the client sent no VOICE while its input held a tone', {
        expected: 'VOICE while the tone plays',
        actual: `after WELCOME the client sent ${describeFrames(frames, TYPE_NAMES)}`,
        hint: 'send VOICE while the voice gate is open',
      });
      expect(kbps < UPSTREAM_BUDGET_KBPS, `the client's voice takes ${kbps.toFixed(1)} kb/s`, {
        expected: `under ${UPSTREAM_BUDGET_KBPS} kb/s of VOICE messages (5-byte header, sequence and packet) per 20 ms sent`,
        actual: `${sent.length} VOICE, ${bytes} bytes: ${kbps.toFixed(1)} kb/s`,
        hint: 'encode with Opus at the default --bitrate 24 (about 60 bytes per packet); one packet per 20 ms',
      });
    },
  },
  {
    name: `client: at the default bitrate its Opus packets carry ${DEFAULT_BITRATE_KBPS} kb/s (±${BITRATE_TOLERANCE * 100} %, over 3 s of a tone)`,
    subject: 'client',
    async run(context) {
      const { toneFrames, frames, sent } = await sendTone(context, 3);
      const steady = sent.slice(RAMP_PACKETS, toneFrames.length - RAMP_PACKETS);
      const lowest = DEFAULT_BITRATE_KBPS * (1 - BITRATE_TOLERANCE);
      const highest = DEFAULT_BITRATE_KBPS * (1 + BITRATE_TOLERANCE);
      expect(steady.length >= toneFrames.length - 3 * RAMP_PACKETS, 'the client sent too few VOICE while its input held a tone of 3 s to measure its bitrate', {
        expected: `about ${toneFrames.length} VOICE (one per 20 ms of the tone)`,
        actual: `after WELCOME the client sent ${describeFrames(frames, TYPE_NAMES)}`,
        hint: 'while the voice gate is open, encode every 20 ms input frame as one Opus packet and send it as VOICE',
      });
      // The README counts the Opus packet alone (no VOICE header), over 20 ms per packet.
      const packetBytes = steady.reduce((total, entry) => total + entry.packet.length, 0);
      const kbps = (packetBytes * 8) / (steady.length * FRAME_MS);
      const sizes = steady.map((entry) => entry.packet.length);
      expect(kbps >= lowest && kbps <= highest, `the default bitrate is not ${DEFAULT_BITRATE_KBPS} kb/s: the client's Opus packets carried ${kbps.toFixed(1)} kb/s`, {
        expected: `Opus packets of ${DEFAULT_BITRATE_KBPS} kb/s on average without --bitrate (accepted: ${lowest}-${highest} kb/s: packet bytes × 8 / 20 ms, VOICE ${RAMP_PACKETS + 1} to ${RAMP_PACKETS + steady.length} of a 440 Hz tone at -12 dBFS)`,
        actual: `${steady.length} packets, ${packetBytes} bytes (${Math.min(...sizes)}-${Math.max(...sizes)} a packet): ${kbps.toFixed(1)} kb/s`,
        hint: `set the encoder's bitrate to --bitrate × 1000 bits per second, and default --bitrate to ${DEFAULT_BITRATE_KBPS}`,
      });
    },
  },
  {
    name: 'client: an invalid --bitrate is refused before connecting: one line, exit code 2',
    subject: 'client',
    async run(context) {
      const fake = await FakeServer.start();
      try {
        const result = await runCommand(context.clientCommand, ['--name', 'Ada', '--bitrate', '500', '--host', '127.0.0.1', '--port', String(fake.port), '--input', 'silence', '--output', 'null', '--duration', '1'], { timeoutMs: 15_000 });
        const lines = errorLines(result.stderr);
        expect(result.exitCode === 2 && !result.timedOut && lines.length === 1 && /bitrate/i.test(lines[0]!), 'the client did not refuse --bitrate 500 in one line with exit code 2', {
          expected: 'exit code 2 at once, and one line on standard error about --bitrate (it must be 6 to 128 kb/s)',
          actual: describeRun(result),
          hint: 'check --bitrate before connecting, print why on standard error, exit 2',
        });
        const connected = await fake.connection(0, NO_CONNECTION_WATCH_MS).then(
          () => true,
          () => false,
        );
        expect(!connected, 'the client connected to the server although its --bitrate is invalid', {
          expected: 'no connection at all: the mistake is found before connecting',
          actual: 'the fake server accepted a connection from the client',
          hint: 'validate every option first, then connect',
        });
      } finally {
        await fake.close();
      }
    },
  },
  {
    name: 'client: VOICE from two speakers is played decoded at full level and summed, in its --output WAV',
    subject: 'client',
    async run(context) {
      const count = 50;
      // Loud enough that the sum clips now and then: the mix is clipped, never wrapped or averaged.
      const bob = speakerSweep(200, 800, 0.6, count);
      const cyd = speakerSweep(900, 400, 0.6, count);
      const steps = Array.from({ length: count }, (_, i) => Buffer.concat([voice(1, 1000 + i, bob.packets[i]!), voice(2, 65530 + i, cyd.packets[i]!)]));
      const played = await record(context, [{ id: 1, name: 'Bob' }, { id: 2, name: 'Cyd' }], steps, 2.5);
      // What a client must play: each stream decoded by its own decoder, added up, clipped.
      const bobDecoder = createOpusDecoder();
      const cydDecoder = createOpusDecoder();
      const bobFrames = bob.packets.map((packet) => bobDecoder.decode(packet));
      const cydFrames = cyd.packets.map((packet) => cydDecoder.decode(packet));
      const silence = Buffer.alloc(bobFrames[0]!.length);
      // Each speaker's stream starts on its own (2 packets waiting, or 40 ms): a client that reads
      // Cyd's packet of a step just after a tick starts Cyd a tick after Bob, and then plays Bob's
      // frame i with Cyd's i - 1 throughout (or i + 1 the other way round). All three are correct.
      const missingWithCydLate = (ticks: number): number[] => {
        const expected = bobFrames.map((frame, i) => clippedSumOf([frame, cydFrames[i - ticks] ?? silence]));
        let from = 0;
        const missing: number[] = [];
        for (const [i, frame] of expected.entries()) {
          const at = holdsAt(played, frame, from) ? from : findFrame(played, frame, from);
          if (at === -1) missing.push(i);
          else from = at + FRAME_SAMPLES;
        }
        return missing;
      };
      const missing = [0, 1, -1].map(missingWithCydLate).reduce((best, next) => (next.length < best.length ? next : best));
      const allowed = Math.floor(count / 10);
      expect(missing.length <= allowed, 'the output does not hold the two voices decoded and summed', {
        expected: `the ${count} frames of clip(Bob's decoded packet + Cyd's decoded packet), in order, each within ${MATCH_TOLERANCE * 100} % RMS (at most ${allowed} missing, for timing hiccups; Cyd's stream may start a tick before or after Bob's)`,
        actual: `${missing.length} missing (frames ${missing.slice(0, 12).join(', ')}${missing.length > 12 ? ', ...' : ''}); the recording: ${describeRecording(played)}`,
        hint: 'one Opus decoder per speaker id; each 20 ms of your playback clock, add the decoded frames of every speaker and clip to 16 bits (an average halves each voice)',
      });
    },
  },
  {
    name: 'client: one lost VOICE (a missing sequence number) is concealed: no run of zeros, the level goes on, the voice after it keeps its time',
    subject: 'client',
    async run(context) {
      const count = 50;
      const lost = 25;
      // A slow sweep: steady enough for concealment to continue it, changing enough to find each frame.
      const bob = speakerSweep(400, 480, 0.3, count);
      const steps = Array.from({ length: count }, (_, i) => (i === lost ? LOST : voice(1, 300 + i, bob.packets[i]!)));
      const played = await record(context, [{ id: 1, name: 'Bob' }], steps, 2.5);
      // The test's own decoder, with libopus's concealment for the lost packet.
      const decoder = createOpusDecoder();
      const expected = Array.from({ length: count }, (_, i) => samplesOf(i === lost ? decoder.conceal() : decoder.decode(bob.packets[i]!)));
      const [before, after] = [lost - 3, lost + 5];
      const start = findFrame(played, expected[before]!, 0);
      expect(start !== -1, `the output does not hold Bob's voice before the loss`, {
        expected: `Bob's decoded frame ${before} somewhere in the recording (within ${MATCH_TOLERANCE * 100} % RMS)`,
        actual: describeRecording(played),
        hint: 'decode each VOICE packet and play it at your own 20 ms clock',
      });
      const end = start + (after - before + 1) * FRAME_SAMPLES;
      const zeros = longestZeroRun(played, start, end);
      const quietest = quietestWindowDb(played, start, end);
      const toneLevel = levelDb(expected[lost - 1]!);
      expect(zeros < FRAME_SAMPLES / 10 && quietest > toneLevel - 20, 'the lost packet left a hole', {
        expected: `from Bob's frame ${before} to frame ${after}, packet ${lost} lost between: no run of ${FRAME_SAMPLES / 10} or more zero samples, no 10 ms quieter than 20 dB under the voice (${toneLevel.toFixed(1)} dBFS)`,
        actual: `longest run of zeros there: ${zeros} samples; quietest 10 ms: ${quietest.toFixed(1)} dBFS; ${describeRecording(played)}`,
        hint: 'when a later packet waits but the next sequence number is missing, play the decoder\'s concealment (decode with no packet) instead of silence',
      });
      const afterAt = findFrame(played, expected[after]!, start + FRAME_SAMPLES);
      const shift = afterAt - (start + (after - before) * FRAME_SAMPLES);
      expect(afterAt !== -1 && Math.abs(shift) <= FRAME_SAMPLES / 4, 'after the lost packet the voice is not where it belongs', {
        expected: `Bob's frame ${after} ${(after - before) * FRAME_MS} ms after frame ${before} (the lost packet takes its 20 ms), within ${MATCH_TOLERANCE * 100} % RMS`,
        actual: afterAt === -1 ? `frame ${after} not found after frame ${before}; ${describeRecording(played)}` : `${(shift / (SAMPLE_RATE / 1000)).toFixed(1)} ms off`,
        hint: 'a lost packet takes its 20 ms (concealed); do not skip it, and do not stop and rebuffer when a later packet is already waiting',
      });
    },
  },
  {
    name: 'client: VOICE carrying its own id is never played',
    subject: 'client',
    async run(context) {
      // First 1 s of "its own" voice at 700 Hz (a server must never send it), then Bob at 300 Hz.
      const count = 50;
      const own = speakerSweep(700, 700, 0.3, count);
      const bob = speakerSweep(300, 300, 0.3, count);
      const steps = [...own.packets.map((packet, i) => voice(OWN_ID, i, packet)), ...bob.packets.map((packet, i) => voice(1, i, packet))];
      const played = await record(context, [{ id: 1, name: 'Bob' }], steps, 3.5);
      const ownPower = tonePower(played, 700);
      const bobPower = tonePower(played, 300);
      const bobExpected = tonePower(samplesOf(Buffer.concat(bob.pcm)), 300);
      expect(bobPower > bobExpected / 2, 'Bob\'s voice is missing from the output, so the check cannot tell', {
        expected: 'Bob\'s 300 Hz tone (VOICE from id 1) in the output WAV, at about its level',
        actual: `300 Hz power ${(10 * Math.log10(bobPower / bobExpected)).toFixed(1)} dB against the tone sent; ${describeRecording(played)}`,
        hint: 'decode and play the VOICE of every other speaker',
      });
      expect(ownPower < bobPower / 100, 'the client played a VOICE that carries its own id', {
        expected: `nothing of the 700 Hz tone sent as speaker ${OWN_ID} (the id in WELCOME): at least 20 dB under Bob's tone`,
        actual: `700 Hz power ${(10 * Math.log10(ownPower / bobPower)).toFixed(1)} dB against Bob's 300 Hz`,
        hint: 'ignore any VOICE whose speaker is your own id from WELCOME: you never hear yourself',
      });
    },
  },
  {
    name: `client: a WELCOME without "protocol": "${PROTOCOL}" is refused: one line about the protocol, non-zero exit, no VOICE sent`,
    subject: 'client',
    async run(context) {
      // A stage 04 server: it ignores "protocol" in HELLO and welcomes anyone in its own format.
      const session = await startClientSession(context, 'Ada', ['--input', 'tone:440', '--output', 'null', '--duration', '3'], (hello) =>
        Buffer.concat([
          jsonFrameBytes(WELCOME, { name: 'Ada', room: typeof hello.room === 'string' ? hello.room : DEFAULT_ROOM, sample_rate: SAMPLE_RATE, frame_samples: FRAME_SAMPLES }),
          jsonFrameBytes(USERS, { room: DEFAULT_ROOM, users: ['Ada'] }),
        ]),
      );
      try {
        const result = await session.client.exit(10_000);
        const lines = errorLines(result.stderr);
        const sentVoice = session.sent().some((frame) => frame.type === VOICE);
        expect(result.exitCode !== 0 && !result.timedOut && lines.length === 1 && /protocol/i.test(lines[0]!), 'the client did not refuse a server of another protocol in one line with a non-zero exit', {
          expected: `a non-zero exit, and one line on standard error saying the server speaks another protocol than ${PROTOCOL}`,
          actual: describeRun(result),
          hint: `check WELCOME's "protocol": anything but "${PROTOCOL}" (a stage 02-04 server sends none) means this server cannot understand Opus VOICE`,
        });
        expect(!sentVoice, 'the client sent VOICE to a server of another protocol', {
          expected: 'no VOICE (0x03): that server would read the Opus packets as PCM',
          actual: `after WELCOME the client sent ${describeFrames(session.sent().slice(1), TYPE_NAMES)}`,
          hint: 'refuse before starting to send voice',
        });
      } finally {
        session.client.kill();
        await session.fake.close();
      }
    },
  },
  clientJitterBufferCheck((context, speaker, steps) => record(context, [speaker], steps.map((step) => Buffer.concat(step.map((v) => voice(speaker.id, v.sequence, v.packet)))), 2.5)),
  clientJitterStartCheck((context, speaker, seconds, speak) => recordWhile(context, [speaker], seconds, (session) => speak((packets) => session.connection.send(Buffer.concat(packets.map((v) => voice(speaker.id, v.sequence, v.packet))))))),
  controlLimitClientCheck({ usersType: USERS, start: (context, name) => startSession(context, name, ['--input', 'silence', '--output', 'null']), users: (names) => ({ room: DEFAULT_ROOM, users: names.map((name, i) => ({ id: i === 0 ? OWN_ID : 100 + i, name })) }), usersCommand: 'users' }),
];
