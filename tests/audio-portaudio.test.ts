// The real PortAudio path, headless: openSource('mic') and openSink('speaker')
// run in a child process against a file-backed ALSA "sound card" (see
// tests/support/file-backed-alsa.ts), and the bytes are checked exactly.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { createFileBackedAlsa, createNoSoundCardAlsa } from './support/file-backed-alsa.ts';
import { FRAME_BYTES, FRAME_MS } from '#shared/audio/format.ts';
import { MIC_BURST_FRAMES } from '#shared/audio/mic-source.ts';
import { distinctivePcm } from '../conformance/harness/frame-wire.ts';

const childScript = fileURLToPath(new URL('./support/audio-portaudio-child.ts', import.meta.url));
const tsxLoader = import.meta.resolve('tsx'); // absolute: the child's cwd is a temp folder

interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the child script; cwd is the ALSA temp folder (naudiodon may write crash.log there). */
function runChild(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', tsxLoader, childScript, ...args], { cwd, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function resultOf(stdout: string): Record<string, number> {
  const line = stdout.split('\n').find((l) => l.startsWith('@@result@@'));
  return line ? JSON.parse(line.slice('@@result@@'.length)) : {};
}

function framesOf(pcm: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  for (let offset = 0; offset + FRAME_BYTES <= pcm.length; offset += FRAME_BYTES) {
    frames.push(pcm.subarray(offset, offset + FRAME_BYTES));
  }
  return frames;
}

t.test('the microphone captures in.raw byte-exact, rate-limited to real time', async (t) => {
  const inPcm = distinctivePcm(50, FRAME_BYTES, 1);
  const alsa = createFileBackedAlsa(inPcm);
  t.teardown(alsa.cleanup);

  const child = await runChild(['capture', '600'], alsa.dir, alsa.env);
  t.equal(child.code, 0, `child exited cleanly${child.code ? ': ' + child.stderr : ''}`);
  const result = resultOf(child.stdout);
  const captured = framesOf(readFileSync(join(alsa.dir, 'captured.raw')));

  t.equal(captured.length, result.framesDelivered, 'every delivered frame was saved');
  const firstFrames = framesOf(inPcm).slice(0, MIC_BURST_FRAMES);
  t.same(captured.slice(0, MIC_BURST_FRAMES), firstFrames, 'the first burst is in.raw from offset 0, in order');
  // The device runs far faster than real time and then repeats stale data,
  // so later frames are not consecutive, but each is a piece of in.raw.
  t.ok(captured.every((frame) => inPcm.indexOf(frame) >= 0), 'every captured frame is byte-exact from in.raw');

  // One frame per 20 ms plus the burst, however fast the device delivers.
  const realTimeFrames = result.elapsedMs! / FRAME_MS;
  t.ok(captured.length <= MIC_BURST_FRAMES + realTimeFrames + 1, `${captured.length} frames in ${result.elapsedMs!.toFixed(0)} ms`);
  t.ok(captured.length >= realTimeFrames / 2, 'and not far fewer');
  t.ok(result.framesDropped! > 0, `the excess was dropped (${result.framesDropped})`);
});

t.test('frames written to the speaker are played byte-exact, in order', async (t) => {
  const alsa = createFileBackedAlsa();
  t.teardown(alsa.cleanup);
  const playPcm = distinctivePcm(25, FRAME_BYTES, 2); // half a second
  writeFileSync(join(alsa.dir, 'play.raw'), playPcm);

  const child = await runChild(['play'], alsa.dir, alsa.env);
  t.equal(child.code, 0, `child exited cleanly${child.code ? ': ' + child.stderr : ''}`);
  const result = resultOf(child.stdout);
  const outPcm = readFileSync(alsa.outPath);

  // Silence (underruns) may come before and between frames; search for each.
  let position = 0;
  const found = framesOf(playPcm).map((frame) => {
    const at = outPcm.indexOf(frame, position);
    if (at >= 0) position = at + FRAME_BYTES;
    return at >= 0;
  });
  t.ok(found.every(Boolean), `all 25 frames found in order (missing: ${found.filter((f) => !f).length})`);
  t.equal(result.droppedFrames, 0, 'a sender at real time never overflows the buffer');
  // The test device takes data instantly; the sink must still not race ahead.
  const playedFrames = outPcm.length / FRAME_BYTES;
  t.ok(playedFrames <= result.elapsedMs! / FRAME_MS + 20, `${playedFrames.toFixed(0)} frames played in ${result.elapsedMs!.toFixed(0)} ms`);
});

t.test('with no sound card, the mic fails with one line that names the alternatives', async (t) => {
  const alsa = createNoSoundCardAlsa();
  t.teardown(alsa.cleanup);
  const child = await runChild(['capture', '100'], alsa.dir, alsa.env);
  t.equal(child.code, 2, 'exits with the error code of the helper');
  t.equal(
    child.stderr,
    'no sound card found (no microphone, no speaker): use --input tone:440 --output out.wav (other inputs: silence, FILE.wav; other outputs: null)\n',
    'stderr is exactly the message: no ALSA noise, no stack trace',
  );
});
