// TimeKeepingSink: --output FILE.wav is a recording that keeps time (silence where nothing arrived).
// A fake clock drives it; a real WAV file receives it in the last test.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FRAME_BYTES, FRAME_MS } from '#shared/audio/format.ts';
import { openSink } from '#shared/audio/open-audio.ts';
import { RECORDING_SLACK_MS, TimeKeepingSink } from '#shared/audio/recording-sink.ts';
import type { AudioSink } from '#shared/audio/types.ts';
import { readWavPcm } from '#shared/audio/wav-source.ts';

/** Keeps what it is given, in order. */
class CapturingSink implements AudioSink {
  readonly description = 'capture';
  readonly frames: Buffer[] = [];
  closed = false;
  write(frame: Buffer): void {
    this.frames.push(frame);
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  /** 'S' for a silent frame, else the frame's fill byte as a digit. */
  get pattern(): string {
    return this.frames.map((frame) => (frame.every((byte) => byte === 0) ? 'S' : String(frame[0]))).join('');
  }
}

function recorder() {
  let time = 1_000; // any origin: the recording counts from its creation
  const inner = new CapturingSink();
  const sink = new TimeKeepingSink(inner, () => time);
  return { inner, sink, advance: (ms: number) => (time += ms) };
}

const voice = (n: number) => Buffer.alloc(FRAME_BYTES, n);

t.test('frames arriving every 20 ms are recorded back to back, with no silence between', async (t) => {
  const { inner, sink, advance } = recorder();
  for (let n = 1; n <= 5; n++) {
    advance(FRAME_MS);
    sink.write(voice(n));
  }
  t.equal(inner.pattern, '12345');
  await sink.close();
  t.equal(inner.pattern, '12345', 'closing at the time of the last frame adds nothing');
  t.ok(inner.closed, 'close() closes the file');
});

t.test('a frame up to the slack late (network jitter) does not chop the speech', async (t) => {
  const { inner, sink, advance } = recorder();
  sink.write(voice(1));
  advance(FRAME_MS + RECORDING_SLACK_MS - 1);
  sink.write(voice(2));
  t.equal(inner.pattern, '12');
});

t.test('a pause stays a pause: a second without frames is a second of silence, give or take the slack', async (t) => {
  const { inner, sink, advance } = recorder();
  sink.write(voice(1));
  advance(1_000 + FRAME_MS);
  sink.write(voice(2));
  const silentMs = (inner.frames.length - 2) * FRAME_MS;
  t.ok(silentMs >= 1_000 - RECORDING_SLACK_MS - FRAME_MS && silentMs <= 1_000, `${silentMs} ms of silence between the frames`);
  t.match(inner.pattern, /^1S+2$/, 'the frames keep their order around the silence');
});

t.test('closing records silence up to the end of the session: the file is as long as the session', async (t) => {
  const { inner, sink, advance } = recorder();
  advance(300); // the handshake: nothing heard yet
  sink.write(voice(7));
  advance(2_000); // nobody speaks any more
  await sink.close();
  t.equal(inner.frames.length, Math.floor(2_300 / FRAME_MS), '2.3 s of session, 2.3 s of recording');
  t.equal(sink.recordedSeconds, 2.3);
  t.match(inner.pattern, /^S+7S+$/);
  await sink.close(); // twice is fine
});

t.test('a burst of frames faster than real time is kept whole: a recording never drops what arrived', async (t) => {
  const { inner, sink, advance } = recorder();
  advance(500); // a stall, then 20 frames at once
  const burst = Array.from({ length: 20 }, (_, n) => voice(1 + (n % 9)));
  for (const frame of burst) sink.write(frame);
  t.same(inner.frames.slice(-20), burst, 'all 20, in order, at the end');
  t.equal(inner.frames.length, Math.floor((500 - RECORDING_SLACK_MS) / FRAME_MS) + 20, 'silence for the stall (less the slack), then all 20 frames');
  await sink.close();
  t.equal(inner.frames.length, Math.floor((500 - RECORDING_SLACK_MS) / FRAME_MS) + 20, 'ahead of the clock: close adds nothing');
  t.throws(() => sink.write(voice(1)), /after close/);
});

t.test('openSink("x.wav") records with a real clock into a real WAV file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'recording-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'heard.wav');
  const sink = await openSink(path);
  sink.write(voice(3));
  await new Promise((resolve) => setTimeout(resolve, 400));
  await sink.close();
  const pcm = readWavPcm(path);
  t.ok(pcm.length >= (400 / FRAME_MS) * FRAME_BYTES, `${pcm.length / FRAME_BYTES} frames for a 400 ms session`);
  t.ok(pcm.subarray(0, FRAME_BYTES).equals(voice(3)), 'the frame heard first comes first');
  t.ok(pcm.subarray(FRAME_BYTES).every((byte) => byte === 0), 'then silence');
});
