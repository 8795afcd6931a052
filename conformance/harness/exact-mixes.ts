// Audio the checks can predict exactly, and the check that a server's mixes are right
// (stages 03 on: AUDIO is type 0x03 in every framed stage).
//
// The test paces its talkers at real time itself (one frame every 20 ms against a monotonic
// schedule) and each talker sends the SAME frame every time: a tone whose frequency is a
// multiple of 50 Hz, so every 20 ms frame holds a whole number of cycles. Whatever the server's
// tick phase, each mixed frame must then equal EXACTLY the clipped sample-wise sum of the frames
// of some subset of the talkers the listener may hear: compared sample for sample, which catches
// your own voice in the mix, averaging, wrapping, double-counting, and voices from elsewhere.
import { FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE } from '#shared/audio/format.ts';
import { expect } from './checks.ts';
import { frameBytes } from './frame-wire.ts';
import type { FramedUser } from './framed-user.ts';
import { RATE_TOLERANCE } from './tolerance.ts';

const AUDIO = 0x03;
const TICK_MS = 20;
/** Frames still in flight when the talkers stop: the jitter buffer (3) and a tick, with slack. */
export const TAIL_MS = 250;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** One 20 ms frame of a sine tone; `hz` a multiple of 50 makes every frame identical. */
export function toneFrame(hz: number, amplitude: number): Buffer {
  const frame = Buffer.alloc(FRAME_BYTES);
  for (let i = 0; i < FRAME_SAMPLES; i++) frame.writeInt16LE(Math.round(amplitude * Math.sin((2 * Math.PI * hz * i) / SAMPLE_RATE)), i * 2);
  return frame;
}

/** A frame whose first half is `value` and second half `-value`. */
export function squareFrame(value: number): Buffer {
  const frame = Buffer.alloc(FRAME_BYTES);
  for (let i = 0; i < FRAME_SAMPLES; i++) frame.writeInt16LE(i < FRAME_SAMPLES / 2 ? value : -value, i * 2);
  return frame;
}

/** The mixing rule, written out independently: add sample by sample, clip to 16 bits. */
export function clippedSum(frames: Buffer[]): Buffer {
  const out = Buffer.alloc(FRAME_BYTES);
  for (let i = 0; i < FRAME_SAMPLES; i++) {
    let sum = 0;
    for (const frame of frames) sum += frame.readInt16LE(i * 2);
    out.writeInt16LE(Math.max(-32_768, Math.min(32_767, sum)), i * 2);
  }
  return out;
}

/** The classic bug, for failure messages: a 16-bit sum that overflows wraps around. */
function wrappedSum(frames: Buffer[]): Buffer {
  const out = Buffer.alloc(FRAME_BYTES);
  for (let i = 0; i < FRAME_SAMPLES; i++) {
    let sum = 0;
    for (const frame of frames) sum += frame.readInt16LE(i * 2);
    out.writeInt16LE((((sum + 32_768) & 0xffff) - 32_768), i * 2);
  }
  return out;
}

export function firstSamples(frame: Buffer, count = 6): string {
  return Array.from({ length: count }, (_, i) => frame.readInt16LE(i * 2 * 160)).join(', ');
}

/** True if every sample of `frame` is `sum`'s divided by `divisor` (give or take rounding). */
function isScaledDown(frame: Buffer, sum: Buffer, divisor: number): boolean {
  for (let i = 0; i < FRAME_SAMPLES; i++) {
    if (Math.abs(frame.readInt16LE(i * 2) - sum.readInt16LE(i * 2) / divisor) > 1) return false;
  }
  return true;
}

export interface Talker {
  user: FramedUser;
  pcm: Buffer;
}

/** Every non-empty subset of the talkers, with the frame its clipped sum makes. */
function subsetSums(talkers: Talker[]): { names: string[]; mix: Buffer }[] {
  const sums: { names: string[]; mix: Buffer }[] = [];
  for (let bits = 1; bits < 1 << talkers.length; bits++) {
    const members = talkers.filter((_, i) => bits & (1 << i));
    sums.push({ names: members.map((t) => t.user.name), mix: clippedSum(members.map((t) => t.pcm)) });
  }
  return sums;
}

/** Why a mixed frame matches no allowed sum, in words a student can act on. */
export function explainWrongMix(frame: Buffer, listener: string, talkers: Talker[]): string {
  const all = subsetSums(talkers);
  const withOwn = all.find((sum) => sum.names.includes(listener) && sum.mix.equals(frame));
  if (withOwn) return `it is the sum of ${withOwn.names.join(' + ')}: it contains ${listener}'s own voice`;
  // Not the listener's own voice, yet a sum of talkers: so it holds someone they must not hear.
  const someone = all.find((sum) => sum.mix.equals(frame));
  if (someone) return `it is the sum of ${someone.names.join(' + ')}`;
  const wrapped = all.find((sum) => wrappedSum(sum.names.map((name) => talkers.find((t) => t.user.name === name)!.pcm)).equals(frame));
  if (wrapped) return `it is the sum of ${wrapped.names.join(' + ')} WRAPPED around to 16 bits instead of clipped`;
  for (const sum of all) {
    for (let divisor = 2; divisor <= sum.names.length; divisor++) {
      if (isScaledDown(frame, sum.mix, divisor)) return `it is the sum of ${sum.names.join(' + ')} divided by ${divisor}: the mix is averaged`;
    }
  }
  return `it matches no sum of the others' frames; samples 0, 160, 320...: ${firstSamples(frame)}`;
}

/** How a talk() went: the ticks it covered, and how many mixes this grader's own late sends could have cost. */
export interface TalkTiming {
  ticks: number;
  /** Mixes a correct server could not make because this process sent late (see talk()). */
  lostToGrader: number;
}

/**
 * Sends each talker's frame once every 20 ms, `count` times, against a monotonic schedule
 * (a late timer makes the next wait shorter, so the rate stays exactly real time). A gap of G ms
 * between two sends (this process did not run) is covered by the talker's 3-frame jitter buffer up
 * to 40 ms (3 ticks, less one of phase); past that it can cost ceil((G - 40) / 20) mixes, and the
 * catch-up burst overflows the buffer rather than adding mixes. Those are counted in `lostToGrader`.
 */
export async function talk(talkers: Talker[], count: number): Promise<TalkTiming> {
  const encoded = talkers.map((t) => ({ user: t.user, bytes: frameBytes(AUDIO, t.pcm) }));
  const start = performance.now();
  let previous = start;
  let lostToGrader = 0;
  for (let n = 0; n < count; n++) {
    const wait = start + n * TICK_MS - performance.now();
    if (wait > 0) await sleep(wait);
    const now = performance.now();
    if (now - previous > 2 * TICK_MS) lostToGrader += Math.ceil((now - previous - 2 * TICK_MS) / TICK_MS);
    previous = now;
    for (const { user, bytes } of encoded) if (!user.isClosed) user.send(bytes);
  }
  return { ticks: count, lostToGrader };
}

/**
 * The fewest mixes a listener may get while others talk for `timing.ticks` ticks: one per tick
 * (README: tick) within the rate tolerance of harness/tolerance.ts (10% fewer), less what this
 * grader's own late sends could cost; never fewer than half (the floor these checks always had,
 * so a very late grader makes them no weaker than before). The tick check measures the rate
 * itself; this catches a server that drops mixes only when several talk at once.
 */
export function minimumMixes(timing: TalkTiming): number {
  return Math.max(Math.floor(timing.ticks / 2), Math.floor((1 - RATE_TOLERANCE) * timing.ticks) - timing.lostToGrader);
}

/**
 * Requires every AUDIO frame `listener` got since `since` to be the clipped sum of a subset of
 * `others` (never the listener's own voice, nor anyone else in `everyone`), and at least a
 * `minFullShare` of them the sum of ALL others.
 */
export function expectMixes(listener: FramedUser, since: number, others: Talker[], everyone: Talker[], options: { minFrames: number; minFullShare: number; hint: string }): void {
  const frames = listener.framesOfType(AUDIO, since);
  const allowed = subsetSums(others);
  const everyoneElse = others.map((t) => t.user.name).join(' + ');
  const full = allowed.at(-1)!; // the subset with every bit set: all the others
  let fullCount = 0;
  for (const [i, frame] of frames.entries()) {
    const match = allowed.find((sum) => sum.mix.equals(frame.payload));
    expect(match !== undefined, `${listener.name} got a mixed frame that is not a sum of the others' voices`, {
      expected: `each AUDIO frame sent to ${listener.name} is exactly (sample for sample) the clipped sum of the frames of some of ${everyoneElse}; with all of them: samples 0, 160, 320...: ${firstSamples(full.mix)}`,
      actual: `AUDIO frame ${i + 1} of ${frames.length}: ${explainWrongMix(frame.payload, listener.name, everyone)}`,
      received: frame.payload,
      hint: options.hint,
    });
    if (match === full) fullCount++;
  }
  expect(frames.length >= options.minFrames, `${listener.name} got too few mixed frames`, {
    expected: `at least ${options.minFrames} AUDIO frames while ${everyoneElse} talked (one per 20 ms tick, less the README's 10% tolerance and what this grader's own late sends could cost)`,
    actual: `${frames.length}; ${listener.name} received: ${listener.describeFrames(since)}`,
    hint: 'every 20 ms, send each listener one mixed frame if anyone else has a frame waiting',
  });
  expect(fullCount >= options.minFullShare * frames.length, `${listener.name} rarely heard all the others at once`, {
    expected: `most AUDIO frames (at least ${Math.round(options.minFullShare * 100)}%) equal to ${everyoneElse} summed, as they all talked in step`,
    actual: `${fullCount} of ${frames.length}`,
    hint: 'each tick, take ONE waiting frame from EVERY talker (a small jitter buffer per talker) and mix them together',
  });
}
