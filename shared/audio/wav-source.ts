// Plays a WAV file as if someone were speaking it into a microphone: useful
// for repeatable demos and tests. Any PCM or float WAV is accepted; it is
// converted once, at open time, to the course format (48 kHz mono 16-bit):
// see wav-convert.ts.

import { readFileSync } from 'node:fs';
import wavefile from 'wavefile';
import { FRAME_BYTES, SAMPLE_RATE } from './format.ts';
import { ClockedSource } from './clocked-source.ts';
import type { FrameClockOptions } from './frame-clock.ts';
import { AudioFormatError } from './types.ts';
import { convertToCourseFormat, describeLayout, isCourseFormat, type WavLayout } from './wav-convert.ts';

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
/** wavefile's names for the sample sizes convertToCourseFormat reads. */
const READABLE_DEPTHS: Record<string, { bits: number; float: boolean }> = {
  '8': { bits: 8, float: false },
  '16': { bits: 16, float: false },
  '24': { bits: 24, float: false },
  '32': { bits: 32, float: false },
  '32f': { bits: 32, float: true },
  '64': { bits: 64, float: true },
};

/** Keeps wavefile's error messages (which may span lines) to one line. */
function oneLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ').trim();
}

/**
 * Reads a WAV file and returns its samples as 48 kHz mono s16le PCM. Throws AudioFormatError.
 * A file in another format is converted; `onConvert` first gets one line saying what from.
 */
export function readWavPcm(path: string, onConvert?: (line: string) => void): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new AudioFormatError(`cannot read ${path}: ${oneLine(error)}`);
  }
  // wavefile parses the header and finds the data chunk (fast); the samples we convert ourselves.
  const wav = new wavefile.WaveFile();
  try {
    wav.fromBuffer(bytes);
  } catch (error) {
    throw new AudioFormatError(`${path} is not a WAV file wavefile can read (${oneLine(error)})`);
  }
  const fmt = wav.fmt as FmtChunk;
  if (![PCM, IEEE_FLOAT, EXTENSIBLE].includes(fmt.audioFormat) || ['4', '8a', '8m'].includes(wav.bitDepth)) {
    throw new AudioFormatError(
      `${path} is a compressed WAV (format code ${fmt.audioFormat}): only PCM or float WAV files can be played`,
    );
  }
  const depth = READABLE_DEPTHS[wav.bitDepth];
  if (depth === undefined) {
    throw new AudioFormatError(`${path} has ${wav.bitDepth}-bit samples: only 8, 16, 24 or 32-bit PCM and 32 or 64-bit float can be played`);
  }
  const layout: WavLayout = {
    channels: fmt.numChannels,
    sampleRate: fmt.sampleRate,
    bitsPerSample: depth.bits,
    float: depth.float,
    bigEndian: wav.container === 'RIFX',
  };
  const samples = (wav.data as { samples: Uint8Array }).samples;
  if (isCourseFormat(layout)) return Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
  onConvert?.(`converting ${path}: ${describeLayout(layout)} → ${SAMPLE_RATE} Hz mono 16-bit`);
  return convertToCourseFormat(samples, layout);
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

/**
 * A real-time source that plays a WAV file once, then calls onEnd. Throws AudioFormatError.
 * `onConvert` hears what a file in another format is converted from (see readWavPcm).
 */
export function createWavSource(path: string, clockOptions?: FrameClockOptions, onConvert?: (line: string) => void): ClockedSource {
  const frames = splitIntoFrames(readWavPcm(path, onConvert));
  let next = 0;
  return new ClockedSource(`file ${path}`, () => frames[next++] ?? null, clockOptions);
}
