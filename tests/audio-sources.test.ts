// Computed sources: the tone is a correct sine, silence is silent, and both
// deliver one frame per 20 ms tick of their clock.
import t from 'tap';
import { FRAME_BYTES, SAMPLE_RATE } from '#shared/audio/format.ts';
import { ManualScheduler } from './support/manual-scheduler.ts';
import { createSilenceSource } from '#shared/audio/silence-source.ts';
import { createToneSource, ToneGenerator } from '#shared/audio/tone-source.ts';

function samplesOf(frames: Buffer[]): number[] {
  const all = Buffer.concat(frames);
  const samples: number[] = [];
  for (let i = 0; i < all.length; i += 2) samples.push(all.readInt16LE(i));
  return samples;
}

/** Sign changes: a sine of f Hz crosses zero 2f times per second. */
function zeroCrossings(samples: number[]): number {
  let count = 0;
  for (let i = 1; i < samples.length; i++) if (samples[i - 1]! < 0 !== samples[i]! < 0) count++;
  return count;
}

t.test('the tone is a 440 Hz sine at -12 dBFS, continuous across frames', async (t) => {
  const generator = new ToneGenerator(440);
  const frames = Array.from({ length: 50 }, () => generator.nextFrame()); // one second
  t.ok(frames.every((frame) => frame.length === FRAME_BYTES), 'every frame is 1920 bytes');
  const samples = samplesOf(frames);

  // Compared with a sine computed from the absolute sample index: any phase
  // jump at a frame boundary would show up here.
  const amplitude = 0.25 * 32767;
  const worst = Math.max(
    ...samples.map((s, n) => Math.abs(s - amplitude * Math.sin((2 * Math.PI * 440 * n) / SAMPLE_RATE))),
  );
  t.ok(worst <= 1, `within 1 of the ideal sine (worst ${worst.toFixed(3)})`);

  const crossings = zeroCrossings(samples);
  t.ok(Math.abs(crossings - 880) <= 2, `${crossings} zero crossings in one second (880 expected)`);
  t.equal(Math.max(...samples), Math.round(amplitude), 'peak is a quarter of full scale');
});

t.test('the tone amplitude and frequency are configurable', async (t) => {
  const generator = new ToneGenerator(1000, 0.5);
  const samples = samplesOf([generator.nextFrame(), generator.nextFrame()]); // 40 ms
  t.ok(Math.abs(zeroCrossings(samples) - 80) <= 2, '1000 Hz crosses zero 80 times in 40 ms');
  t.equal(Math.max(...samples), Math.round(0.5 * 32767));
});

t.test('the tone source delivers one frame per tick of its clock', async (t) => {
  const scheduler = new ManualScheduler();
  const source = createToneSource(440, undefined, { scheduler });
  t.equal(source.description, 'tone 440 Hz', 'describes itself');
  const frames: Buffer[] = [];
  source.start((frame) => frames.push(frame), () => t.fail('a tone never ends'));
  scheduler.advance(1000);
  await source.stop();
  scheduler.advance(1000);
  t.equal(frames.length, 51, 'ticks at 0, 20, ..., 1000 ms; none after stop()');
  const reference = new ToneGenerator(440);
  t.ok(frames.every((frame) => frame.equals(reference.nextFrame())), 'the frames are the generator output in order');
});

t.test('silence is all zeros, one frame per tick', async (t) => {
  const scheduler = new ManualScheduler();
  const source = createSilenceSource({ scheduler });
  const frames: Buffer[] = [];
  source.start((frame) => frames.push(frame), () => t.fail('silence never ends'));
  scheduler.advance(200);
  await source.stop();
  t.equal(frames.length, 11, 'ticks at 0, 20, ..., 200 ms');
  t.ok(frames.every((frame) => frame.length === FRAME_BYTES && frame.every((byte) => byte === 0)), 'all zeros');
});
