// THE rule for a client's --output WAV, as every stage README states it: the WAV is a recording of
// what the client heard. It keeps time: the received audio, every frame in order and unchanged,
// with silence (zero samples) wherever nothing arrived, so it lasts as long as the session.
//
// What is checked:
//   - order and content: the frames the server sent appear one after the other, sample-exact;
//     before, between and after them only zero samples (any number of them) are allowed;
//   - length: about the session's length, judged by tolerance.ts's rule for durations, with
//     RECORDING_PIPELINE_MS on top for connecting and leaving (which the recording may include).
import { readWavPcm } from '#shared/audio/wav-source.ts';
import { FRAME_BYTES, SAMPLE_RATE } from '#shared/audio/format.ts';
import { expect } from './checks.ts';
import { expectDuration, timingWindow } from './tolerance.ts';

/** Connecting before the session and leaving after it: a recording may include both. */
export const RECORDING_PIPELINE_MS = 1_000;

const BYTES_PER_MS = (SAMPLE_RATE * 2) / 1000;

/** Index of the first non-zero 16-bit sample at or after byte `from` (even), or the length. */
function firstSound(pcm: Buffer, from: number): number {
  for (let i = from; i + 1 < pcm.length; i += 2) if (pcm[i] !== 0 || pcm[i + 1] !== 0) return i;
  return pcm.length - (pcm.length % 2);
}

/** Why `recording` is not `frames` in order with only silence around them, or null if it is. */
export function recordingProblem(recording: Buffer, frames: Buffer[]): string | null {
  let at = 0;
  for (const [i, frame] of frames.entries()) {
    const leadingSilence = firstSound(frame, 0);
    if (leadingSilence === frame.length) continue; // a silent frame is indistinguishable from the silence around it
    const sound = firstSound(recording, at);
    const start = sound - leadingSilence;
    if (sound === recording.length || start < at) {
      return `frame ${i + 1} of ${frames.length} is missing: after byte ${at} of the samples ${sound === recording.length ? 'there is only silence' : 'the next sound is not it'}`;
    }
    const found = recording.subarray(start, start + FRAME_BYTES);
    if (!found.equals(frame)) {
      const diff = [...frame].findIndex((byte, k) => found[k] !== byte);
      return `frame ${i + 1} of ${frames.length} should start at byte ${start} of the samples (after silence) but differs at its byte ${diff} (expected ${frame[diff]}, got ${found[diff] ?? 'the end of the file'})`;
    }
    at = start + FRAME_BYTES;
  }
  const stray = firstSound(recording, at);
  if (stray < recording.length) return `after the last expected frame (byte ${at}) there is sound at byte ${stray}: audio nobody sent, or a frame twice`;
  return null;
}

/**
 * Fails the check unless the WAV at `path` holds `frames` in order with only silence around them,
 * and lasts about `sessionMs` (the client's --duration, or its input's length).
 */
export function expectRecording(path: string, frames: Buffer[], sessionMs: number, what: string): void {
  const recording = readWavPcm(path);
  const problem = recordingProblem(recording, frames);
  expect(problem === null, `the output WAV is not a recording of ${what}`, {
    expected: `the ${frames.length} AUDIO payloads the server sent, in order and unchanged, with only silence (zero samples) before, between and after them`,
    actual: `${recording.length} bytes of samples; ${problem}`,
    hint: 'write every AUDIO payload to the output as it arrives; where nothing arrives, write silence (the WAV is a recording: it keeps time)',
  });
  expectDuration(
    recording.length / BYTES_PER_MS,
    timingWindow(sessionMs, { pipelineMs: RECORDING_PIPELINE_MS }),
    'the output WAV\'s length',
    'the recording\'s end',
    'the WAV is a recording: as long as the session, with silence where nothing arrived (a pause stays a pause; the file is not just the frames heard)',
  );
}
