// Converts the samples of any PCM or float WAV to the course format (48 kHz mono 16-bit).
//
// Done by hand on typed arrays: wavefile's own conversions (toBitDepth, getSamples,
// toSampleRate) go through one JavaScript object per sample and took 11 s for 30 s of
// 44.1 kHz stereo. Here it is three passes over flat arrays (see `npm run bench:wav`):
//   1. decode and mix: every channel's samples to floats in -1..1, averaged into one channel;
//   2. resample: a windowed-sinc low-pass filter evaluated at each output instant;
//   3. round to 16-bit integers, clipped (resampling can overshoot a little).
import { SAMPLE_MAX, SAMPLE_MIN, SAMPLE_RATE } from './format.ts';

/** How the samples of a WAV's data chunk are laid out. */
export interface WavLayout {
  channels: number;
  sampleRate: number;
  /** 8, 16, 24 or 32 for integers (8-bit is unsigned, as in every WAV); 32 or 64 for floats. */
  bitsPerSample: number;
  float: boolean;
  /** RIFX files store samples big-endian. */
  bigEndian: boolean;
}

/** "44100 Hz stereo 16-bit": for the line that says what is being converted. */
export function describeLayout(layout: WavLayout): string {
  const channels = layout.channels === 1 ? 'mono' : layout.channels === 2 ? 'stereo' : `${layout.channels}-channel`;
  return `${layout.sampleRate} Hz ${channels} ${layout.bitsPerSample}-bit${layout.float ? ' float' : ''}`;
}

/** True when the bytes are already 48 kHz mono 16-bit little-endian: nothing to convert. */
export function isCourseFormat(layout: WavLayout): boolean {
  return layout.channels === 1 && layout.sampleRate === SAMPLE_RATE && layout.bitsPerSample === 16 && !layout.float && !layout.bigEndian;
}

/** Step 1: the data chunk's interleaved samples, every channel averaged into one, as floats in -1..1. */
export function decodeToMono(data: Uint8Array, layout: WavLayout): Float32Array {
  const bytes = layout.bitsPerSample / 8;
  const { channels } = layout;
  const frames = Math.floor(data.byteLength / (bytes * channels));
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const little = !layout.bigEndian;
  const read = sampleReader(view, layout, little);
  const mono = new Float32Array(frames);
  const share = 1 / channels;
  for (let frame = 0, offset = 0; frame < frames; frame++) {
    let sum = 0;
    for (let channel = 0; channel < channels; channel++, offset += bytes) sum += read(offset);
    mono[frame] = sum * share;
  }
  return mono;
}

/** A function reading one sample at a byte offset as a float in -1..1 (integers scaled by 2^(bits-1)). */
function sampleReader(view: DataView, layout: WavLayout, little: boolean): (offset: number) => number {
  if (layout.float) {
    if (layout.bitsPerSample === 32) return (offset) => view.getFloat32(offset, little);
    return (offset) => view.getFloat64(offset, little);
  }
  switch (layout.bitsPerSample) {
    case 8:
      return (offset) => (view.getUint8(offset) - 128) / 128; // unsigned: silence is 128
    case 16:
      return (offset) => view.getInt16(offset, little) / 32_768;
    case 24:
      return little
        ? (offset) => ((view.getUint8(offset) | (view.getUint8(offset + 1) << 8) | (view.getInt8(offset + 2) << 16)) / 8_388_608)
        : (offset) => ((view.getUint8(offset + 2) | (view.getUint8(offset + 1) << 8) | (view.getInt8(offset) << 16)) / 8_388_608);
    case 32:
      return (offset) => view.getInt32(offset, little) / 2_147_483_648;
    default:
      throw new Error(`unsupported sample size: ${layout.bitsPerSample} bits`);
  }
}

/** Zero crossings of the sinc on each side: the filter's sharpness (16 keeps the passband flat to ~20 kHz at 44.1 kHz). */
const ZERO_CROSSINGS = 16;
/** The filter is tabulated at this many fractional positions between two input samples. */
const PHASES = 512;
/** Cut-off as a fraction of the lower Nyquist frequency: a little below it, so the transition band does not alias. */
const CUTOFF = 0.95;

/**
 * Step 2: `input` at `fromRate` resampled to `toRate` (band-limited interpolation). Output sample j
 * is the input filtered at instant j * fromRate / toRate; the length scales with the rates.
 * When downsampling, the low-pass also removes what the lower rate cannot hold (no aliasing).
 */
export function resample(input: Float32Array, fromRate: number, toRate: number): Float32Array {
  if (fromRate === toRate) return input;
  const step = fromRate / toRate;
  const cutoff = CUTOFF * Math.min(1, toRate / fromRate); // in cycles per input sample, times 2
  const half = Math.ceil(ZERO_CROSSINGS / cutoff); // taps on each side of the instant
  const taps = 2 * half;
  const table = filterTable(cutoff, half);
  const output = new Float32Array(Math.round((input.length * toRate) / fromRate));
  const last = input.length - 1;
  for (let j = 0; j < output.length; j++) {
    const position = j * step;
    let base = Math.floor(position);
    let phase = Math.round((position - base) * PHASES);
    if (phase === PHASES) (phase = 0), base++;
    const row = phase * taps;
    const first = base - half + 1; // input index of the row's first tap
    let sum = 0;
    if (first >= 0 && first + taps - 1 <= last) {
      for (let k = 0; k < taps; k++) sum += input[first + k]! * table[row + k]!;
    } else {
      // Near the ends: samples outside the file count as silence.
      for (let k = 0; k < taps; k++) {
        const i = first + k;
        if (i >= 0 && i <= last) sum += input[i]! * table[row + k]!;
      }
    }
    output[j] = sum;
  }
  return output;
}

/**
 * The low-pass kernel (a Blackman-windowed sinc) at PHASES + 1 fractional offsets, each row of
 * 2 * half taps scaled to sum to 1 so a constant signal keeps its level exactly.
 */
function filterTable(cutoff: number, half: number): Float32Array {
  const taps = 2 * half;
  const table = new Float32Array((PHASES + 1) * taps);
  for (let phase = 0; phase <= PHASES; phase++) {
    const fraction = phase / PHASES;
    let sum = 0;
    for (let k = 0; k < taps; k++) {
      const t = k - half + 1 - fraction; // distance from the instant, in input samples
      const x = cutoff * t;
      const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      const w = (t + half) / (2 * half); // 0..1 across the window
      const window = 0.42 - 0.5 * Math.cos(2 * Math.PI * w) + 0.08 * Math.cos(4 * Math.PI * w);
      const value = sinc * Math.max(0, window);
      table[phase * taps + k] = value;
      sum += value;
    }
    for (let k = 0; k < taps; k++) table[phase * taps + k]! /= sum;
  }
  return table;
}

/** Step 3: floats in -1..1 to s16le, rounded and clipped. */
export function toPcm16(samples: Float32Array): Buffer {
  const pcm = Buffer.alloc(samples.length * 2);
  const out = new Int16Array(pcm.buffer, pcm.byteOffset, samples.length);
  for (let i = 0; i < samples.length; i++) {
    const value = Math.round(samples[i]! * 32_768);
    out[i] = value > SAMPLE_MAX ? SAMPLE_MAX : value < SAMPLE_MIN ? SAMPLE_MIN : value;
  }
  // Int16Array uses the machine's byte order; WAV and the wire are little-endian.
  if (!LITTLE_ENDIAN_MACHINE) pcm.swap16();
  return pcm;
}

const LITTLE_ENDIAN_MACHINE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** All three steps: a WAV data chunk in `layout` to 48 kHz mono s16le. */
export function convertToCourseFormat(data: Uint8Array, layout: WavLayout): Buffer {
  return toPcm16(resample(decodeToMono(data, layout), layout.sampleRate, SAMPLE_RATE));
}
