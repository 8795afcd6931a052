// How the standing-backlog check (backlog-check.ts) judges one attempt, from times alone: when
// each of the talker's frames was due and when it went out, and when each mix reached the listener
// and which frame it carried. Pure, so tests can feed it the timelines of simulated servers.
//
// The lag is counted against the SERVER's ticks, not against this grader's clock. The ticks are
// inferred from the mixes (a mix leaves right after its tick, so the earliest arrivals mark the
// tick's phase), and a mix's lag is how many frames had been DUE before its tick beyond the one
// it carries. So neither a mix read late here nor a frame sent late changes a lag: only a frame
// the server drops does (a cut, or an overflow), and a tick with no frame to mix (underflow).
//
// What a correct server does (README, "standing backlog"): after the stall's 3 frames, 2 are left
// waiting after every tick, and after 25 such ticks in a row it drops the oldest: the lag falls
// from 2 to 1 and stays there. What it may do differently: count again from zero whenever a tick
// leaves fewer than 2 waiting, which happens when a frame reaches it after the tick it was meant
// for (this grader sent it late, or the server read it late). So:
//   - an attempt says "never cut" on 60 ticks in a row with 2 frames of lag during which every
//     frame was sent in time for its tick and every mix came soon after its tick (a correct server
//     would have cut after 25; one that was not running when a frame came may have read it only
//     after the tick, unseen from here, though then its mix mostly came late too: so the check
//     fails only on three such attempts, see backlog-check.ts);
//   - it says "cut" on a cut that only the server's own rule explains: the lag falls from exactly
//     2 frames to 1 at a tick whose mix arrived before the next frame was even sent. A late tick
//     lets a fourth frame into the full buffer, which drops the oldest and ends the backlog of ANY
//     server, even one that never trims; but from 2 frames of lag that takes the frame due after
//     the tick, sent before the tick's mix arrived. (From 3, after a tick with nothing to mix, an
//     on-time frame can overflow the buffer: such a fall proves nothing.)
//   - anything else is undecided, and the attempt is repeated.
import { FRAME_MS } from '#shared/audio/format.ts';

/** Ticks in a row with a standing backlog, every frame in time, that fail a server: 1.2 s (the README cuts after 25). */
export const NEVER_CUT_TICKS = 60;
/** A frame must go out this long before the tick it is meant for, or the server may not have read it by then. */
export const IN_TIME_MARGIN_MS = 2;
/**
 * A mix that arrives this long after its tick says the server (or this grader) was not running
 * then: a server that was not running may also have read a frame late and counted again, unseen.
 */
export const LATE_MIX_MS = 8;
/** This grader ran late when a frame went out this long after it was due (it is due half a tick before the tick). */
export const GRADER_LATE_MS = 5;
/** The ticks, inferred from the mixes, may sit this far from where the grader meant (half a tick from the sends). */
const MAX_PHASE_ERROR_MS = 6;
/** The share of mixes whose arrival marks the tick (the earliest ones), and how much sooner the tick was. */
const PHASE_QUANTILE = 0.1;
const PHASE_LEAD_MS = 1;

export interface SentFrame {
  /** The number the frame carries (every sample is number + 1). */
  number: number;
  /** When it was due (this process's performance.now()). */
  dueAt: number;
  /** When it went out. */
  sentAt: number;
}

export interface ReceivedMix {
  /** When the listener had it. */
  at: number;
  /** The frame it carries. */
  frame: number;
}

export interface AttemptTimeline {
  /** The frames of this attempt in order: the stall's burst (all due at `origin`), then one every 20 ms. */
  frames: SentFrame[];
  /** The mixes the listener got from `origin` on, in order. */
  mixes: ReceivedMix[];
  /** When the burst was due: half a tick away from the server's ticks, as far as the grader knew. */
  origin: number;
}

/** What one tick of the attempt showed. */
export interface TickRecord {
  /** The tick's time, inferred from the mixes. */
  at: number;
  /** Frames of lag: due before the tick, beyond the one mixed; null when no mix (or two) came for this tick. */
  lag: number | null;
  /** The newest frame due before this tick went out too late to be there in time. */
  lateFrame: boolean;
  /** The tick's mix arrived more than LATE_MIX_MS after it (or never). */
  lateMix: boolean;
}

/** `serverTickAt`: a time at which the server ticked, as the mixes say (null when too few came). */
export type AttemptVerdict = { ticks: TickRecord[]; serverTickAt: number | null } & (
  | { kind: 'cut'; cutAfterMs: number }
  | { kind: 'never-cut'; stretchTicks: number }
  | { kind: 'undecided'; reason: string; graderLate: boolean }
);

/** A time difference brought into [-10, 10) ms: how far from a tick, whichever is nearer. */
function wrapToHalfTick(ms: number): number {
  return ((((ms + FRAME_MS / 2) % FRAME_MS) + FRAME_MS) % FRAME_MS) - FRAME_MS / 2;
}

/**
 * A time at which the server ticked, from when its mixes (one per tick) arrived. A mix leaves right
 * after its tick and may be read here late, never early; so the earliest arrivals (a low quantile,
 * not the mean, which late reads on a busy machine pull later) mark the tick, a hair before them.
 */
export function inferTickTime(arrivals: number[]): number {
  let x = 0;
  let y = 0;
  for (const at of arrivals) {
    x += Math.cos((2 * Math.PI * at) / FRAME_MS);
    y += Math.sin((2 * Math.PI * at) / FRAME_MS);
  }
  const centre = (Math.atan2(y, x) / (2 * Math.PI)) * FRAME_MS; // the mean phase on a circle: 19.9 and 0.1 average to 0
  const offsets = arrivals.map((at) => wrapToHalfTick(at - centre)).sort((a, b) => a - b);
  return arrivals[0]! + wrapToHalfTick(centre + offsets[Math.floor(offsets.length * PHASE_QUANTILE)]! - PHASE_LEAD_MS - arrivals[0]!);
}

export function judgeAttempt(timeline: AttemptTimeline, graderLoopDelayMs = 0): AttemptVerdict {
  const { frames, mixes, origin } = timeline;
  const worstSend = Math.max(0, ...frames.map((frame) => frame.sentAt - frame.dueAt));
  const graderLate = worstSend > GRADER_LATE_MS || graderLoopDelayMs > GRADER_LATE_MS;
  const graderNote = graderLate ? `; this grader ran up to ${Math.max(worstSend, graderLoopDelayMs).toFixed(1)} ms late` : '';
  if (mixes.length < frames.length / 2) {
    return { kind: 'undecided', ticks: [], serverTickAt: null, reason: `only ${mixes.length} mixes for ${frames.length} frames sent${graderNote}`, graderLate };
  }

  // The ticks: the grader meant them half a tick from the sends; the mixes say where they were.
  const serverTickAt = inferTickTime(mixes.map((mix) => mix.at));
  const phaseError = wrapToHalfTick(serverTickAt - (origin + FRAME_MS / 2));
  if (Math.abs(phaseError) > MAX_PHASE_ERROR_MS) {
    return { kind: 'undecided', ticks: [], serverTickAt, reason: `the server's ticks came ${phaseError.toFixed(1)} ms from where the mixes before said, so the frames were not sent half a tick away from them${graderNote}`, graderLate };
  }
  const firstTick = origin + FRAME_MS / 2 + phaseError;
  const lastDue = frames.at(-1)!.dueAt;
  const tickCount = Math.floor((lastDue - firstTick) / FRAME_MS) + 2; // through the tick after the last frame
  const tickAt = (k: number) => firstTick + k * FRAME_MS;

  // Each mix belongs to the last tick before it arrived.
  const mixOfTick: (ReceivedMix | null | 'two')[] = Array.from({ length: tickCount }, () => null);
  for (const mix of mixes) {
    const k = Math.floor((mix.at - firstTick) / FRAME_MS);
    if (k < 0 || k >= tickCount) continue;
    mixOfTick[k] = mixOfTick[k] === null ? mix : 'two';
  }
  const newestDueBefore = (t: number) => frames.filter((frame) => frame.dueAt < t).at(-1);
  const ticks: TickRecord[] = mixOfTick.map((mix, k) => {
    const newest = newestDueBefore(tickAt(k))!;
    return {
      at: tickAt(k),
      lag: mix === null || mix === 'two' ? null : newest.number - mix.frame,
      lateFrame: newest.sentAt > tickAt(k) - IN_TIME_MARGIN_MS,
      lateMix: mix === null || mix === 'two' || mix.at > tickAt(k) + LATE_MIX_MS,
    };
  });

  // FAIL: a backlog that stood while every frame came in time and the server kept time.
  let stretch = 0;
  let longest = 0;
  for (const tick of ticks) {
    stretch = tick.lag !== null && tick.lag >= 2 && !tick.lateFrame && !tick.lateMix ? stretch + 1 : 0;
    longest = Math.max(longest, stretch);
  }
  if (longest >= NEVER_CUT_TICKS) return { kind: 'never-cut', ticks, serverTickAt, stretchTicks: longest };

  // PASS: a cut from 2 frames of lag to 1 that no overflow explains.
  let overflowSuspects = 0;
  for (let k = 1; k < ticks.length; k++) {
    const before = ticks[k - 1]!.lag;
    const after = ticks[k]!.lag;
    if (before === null || after === null || after >= before) continue;
    const mix = mixOfTick[k] as ReceivedMix;
    const nextFrame = frames.find((frame) => frame.dueAt > tickAt(k));
    const beforeNextFrame = nextFrame === undefined || mix.at < nextFrame.sentAt;
    if (before === 2 && after <= 1 && beforeNextFrame) return { kind: 'cut', ticks, serverTickAt, cutAfterMs: tickAt(k) - origin };
    overflowSuspects++;
  }

  const lateFrames = ticks.filter((tick) => tick.lateFrame).length;
  const lateMixes = ticks.filter((tick) => tick.lag !== null && tick.lateMix).length;
  const unknown = ticks.filter((tick) => tick.lag === null).length;
  const reasons = [`the longest stretch of 2 or more frames of lag with every frame and every mix in time was ${longest} ticks`];
  if (overflowSuspects > 0) reasons.push(`the lag fell ${overflowSuspects} time(s), but only at a tick whose mix arrived after the next frame had been sent (a tick that late lets a fourth frame into the full buffer, which ends the backlog of any server)`);
  if (lateFrames > 0) reasons.push(`${lateFrames} ticks came less than ${IN_TIME_MARGIN_MS} ms after the frame meant for them was sent (a correct server may then find one frame waiting and count again)`);
  if (lateMixes > 0) reasons.push(`${lateMixes} mixes came more than ${LATE_MIX_MS} ms after their tick (the server, or this grader, was not running then)`);
  if (unknown > 0) reasons.push(`${unknown} ticks had no mix, or two`);
  return { kind: 'undecided', ticks, serverTickAt, reason: reasons.join('; ') + graderNote, graderLate };
}

/**
 * The lags tick by tick, in runs, for a failure message: "2×27 1×120 -×1 1*×2 1+×1" (27 ticks at
 * 2 frames, then 120 at 1, a tick with no mix, 2 ticks whose frame this grader sent late, one whose
 * mix came late).
 */
export function describeLags(ticks: TickRecord[]): string {
  const runs: { label: string; count: number }[] = [];
  for (const tick of ticks) {
    const label = `${tick.lag ?? '-'}${tick.lateFrame ? '*' : ''}${tick.lag !== null && tick.lateMix ? '+' : ''}`;
    if (runs.at(-1)?.label === label) runs.at(-1)!.count++;
    else runs.push({ label, count: 1 });
  }
  return runs.map((run) => `${run.label}×${run.count}`).join(' ');
}
