// npm run bench:wav: how long reading a WAV file that is NOT in the course format takes (decode,
// channel mix, resampling to 48 kHz), per second of audio. A client converts its --input file
// before it connects, so this is time the user waits. The goal: a 30 s song well under a second.
// The files are made here (tones), written to a temporary folder and read with readWavPcm, as a
// client does; each is converted several times and the median is reported.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import wavefile from 'wavefile';
import { readWavPcm } from '#shared/audio/wav-source.ts';

const SECONDS = 30;
const RUNS = 5;

interface Case {
  label: string;
  channels: number;
  rate: number;
  /** wavefile's bit depth name: '16', '24', '32f'... */
  depth: string;
}

const CASES: Case[] = [
  { label: '44.1 kHz stereo 16-bit (a CD rip)', channels: 2, rate: 44_100, depth: '16' },
  { label: '96 kHz stereo 24-bit (a studio file)', channels: 2, rate: 96_000, depth: '24' },
  { label: '16 kHz mono 32-bit float (a voice memo)', channels: 1, rate: 16_000, depth: '32f' },
];

/** A WAV of SECONDS of a 440 Hz tone in every channel, at about half of full scale. */
function toneWav(testCase: Case): Buffer {
  const frames = testCase.rate * SECONDS;
  const float = testCase.depth.endsWith('f');
  const scale = float ? 0.5 : 0.5 * 2 ** (Number(testCase.depth) - 1);
  const samples = float ? new Float32Array(frames * testCase.channels) : new Int32Array(frames * testCase.channels);
  for (let n = 0; n < frames; n++) {
    const value = scale * Math.sin((2 * Math.PI * 440 * n) / testCase.rate);
    for (let c = 0; c < testCase.channels; c++) samples[n * testCase.channels + c] = float ? value : Math.round(value);
  }
  const wav = new wavefile.WaveFile();
  wav.fromScratch(testCase.channels, testCase.rate, testCase.depth, samples); // interleaved
  return Buffer.from(wav.toBuffer());
}

const dir = mkdtempSync(join(tmpdir(), 'bench-wav-'));
try {
  console.log(`converting ${SECONDS} s files to 48 kHz mono 16-bit, median of ${RUNS} runs:`);
  for (const testCase of CASES) {
    const path = join(dir, `${testCase.rate}-${testCase.channels}-${testCase.depth}.wav`);
    writeFileSync(path, toneWav(testCase));
    const times: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const start = performance.now();
      readWavPcm(path);
      times.push(performance.now() - start);
    }
    const median = times.sort((a, b) => a - b)[Math.floor(RUNS / 2)]!;
    console.log(`  ${testCase.label.padEnd(42)} ${median.toFixed(0).padStart(5)} ms for ${SECONDS} s = ${(median / SECONDS).toFixed(1)} ms per second of audio`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
