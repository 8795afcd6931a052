// A WAV file that sounds like one short utterance: silence, a tone loud enough to open any voice
// gate, silence. Client checks feed it to the client under test and compare what it sends.
import { writeFileSync } from 'node:fs';
import wavefile from 'wavefile';
import { FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE } from '#shared/audio/format.ts';

/** A 48 kHz mono 16-bit WAV: `lead` s of silence, `tone` s of a sine whose RMS is -12 dBFS, `tail` s of silence. Returns its frames. */
export function writeSpeechWav(path: string, lead: number, tone: number, tail: number): { leadFrames: number; toneFrames: Buffer[]; tailFrames: number } {
  const framesOf = (seconds: number) => Math.round((seconds * 1000) / FRAME_MS);
  const [leadFrames, toneCount, tailFrames] = [framesOf(lead), framesOf(tone), framesOf(tail)];
  const samples = new Int16Array((leadFrames + toneCount + tailFrames) * FRAME_SAMPLES); // zeros: silence
  const peak = 32_768 * 10 ** (-12 / 20) * Math.SQRT2; // a sine's RMS is its peak / sqrt(2)
  for (let i = 0; i < toneCount * FRAME_SAMPLES; i++) {
    samples[leadFrames * FRAME_SAMPLES + i] = Math.round(peak * Math.sin((2 * Math.PI * 440 * i) / SAMPLE_RATE));
  }
  const wav = new wavefile.WaveFile();
  wav.fromScratch(1, SAMPLE_RATE, '16', Array.from(samples));
  writeFileSync(path, wav.toBuffer());
  // The same samples as the wire carries them: s16le.
  const pcm = Buffer.alloc(samples.length * 2);
  samples.forEach((sample, i) => pcm.writeInt16LE(sample, i * 2));
  const toneFrames = Array.from({ length: toneCount }, (_, i) => pcm.subarray((leadFrames + i) * FRAME_BYTES, (leadFrames + i + 1) * FRAME_BYTES));
  return { leadFrames, toneFrames, tailFrames };
}
