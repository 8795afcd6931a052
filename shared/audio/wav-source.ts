// Plays a WAV file as if someone were speaking it into a microphone: useful
// for repeatable demos and tests. Any PCM or float WAV is accepted; it is
// converted once, at open time, to the course format (48 kHz mono 16-bit).

import { readFileSync } from 'node:fs';
import wavefile from 'wavefile';
import { FRAME_BYTES, SAMPLE_MAX, SAMPLE_MIN, SAMPLE_RATE } from './format.ts';
import { ClockedSource } from './clocked-source.ts';
import type { FrameClockOptions } from './frame-clock.ts';
import { AudioFormatError } from './types.ts';

/** The fields of wavefile's 'fmt ' chunk that we use (its typings say only `object`). */
interface FmtChunk {
  audioFormat: number;
  numChannels: number;
  sampleRate: number;
}

/** WAVE format codes for uncompressed samples; anything else (ADPCM, A-law, MP3...) is refused. */
const PCM = 1;
const IEEE_FLOAT = 3;
const EXTENSIBLE = 0xfffe; // a newer header layout; wavefile reads its PCM samples as usual

/** Keeps wavefile's error messages (which may span lines) to one line. */
function oneLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ').trim();
}

/** Reads a WAV file and returns its samples as 48 kHz mono s16le PCM. Throws AudioFormatError. */
export function readWavPcm(path: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new AudioFormatError(`cannot read ${path}: ${oneLine(error)}`);
  }
  const wav = new wavefile.WaveFile();
  try {
    wav.fromBuffer(bytes);
  } catch (error) {
    throw new AudioFormatError(`${path} is not a WAV file wavefile can read (${oneLine(error)})`);
  }
  // Copied: wavefile replaces its fmt chunk during conversions.
  const fmt = { ...(wav.fmt as FmtChunk) };
  if (![PCM, IEEE_FLOAT, EXTENSIBLE].includes(fmt.audioFormat) || ['4', '8a', '8m'].includes(wav.bitDepth)) {
    throw new AudioFormatError(
      `${path} is a compressed WAV (format code ${fmt.audioFormat}): only PCM or float WAV files can be played`,
    );
  }
  const samples = (wav.data as { samples: Uint8Array }).samples;
  // Already in the course format (and little-endian, i.e. not RIFX): use the bytes as they are.
  const native = wav.bitDepth === '16' && fmt.numChannels === 1 && fmt.sampleRate === SAMPLE_RATE;
  if (native && wav.container !== 'RIFX') {
    return Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
  }
  return convertToCourseFormat(wav, fmt);
}

/** Any bit depth, rate and channel count -> 48 kHz mono 16-bit, using floats in between. */
function convertToCourseFormat(wav: InstanceType<typeof wavefile.WaveFile>, fmt: FmtChunk): Buffer {
  wav.toBitDepth('32f'); // samples become floats in -1..1 whatever the original depth
  const channels = wav.getSamples(false, Float64Array) as unknown as Float64Array | Float64Array[];
  let mono = Array.isArray(channels) ? downmix(channels) : channels;
  if (fmt.sampleRate !== SAMPLE_RATE) {
    // Resample only the mono signal: cheaper than resampling every channel.
    const monoWav = new wavefile.WaveFile();
    monoWav.fromScratch(1, fmt.sampleRate, '32f', mono);
    monoWav.toSampleRate(SAMPLE_RATE);
    mono = monoWav.getSamples(false, Float64Array);
  }
  return floatsToPcm16(mono);
}

/** Averages the channels into one. */
function downmix(channels: Float64Array[]): Float64Array {
  const mono = new Float64Array(channels[0]!.length);
  for (const channel of channels) {
    for (let i = 0; i < mono.length; i++) mono[i]! += channel[i]! / channels.length;
  }
  return mono;
}

/** Floats in -1..1 to s16le, clipped (resampling can overshoot slightly). */
function floatsToPcm16(samples: Float64Array): Buffer {
  const pcm = Buffer.alloc(samples.length * 2);
  for (let i = 0; i < samples.length; i++) {
    const x = samples[i]!;
    // The same scaling wavefile uses: +1.0 -> 32767, -1.0 -> -32768.
    const value = Math.round(x > 0 ? x * SAMPLE_MAX : x * -SAMPLE_MIN);
    pcm.writeInt16LE(Math.min(SAMPLE_MAX, Math.max(SAMPLE_MIN, value)), i * 2);
  }
  return pcm;
}

/** Splits PCM into frames; the last one is padded with silence. */
export function splitIntoFrames(pcm: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  for (let offset = 0; offset < pcm.length; offset += FRAME_BYTES) {
    if (offset + FRAME_BYTES <= pcm.length) {
      frames.push(pcm.subarray(offset, offset + FRAME_BYTES));
    } else {
      const last = Buffer.alloc(FRAME_BYTES); // zeros = silence
      pcm.copy(last, 0, offset);
      frames.push(last);
    }
  }
  return frames;
}

/** A real-time source that plays a WAV file once, then calls onEnd. Throws AudioFormatError. */
export function createWavSource(path: string, clockOptions?: FrameClockOptions): ClockedSource {
  const frames = splitIntoFrames(readWavPcm(path));
  let next = 0;
  return new ClockedSource(`file ${path}`, () => frames[next++] ?? null, clockOptions);
}
