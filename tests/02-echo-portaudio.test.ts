// The stage 02 reference client on the REAL PortAudio path, headless: `--input mic --output
// speaker` against a file-backed ALSA "sound card" (tests/support/file-backed-alsa.ts), talking
// to a fake server that records every AUDIO frame and echoes it. The bytes are checked exactly:
// what the "microphone" captured reached the server, and what the server sent back was played.
//
// Facts about the test device (see file-backed-alsa.ts): capture starts with in.raw byte-exact
// from offset 0 but runs far faster than real time and repeats stale data after ~16 frames, so
// the mic source's token bucket decides how many frames are sent; playback writes the PCM
// byte-exact to out.raw, with silence wherever no frame was waiting.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { createFileBackedAlsa, createNoSoundCardAlsa } from './support/file-backed-alsa.ts';
import { FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE } from '#shared/audio/format.ts';
import { MIC_BURST_FRAMES } from '#shared/audio/mic-source.ts';
import { repoRoot } from '../conformance/harness/checks.ts';
import { FakeServer } from '../conformance/harness/fake-server.ts';
import { distinctivePcm, frameBytes, jsonFrameBytes, readFrame } from '../conformance/harness/frame-wire.ts';
import { runCommand } from '../conformance/harness/run-command.ts';
import { freePort } from '../conformance/harness/server-process.ts';

const HELLO = 0x01;
const WELCOME = 0x02;
const AUDIO = 0x03;
const BYE = 0x04;

// Absolute paths: the client runs in the ALSA temp folder (naudiodon may write crash.log there).
const client = `"${process.execPath}" --import ${import.meta.resolve('tsx')} ${join(repoRoot, '02-echo', 'main.ts')} client`;

function framesOf(pcm: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  for (let offset = 0; offset + FRAME_BYTES <= pcm.length; offset += FRAME_BYTES) frames.push(pcm.subarray(offset, offset + FRAME_BYTES));
  return frames;
}

t.test('mic to server to speaker: captured audio is sent byte-exact and the echo is played byte-exact', async (t) => {
  const inPcm = distinctivePcm(50, FRAME_BYTES, 21);
  const alsa = createFileBackedAlsa(inPcm);
  t.teardown(alsa.cleanup);
  const fake = await FakeServer.start();
  t.teardown(() => fake.close());

  const seconds = 2;
  const run = runCommand(client, ['--name', 'Ada', '--host', '127.0.0.1', '--port', String(fake.port), '--input', 'mic', '--output', 'speaker', '--duration', String(seconds)], {
    cwd: alsa.dir,
    env: alsa.env, // the pretend sound card, for the child only
    timeoutMs: 30_000,
  });
  const connection = await fake.connection(0, 20_000);
  const hello = await readFrame(connection, 'HELLO', { timeoutMs: 20_000 });
  t.equal(hello.type, HELLO, 'the client starts with HELLO');
  connection.send(jsonFrameBytes(WELCOME, { name: 'Ada', sample_rate: SAMPLE_RATE, frame_samples: FRAME_SAMPLES }));
  const welcomedAt = performance.now();

  const sent: Buffer[] = []; // what reached the server, in order
  for (;;) {
    const frame = await readFrame(connection, 'AUDIO frames, then BYE', { timeoutMs: 15_000 });
    if (frame.type !== AUDIO) {
      t.equal(frame.type, BYE, 'the client leaves with BYE');
      break;
    }
    sent.push(Buffer.from(frame.payload));
    connection.send(frameBytes(AUDIO, frame.payload)); // echo
  }
  const talkedMs = performance.now() - welcomedAt;
  connection.end();
  const result = await run;
  t.equal(result.exitCode, 0, `the client exits 0 after --duration (stderr: ${JSON.stringify(result.stderr.slice(-300))})`);

  // What the microphone captured reached the server.
  t.ok(sent.length > MIC_BURST_FRAMES, `the server received ${sent.length} AUDIO frames`);
  t.ok(sent.every((frame) => frame.length === FRAME_BYTES), 'every AUDIO payload is one 1920-byte frame');
  t.same(sent.slice(0, MIC_BURST_FRAMES), framesOf(inPcm).slice(0, MIC_BURST_FRAMES), 'the first frames are in.raw from offset 0, in order');
  t.ok(sent.every((frame) => inPcm.indexOf(frame) >= 0), 'every frame sent is byte-exact from in.raw (the device repeats stale data, not noise)');
  // The device delivers about 30 times faster than real time; the mic source must not flood the
  // network. The client's pacing starts before our WELCOME (we cannot see when), so allow 10% and
  // two frames on top of real time plus the burst: an unpaced source would send ~30x more.
  const realTimeFrames = talkedMs / FRAME_MS;
  t.ok(sent.length <= MIC_BURST_FRAMES + realTimeFrames * 1.1 + 2, `at most real time plus a burst: ${sent.length} frames in ${talkedMs.toFixed(0)} ms`);

  // What the server echoed was played, byte-exact. The playback buffer drops its oldest frame when
  // echoes arrive in a burst faster than the device drains (bounded latency, by design), which a
  // loaded machine can cause: so require nearly all of them, not every one.
  const outPcm = readFileSync(alsa.outPath);
  const played = sent.filter((frame) => outPcm.indexOf(frame) >= 0).length;
  t.ok(played >= sent.length * 0.9, `the echoed frames were played (${played} of ${sent.length} found in out.raw, at least 90% needed)`);
});

t.test('with no sound card, --input mic or --output speaker fails in one line naming both alternatives', async (t) => {
  const alsa = createNoSoundCardAlsa();
  t.teardown(alsa.cleanup);
  const port = await freePort(); // audio is opened before connecting: no server is needed
  const common = ['--name', 'Ada', '--host', '127.0.0.1', '--port', String(port)];
  const options = { cwd: alsa.dir, env: alsa.env, timeoutMs: 30_000 };

  const mic = await runCommand(client, [...common, '--input', 'mic', '--output', 'null'], options);
  t.not(mic.exitCode, 0, 'a missing microphone is a failure');
  const noCard = 'error: no sound card found (no microphone, no speaker): use --input tone:440 --output out.wav (other inputs: silence, FILE.wav; other outputs: null)\n';
  t.equal(mic.stderr, noCard, 'one line naming the other inputs AND outputs: no ALSA noise, no stack trace');

  const speaker = await runCommand(client, [...common, '--input', 'silence', '--output', 'speaker'], options);
  t.not(speaker.exitCode, 0, 'a missing speaker is a failure');
  t.equal(speaker.stderr, noCard, 'the same line for the speaker');
});
