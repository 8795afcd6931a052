// WAV files in and out: any PCM/float WAV is read as 48 kHz mono 16-bit,
// unreadable files are refused in one line, and the WAV sink's file is valid
// at every moment, even if close() is never called.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import wavefile from 'wavefile';
import { FRAME_BYTES } from '#shared/audio/format.ts';
import { ManualScheduler } from './support/manual-scheduler.ts';
import { AudioFormatError } from '#shared/audio/types.ts';
import { WavFileSink } from '#shared/audio/wav-sink.ts';
import { createWavSource, readWavPcm } from '#shared/audio/wav-source.ts';

const dir = mkdtempSync(join(tmpdir(), 'audio-wav-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** Writes a WAV made by wavefile (independent of the code under test). */
function writeWav(name: string, channels: number, rate: number, bitDepth: string, samples: number[][]): string {
  const wav = new wavefile.WaveFile();
  wav.fromScratch(channels, rate, bitDepth, channels === 1 ? samples[0]! : samples);
  const path = join(dir, name);
  writeFileSync(path, wav.toBuffer());
  return path;
}

/** `seconds` of a sine at `hz`, as numbers scaled by `scale` (1 for floats, 127 for 8-bit...). */
function sine(hz: number, rate: number, seconds: number, amplitude: number, scale: number, offset = 0): number[] {
  return Array.from({ length: Math.round(rate * seconds) }, (_, n) =>
    Math.round((offset + amplitude * Math.sin((2 * Math.PI * hz * n) / rate)) * scale * 1e6) / 1e6,
  );
}

function int16Samples(pcm: Buffer): number[] {
  const samples: number[] = [];
  for (let i = 0; i < pcm.length; i += 2) samples.push(pcm.readInt16LE(i));
  return samples;
}

function zeroCrossings(samples: number[]): number {
  let count = 0;
  for (let i = 1; i < samples.length; i++) if (samples[i - 1]! < 0 !== samples[i]! < 0) count++;
  return count;
}

/** Length, frequency and peak (fraction of full scale) of converted sine PCM. */
function measureSine(pcm: Buffer): { samples: number; hz: number; peak: number } {
  const samples = int16Samples(pcm);
  const middle = samples.slice(100, -100); // away from the resampler's edges
  const seconds = middle.length / 48_000;
  return {
    samples: samples.length,
    hz: zeroCrossings(middle) / 2 / seconds,
    peak: Math.max(...middle) / 32767,
  };
}

t.test('a 48 kHz mono 16-bit file is used byte for byte', async (t) => {
  const samples = Array.from({ length: 5000 }, (_, i) => ((i * 7919) % 65536) - 32768);
  const path = writeWav('native.wav', 1, 48_000, '16', [samples]);
  t.same(int16Samples(readWavPcm(path)), samples);
});

t.test('a big-endian (RIFX) 48 kHz mono 16-bit file gets its bytes swapped', async (t) => {
  const samples = [1, 2, -3, 1000, -32768, 32767];
  const wav = new wavefile.WaveFile();
  wav.fromScratch(1, 48_000, '16', samples, { container: 'RIFX' });
  const path = join(dir, 'rifx.wav');
  writeFileSync(path, wav.toBuffer());
  t.same(int16Samples(readWavPcm(path)), samples);
});

t.test('44.1 kHz stereo 24-bit is resampled and the channels averaged', async (t) => {
  const scale = 2 ** 23 - 1;
  const left = sine(1000, 44_100, 0.5, 0.5, scale).map(Math.round);
  const right = sine(1000, 44_100, 0.5, 0.3, scale).map(Math.round);
  const measured = measureSine(readWavPcm(writeWav('stereo24.wav', 2, 44_100, '24', [left, right])));
  t.equal(measured.samples, 24_000, 'half a second at 48 kHz');
  t.ok(Math.abs(measured.hz - 1000) < 5, `still 1000 Hz (${measured.hz.toFixed(1)})`);
  t.ok(Math.abs(measured.peak - 0.4) < 0.01, `peak ${measured.peak.toFixed(3)} of full scale (0.4 expected)`);
});

t.test('44.1 kHz stereo 16-bit (a CD rip) is converted, and says so first', async (t) => {
  const left = sine(440, 44_100, 2, 0.6, 32_767).map(Math.round);
  const right = sine(440, 44_100, 2, 0.2, 32_767).map(Math.round);
  const path = writeWav('cd.wav', 2, 44_100, '16', [left, right]);
  const said: string[] = [];
  const measured = measureSine(readWavPcm(path, (line) => said.push(line)));
  t.same(said, [`converting ${path}: 44100 Hz stereo 16-bit → 48000 Hz mono 16-bit`]);
  t.equal(measured.samples, 96_000, 'two seconds at 48 kHz');
  t.ok(Math.abs(measured.hz - 440) < 2, `still 440 Hz (${measured.hz.toFixed(1)})`);
  t.ok(Math.abs(measured.peak - 0.4) < 0.01, `peak ${measured.peak.toFixed(3)} of full scale (0.4 expected: the channels averaged)`);

  const quiet: string[] = [];
  readWavPcm(writeWav('native-quiet.wav', 1, 48_000, '16', [[1, 2, 3]]), (line) => quiet.push(line));
  t.same(quiet, [], 'a file already in the course format is not "converted"');
});

t.test('96 kHz is filtered before it is halved: a tone above 24 kHz does not fold back as a false one', async (t) => {
  // 1 kHz at 0.5 plus 30 kHz at 0.3. Without the low-pass, 30 kHz would come back as 18 kHz
  // (48 - 30) at 0.3: the peak would reach 0.8 and the zero crossings would count 18 kHz.
  const rate = 96_000;
  const samples = Array.from({ length: rate / 2 }, (_, n) => 0.5 * Math.sin((2 * Math.PI * 1000 * n) / rate) + 0.3 * Math.sin((2 * Math.PI * 30_000 * n) / rate));
  const measured = measureSine(readWavPcm(writeWav('hires.wav', 1, rate, '32f', [samples])));
  t.equal(measured.samples, 24_000, 'half a second at 48 kHz');
  t.ok(Math.abs(measured.hz - 1000) < 5, `only the 1000 Hz tone is left (${measured.hz.toFixed(1)} Hz)`);
  t.ok(Math.abs(measured.peak - 0.5) < 0.01, `peak ${measured.peak.toFixed(3)} of full scale (0.5 expected)`);
});

t.test('44.1 kHz stereo 8-bit (unsigned samples) is converted', async (t) => {
  // 8-bit WAV samples are unsigned: silence is 128.
  const channel = sine(1000, 44_100, 0.5, 0.5, 127, 128 / 127).map(Math.round);
  const measured = measureSine(readWavPcm(writeWav('stereo8.wav', 2, 44_100, '8', [channel, channel])));
  t.equal(measured.samples, 24_000, 'half a second at 48 kHz');
  t.ok(Math.abs(measured.hz - 1000) < 5, `still 1000 Hz (${measured.hz.toFixed(1)})`);
  t.ok(Math.abs(measured.peak - 0.5) < 0.01, `peak ${measured.peak.toFixed(3)} of full scale (0.5 expected)`);
});

t.test('16 kHz mono 32-bit float is upsampled', async (t) => {
  const samples = sine(1000, 16_000, 0.5, 0.7, 1);
  const measured = measureSine(readWavPcm(writeWav('float.wav', 1, 16_000, '32f', [samples])));
  t.equal(measured.samples, 24_000, 'half a second at 48 kHz');
  t.ok(Math.abs(measured.hz - 1000) < 5, `still 1000 Hz (${measured.hz.toFixed(1)})`);
  t.ok(Math.abs(measured.peak - 0.7) < 0.01, `peak ${measured.peak.toFixed(3)} of full scale (0.7 expected)`);
});

t.test('files that are not usable WAVs are refused with one line naming the file', async (t) => {
  const text = join(dir, 'notes.wav');
  writeFileSync(text, 'this is not audio\n');
  t.throws(() => readWavPcm(text), {
    name: 'AudioFormatError',
    message: `${text} is not a WAV file wavefile can read (Not a supported format.)`,
  });

  const alaw = new wavefile.WaveFile();
  alaw.fromScratch(1, 8000, '16', [0, 1000, -1000, 0]);
  alaw.toALaw();
  const compressed = join(dir, 'alaw.wav');
  writeFileSync(compressed, alaw.toBuffer());
  t.throws(() => readWavPcm(compressed), {
    name: 'AudioFormatError',
    message: `${compressed} is a compressed WAV (format code 6): only PCM or float WAV files can be played`,
  });

  const missing = join(dir, 'missing.wav');
  try {
    readWavPcm(missing);
    t.fail('a missing file must throw');
  } catch (error) {
    t.type(error, AudioFormatError);
    const message = (error as Error).message;
    t.match(message, `cannot read ${missing}: ENOENT`);
    t.notMatch(message, '\n', 'one line');
  }
});

t.test('the WAV source plays the file once, the last frame padded with silence', async (t) => {
  // One and a half frames of a recognisable ramp.
  const samples = Array.from({ length: 1440 }, (_, i) => i + 1);
  const path = writeWav('ramp.wav', 1, 48_000, '16', [samples]);
  const scheduler = new ManualScheduler();
  const source = createWavSource(path, { scheduler });
  t.equal(source.description, `file ${path}`);
  const frames: Buffer[] = [];
  let ends = 0;
  source.start((frame) => frames.push(frame), () => ends++);
  scheduler.advance(1000);
  t.equal(frames.length, 2);
  t.equal(ends, 1, 'onEnd called once, after the last frame');
  t.ok(frames.every((frame) => frame.length === FRAME_BYTES));
  const expected = [...samples, ...new Array<number>(480).fill(0)];
  t.same(int16Samples(Buffer.concat(frames)), expected);
});

t.test('the WAV sink file is valid after every write, without close()', async (t) => {
  const path = join(dir, 'recorded.wav');
  const sink = new WavFileSink(path);
  const frames = [1, 2, 3].map((n) => Buffer.alloc(FRAME_BYTES, n));

  t.same(readWavPcm(path), Buffer.alloc(0), 'a fresh file is a valid empty WAV');
  for (let i = 0; i < frames.length; i++) {
    sink.write(frames[i]!);
    // Read back both with our reader and with wavefile directly.
    t.same(readWavPcm(path), Buffer.concat(frames.slice(0, i + 1)), `valid after frame ${i + 1}`);
  }
  const wav = new wavefile.WaveFile(readFileSync(path));
  t.match(wav.fmt, { audioFormat: 1, numChannels: 1, sampleRate: 48_000, bitsPerSample: 16 });
  const bytes = readFileSync(path);
  t.equal(bytes.readUInt32LE(4), bytes.length - 8, 'RIFF size = file size - 8');
  t.equal(bytes.readUInt32LE(40), 3 * FRAME_BYTES, 'data size = three frames');

  await sink.close();
  await sink.close(); // idempotent
  t.same(readWavPcm(path), Buffer.concat(frames), 'still valid after close');
  t.throws(() => sink.write(frames[0]!), /after close/);
});
