// conformance/harness/backlog-verdict.ts: how the standing-backlog check judges an attempt, fed
// the timelines of a simulated server (the real shared/jitter-buffer.ts on a simulated clock),
// correct or never trimming, with the disturbances a busy machine brings: frames sent late, frames
// read late by the server, late ticks, mixes read late.
import t from 'tap';
import { FRAME_BYTES, FRAME_MS } from '#shared/audio/format.ts';
import { JitterBuffer } from '#shared/jitter-buffer.ts';
import { judgeAttempt, describeLags, inferTickTime, NEVER_CUT_TICKS, type AttemptTimeline, type ReceivedMix, type SentFrame } from '../conformance/harness/backlog-verdict.ts';

const ORIGIN = 1_000;
const STEADY_FRAMES = 150;
const README_TRIM_TICKS = 25;

interface Simulation {
  /** 25: a correct server; a million: one that never trims. */
  trimAfterTicks: number;
  /** Where the server ticks, in ms after a send (10: half a tick, where the grader means them). */
  tickOffsetMs?: number;
  /** How late this grader sent frame i (ms). */
  sendLate?: (i: number) => number;
  /** How late the server read frame i, after it was sent. */
  readLate?: (i: number) => number;
  /** How late the server's tick k ran. */
  tickLate?: (k: number) => number;
  /** How late the listener read the mix of tick k. */
  mixLate?: (k: number) => number;
}

/** The timeline the check would see: the stall's 3 frames at ORIGIN, then one every 20 ms. */
function simulate(sim: Simulation): AttemptTimeline {
  const { tickOffsetMs = FRAME_MS / 2, sendLate = () => 0, readLate = () => 0, tickLate = () => 0, mixLate = () => 0 } = sim;
  const frames: SentFrame[] = [];
  for (let i = 0; i < STEADY_FRAMES + 2; i++) {
    const dueAt = ORIGIN + Math.max(0, i - 2) * FRAME_MS;
    frames.push({ number: i, dueAt, sentAt: dueAt + sendLate(i) });
  }
  const jitter = new JitterBuffer({ capacity: 3, trimAfterTicks: sim.trimAfterTicks });
  type Event = { at: number; arrival?: number; tick?: number };
  const events: Event[] = frames.map((frame) => ({ at: frame.sentAt + 0.1 + readLate(frame.number), arrival: frame.number }));
  for (let k = 0; k < STEADY_FRAMES + 5; k++) events.push({ at: ORIGIN + tickOffsetMs + k * FRAME_MS + tickLate(k), tick: k });
  events.sort((a, b) => a.at - b.at);
  const mixes: ReceivedMix[] = [];
  for (const event of events) {
    if (event.arrival !== undefined) {
      const frame = Buffer.alloc(FRAME_BYTES);
      frame.writeInt16LE(event.arrival, 0);
      jitter.push(frame);
    } else {
      const taken = jitter.take();
      if (taken !== null) mixes.push({ at: event.at + 0.3 + mixLate(event.tick!), frame: taken.readInt16LE(0) });
    }
  }
  mixes.sort((a, b) => a.at - b.at);
  return { frames, mixes, origin: ORIGIN };
}

const correct = { trimAfterTicks: README_TRIM_TICKS };
const neverTrims = { trimAfterTicks: 1_000_000 };

t.test('a correct server, undisturbed: the cut after 25 ticks passes', async (t) => {
  const verdict = judgeAttempt(simulate(correct));
  t.equal(verdict.kind, 'cut');
  if (verdict.kind === 'cut') t.ok(Math.abs(verdict.cutAfterMs - 25 * FRAME_MS) <= FRAME_MS, `cut after ${verdict.cutAfterMs} ms`);
  t.match(describeLags(verdict.ticks), /^2×2\d 1×1\d\d$/, 'the lags: 2 until the cut, 1 after');
});

t.test('a server that never trims, undisturbed: the backlog stands for the whole attempt', async (t) => {
  const verdict = judgeAttempt(simulate(neverTrims));
  t.equal(verdict.kind, 'never-cut');
  if (verdict.kind === 'never-cut') t.ok(verdict.stretchTicks >= STEADY_FRAMES, `${verdict.stretchTicks} ticks`);
});

t.test('the ticks need not be exactly half a tick from the sends', async (t) => {
  for (const offset of [6, 14]) {
    t.equal(judgeAttempt(simulate({ ...correct, tickOffsetMs: offset })).kind, 'cut', `correct, ticks ${offset} ms after a send`);
    t.equal(judgeAttempt(simulate({ ...neverTrims, tickOffsetMs: offset })).kind, 'never-cut', `never trims, ticks ${offset} ms after a send`);
  }
});

t.test('mixes read late here change no lag (the old check counted them a frame later)', async (t) => {
  const scattered = (k: number) => (k * 7919) % 10; // 0-9 ms
  t.equal(judgeAttempt(simulate({ ...correct, mixLate: (k) => (k === 26 ? 0 : scattered(k)) })).kind, 'cut');
  const slightly = judgeAttempt(simulate({ ...neverTrims, mixLate: (k) => scattered(k) % 8 }));
  t.equal(slightly.kind, 'never-cut', 'never trims, mixes read 0-7 ms late');
  t.match(describeLags(slightly.ticks), /^2×\d+$/, 'every lag still 2');
  const more = judgeAttempt(simulate({ ...neverTrims, mixLate: scattered }));
  t.match(describeLags(more.ticks), /^(2\+?×\d+ ?)+$/, 'mixes read up to 9 ms late: every lag still 2 ("+": a mix more than 8 ms late)');
  t.not(more.kind, 'cut');
});

t.test('a late tick overflows the full buffer of ANY server: that is never taken for a cut', async (t) => {
  for (const at of [10, 40]) {
    const verdict = judgeAttempt(simulate({ ...neverTrims, tickLate: (k) => (k === at ? 12 : 0) }));
    t.equal(verdict.kind, 'undecided', `never trims, tick ${at} 12 ms late: the lag falls, but an overflow explains it`);
    if (verdict.kind === 'undecided') t.match(verdict.reason, /only at a tick whose mix arrived after the next frame had been sent/);
  }
  const late = judgeAttempt(simulate({ ...neverTrims, tickLate: (k) => (k === 90 ? 12 : 0) }));
  t.equal(late.kind, 'never-cut', 'an overflow after 90 ticks of standing backlog comes too late to hide it');
});

t.test('a correct server that counts again because frames came late still passes, and the late frames are not held against it', async (t) => {
  // This grader sent every 20th frame 15 ms late: it reached the server after its tick, which then left
  // one frame waiting and counted its 25 ticks again, so the cut never comes; nor may a failure.
  const lateEvery20 = (i: number) => (i > 2 && i % 20 === 0 ? 15 : 0);
  const sentLate = judgeAttempt(simulate({ ...correct, sendLate: lateEvery20 }));
  t.equal(sentLate.kind, 'undecided', 'the server never had 25 ticks of standing backlog: nothing to judge');
  if (sentLate.kind === 'undecided') t.equal(sentLate.graderLate, true, 'and this grader says it ran late');
  // Late three times, 20 ticks apart: the cut comes after about 85 ticks; it still proves the server cuts.
  const threeTimes = judgeAttempt(simulate({ ...correct, sendLate: (i) => ([22, 42, 62].includes(i) ? 15 : 0) }));
  t.equal(threeTimes.kind, 'cut');
  t.equal(judgeAttempt(simulate({ ...neverTrims, sendLate: lateEvery20 })).kind, 'undecided', 'a server that never trims is not failed on such an attempt either');
});

t.test('frames the server read late make a correct server count again: that is not held against it where it shows', async (t) => {
  // Once: the cut comes 25 ticks later, still within the check's 60.
  t.equal(judgeAttempt(simulate({ ...correct, readLate: (i) => (i === 22 ? 12 : 0) })).kind, 'cut');
  // Twice, 24 ticks apart, by a server that was not running from the frame's arrival until just
  // after its tick: its mix came late too, which breaks the stretch.
  const stalls = [22, 46];
  const seen = judgeAttempt(simulate({ ...correct, readLate: (i) => (stalls.includes(i) ? 12 : 0), tickLate: (k) => (stalls.includes(k + 2) ? 9 : 0) }));
  t.not(seen.kind, 'never-cut');
  // Twice, with ticks exactly on time, the cut comes after about 70 ticks: this attempt says "never
  // cut"; that is why the check fails a server only when three attempts say so, and none cuts.
  const unseen = judgeAttempt(simulate({ ...correct, readLate: (i) => (stalls.includes(i) ? 12 : 0) }));
  t.equal(unseen.kind, 'never-cut');
  if (unseen.kind === 'never-cut') t.ok(unseen.stretchTicks >= NEVER_CUT_TICKS && unseen.stretchTicks < 75);
});

t.test('a tick with no mix breaks a stretch; an attempt with too few mixes decides nothing', async (t) => {
  const none = judgeAttempt({ ...simulate(neverTrims), mixes: [] });
  t.equal(none.kind, 'undecided');
  const verdict = judgeAttempt(simulate({ ...neverTrims, mixLate: (k) => (k % 50 === 25 ? 25 : 0) }));
  t.equal(verdict.kind, 'undecided', 'mixes more than a tick late: their ticks count as unknown');
  t.match(describeLags(verdict.ticks), /^2×25 -×2 2×/, 'the late mix\'s tick has none, the next has two: both unknown');
});

t.test('the tick is where the earliest mixes arrive, not their mean, which late reads pull later', async (t) => {
  // Ticks at 1003 + 20 k; most mixes read 0.3 ms after, every third 9 ms after (a busy grader).
  const arrivals = Array.from({ length: 30 }, (_, k) => 1_003 + k * FRAME_MS + (k % 3 === 0 ? 9 : 0.3));
  const tick = inferTickTime(arrivals);
  const offset = (((tick - 1_003) % FRAME_MS) + FRAME_MS) % FRAME_MS;
  t.ok(Math.min(offset, FRAME_MS - offset) < 1.5, `inferred a tick ${offset.toFixed(2)} ms (mod 20) from the real one`);
  // Around the wrap: ticks at 19.8 ms past each 20 ms.
  const wrapped = inferTickTime(Array.from({ length: 30 }, (_, k) => 19.8 + k * FRAME_MS + (k % 2 === 0 ? 0.2 : 0.6)));
  t.ok(Math.abs(((wrapped - 19.8) % FRAME_MS + FRAME_MS + 10) % FRAME_MS - 10) < 1.5, 'also when the arrivals straddle a multiple of 20 ms');
});
