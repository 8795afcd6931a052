// Opus voice the checks can predict (stage 05 on): the test encodes its own packets, sends them at
// real time as a forwarding server would, and decodes them itself to know what a client must
// play. Decoders of other Opus implementations (Concentus, another libopus version) may differ a
// little from ours, so what a client plays is compared within a stated tolerance, never byte for byte.
import { FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE } from '#shared/audio/format.ts';
import { FrameClock } from '#shared/audio/frame-clock.ts';
import type { WireClient } from './wire-client.ts';

/**
 * A played frame "is" an expected frame when the RMS of their difference is at most this fraction
 * of the expected frame's RMS (-20 dB): a decoder's rounding passes, half the level (an average
 * instead of a sum), a missing voice, a frame out of place or a wrapped sum do not.
 */
export const MATCH_TOLERANCE = 0.1;

/** The samples of a frame (or any s16le PCM) as numbers. */
export function samplesOf(pcm: Buffer): Int16Array {
  const samples = new Int16Array(pcm.length / 2);
  for (let i = 0; i < samples.length; i++) samples[i] = pcm.readInt16LE(i * 2);
  return samples;
}

/** RMS level in dBFS; -Infinity for digital silence. */
export function levelDb(samples: Int16Array, from = 0, count = samples.length - from): number {
  let sum = 0;
  for (let i = from; i < from + count; i++) sum += samples[i]! ** 2;
  return 20 * Math.log10(Math.sqrt(sum / count) / 32_768);
}

/** The clipped sample-wise sum of frames: the mixing rule, written out independently. */
export function clippedSumOf(frames: Buffer[]): Int16Array {
  const sum = new Int16Array(FRAME_SAMPLES);
  for (let i = 0; i < FRAME_SAMPLES; i++) {
    let total = 0;
    for (const frame of frames) total += frame.readInt16LE(i * 2);
    sum[i] = Math.max(-32_768, Math.min(32_767, total));
  }
  return sum;
}

/**
 * Where `played` holds `expected` within MATCH_TOLERANCE, at or after `from`: the first offset
 * that matches, refined to the best match within one frame of it (a voice looks much like itself
 * shifted by one period, so the first offset within tolerance may be a period early). -1 if
 * nowhere. Sample offsets, not frame offsets: a client need not write whole frames.
 */
export function findFrame(played: Int16Array, expected: Int16Array, from: number): number {
  let energy = 0;
  for (const sample of expected) energy += sample * sample;
  const budget = energy * MATCH_TOLERANCE * MATCH_TOLERANCE;
  for (let offset = Math.max(0, from); offset + expected.length <= played.length; offset++) {
    if (errorAt(played, expected, offset, budget) > budget) continue; // most offsets are refused after a few samples
    let best = offset;
    let bestError = errorAt(played, expected, offset, Infinity);
    for (let other = offset + 1; other < offset + expected.length && other + expected.length <= played.length; other++) {
      const error = errorAt(played, expected, other, bestError);
      if (error < bestError) [best, bestError] = [other, error];
    }
    return best;
  }
  return -1;
}

/** Whether `played` holds `expected` at `offset` within MATCH_TOLERANCE. */
export function holdsAt(played: Int16Array, expected: Int16Array, offset: number): boolean {
  let energy = 0;
  for (const sample of expected) energy += sample * sample;
  const budget = energy * MATCH_TOLERANCE * MATCH_TOLERANCE;
  return offset >= 0 && offset + expected.length <= played.length && errorAt(played, expected, offset, budget) <= budget;
}

/** Sum of squared differences at `offset`; stops counting once past `limit`. */
function errorAt(played: Int16Array, expected: Int16Array, offset: number, limit: number): number {
  let error = 0;
  for (let i = 0; i < expected.length && error <= limit; i++) {
    const difference = played[offset + i]! - expected[i]!;
    error += difference * difference;
  }
  return error;
}

/** The lowest RMS level (dBFS) of any 10 ms window in samples[from, to), windows 2.5 ms apart. */
export function quietestWindowDb(samples: Int16Array, from: number, to: number): number {
  const window = SAMPLE_RATE / 100;
  let quietest = Infinity;
  for (let start = Math.max(0, from); start + window <= Math.min(to, samples.length); start += window / 4) {
    quietest = Math.min(quietest, levelDb(samples, start, window));
  }
  return quietest;
}

/** The longest run of exact zeros in samples[from, to). */
export function longestZeroRun(samples: Int16Array, from: number, to: number): number {
  let longest = 0;
  let run = 0;
  for (let i = Math.max(0, from); i < Math.min(to, samples.length); i++) {
    run = samples[i] === 0 ? run + 1 : 0;
    longest = Math.max(longest, run);
  }
  return longest;
}

/** Power of one frequency in the samples (Goertzel), for "is this tone in there?". */
export function tonePower(samples: Int16Array, hz: number): number {
  const coefficient = 2 * Math.cos((2 * Math.PI * hz) / SAMPLE_RATE);
  let total = 0;
  // Frame by frame, so a long recording adds up instead of drifting in phase.
  for (let start = 0; start + FRAME_SAMPLES <= samples.length; start += FRAME_SAMPLES) {
    let previous = 0;
    let beforePrevious = 0;
    for (let i = start; i < start + FRAME_SAMPLES; i++) {
      const current = samples[i]! + coefficient * previous - beforePrevious;
      beforePrevious = previous;
      previous = current;
    }
    total += previous * previous + beforePrevious * beforePrevious - coefficient * previous * beforePrevious;
  }
  return total;
}

/** Zero crossings per second: a tone's frequency, roughly (2 crossings per cycle). */
export function dominantHz(samples: Int16Array): number {
  let crossings = 0;
  for (let i = 1; i < samples.length; i++) if ((samples[i - 1]! < 0) !== (samples[i]! < 0)) crossings++;
  return crossings / 2 / (samples.length / SAMPLE_RATE);
}

/**
 * Sends `messages[i]` (the bytes of one 20 ms step: VOICE of one or more speakers) at real time
 * against a drift-free schedule. The first `burst` steps go at once, as after a hiccup on the way:
 * the client's jitter buffer then holds some slack, so the test's own timer jitter on a loaded
 * machine does not empty it. A LOST step leaves its time slot empty (a packet lost on the way).
 */
export function sendPaced(connection: WireClient, messages: Buffer[], burst: number): Promise<void> {
  connection.send(Buffer.concat(messages.slice(0, burst)));
  let next = burst;
  return new Promise((resolve) => {
    if (next >= messages.length) return resolve();
    const clock = new FrameClock(
      (tick) => {
        if (tick === 0) return; // due now: the burst just went
        if (!connection.isClosed && messages[next]!.length > 0) connection.send(messages[next]!);
        next++;
        if (next >= messages.length) {
          clock.stop();
          resolve();
        }
      },
      { periodMs: FRAME_MS },
    );
    clock.start();
  });
}

/** An empty step for sendPaced: the time slot of a packet that was lost on the way. */
export const LOST = Buffer.alloc(0);
