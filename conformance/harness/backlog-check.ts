// A check shared by stages 03 and 04: after a stall, a talker's late frames arrive together and
// then one per tick, so without care the jitter buffer stays full and the talker stays 40 ms late
// for as long as they speak. The server must cut such a standing backlog of two or more frames
// (README: standing backlog); one frame of lag is allowed.
//
// Where a frame lands relative to the server's tick decides how many frames wait: near a tick, a
// queue alternates between two depths and the answer becomes a matter of luck. So the check first
// learns the tick's phase from when mixes arrive, then sends every frame half a tick away from it.
//
// What the check must NOT assume: that the phase it learned holds exactly (a correct server's
// mixes may leave it milliseconds after its tick, and a clock may drift a little over seconds),
// so a frame may still land near a tick, where the lag this process sees alternates between two
// values (it counts a frame in flight as waiting). A check judging the lag alone then failed a
// correct server about once in 30 runs ("lags 15×1 / 35×2"). So the verdict compares the lag
// right after the stall with the lag in the last second: the cut removes one frame of lag, which
// shows as a drop of a whole frame in the mean, whatever the phase; a server that never lets a
// backlog stand (mean lag at most 1.5 throughout) passes too.
//
// A busy machine can end the backlog too: a tick more than 10 ms late lets a fourth frame into
// the full jitter buffer, which drops the oldest, and a server that never trims then looks as if
// it did (a CI run once passed such a mutant). So every attempt also watches its own timing (sends
// late against their schedule, a frame dropped across a late tick); a disturbed attempt proves nothing either way
// and is repeated, and only an undisturbed attempt passes or fails the check.
import { FRAME_BYTES, FRAME_MS, FRAME_SAMPLES } from '#shared/audio/format.ts';
import { CheckSkipped } from './check-failure.ts';
import { expect, type Check } from './checks.ts';
import { sleep } from './exact-mixes.ts';
import { frameBytes } from './frame-wire.ts';
import { withParty, type TypeNames } from './party.ts';

const AUDIO = 0x03;
const WARM_UP_FRAMES = 25; // 0.5 s at real time, to find the tick's phase
const BURST_FRAMES = 3; // the stall's late frames, sent at once
const STEADY_FRAMES = 125; // then 2.5 s at real time
/** The documented trim acts after 500 ms of standing backlog; judge the last second only. */
const JUDGED_MS = 1_000;
/** The lag before any trim: mixes from 60 ms to 400 ms after the stall (the trim acts at 500 ms). */
const EARLY_FROM_MS = 60;
const EARLY_TO_MS = 400;
/** A cut removes one frame of lag; half a frame in the mean is the least that shows it. */
const MIN_DROP_FRAMES = 0.5;
/** A mean lag this low never was a standing backlog (1 frame, or 1 and 2 alternating). */
const NO_BACKLOG_MEAN = 1.5;
/** Silence before each attempt: the server's ticks empty the talker's jitter buffer. */
const PAUSE_MS = 120;
/** A gap between mixes this much over 20 ms: a tick late enough to overfill a full buffer. */
const DISTURBANCE_MS = 6;
const MAX_ATTEMPTS = 6;

/** Frame number i: every sample is i + 1, so any mix of it names the frame it came from. */
function numberedFrame(i: number): Buffer {
  const frame = Buffer.alloc(FRAME_BYTES);
  for (let s = 0; s < FRAME_SAMPLES; s++) frame.writeInt16LE(i + 1, s * 2);
  return frame;
}

/** The mean phase (0 <= phase < period) of some times, on a circle: 19.9 and 0.1 average to 0. */
function circularPhase(times: number[], origin: number, period: number): number {
  let x = 0;
  let y = 0;
  for (const t of times) {
    const angle = (2 * Math.PI * (t - origin)) / period;
    x += Math.cos(angle);
    y += Math.sin(angle);
  }
  const phase = (Math.atan2(y, x) / (2 * Math.PI)) * period;
  return (phase + period) % period;
}

interface Attempt {
  /** True when the lag dropped by a frame after the stall, or never stood above 1.5 frames. */
  caughtUp: boolean;
  /** Lag in frames of each judged mix (the last second), sorted. */
  lags: number[];
  /** Mean lag right after the stall, and in the last second. */
  earlyMean: number;
  lateMean: number;
  /** The latest send against its schedule, in ms. */
  sendLateness: number;
  /**
   * The widest gap between two mixes across which a frame went missing: a tick that late let a
   * fourth frame into the full buffer, which dropped the oldest (0 when no drop came with a gap).
   */
  dropAtLateTick: number;
}

/**
 * What, other than the server's own rule, may have decided this attempt; null when nothing did.
 * A tick more than 10 ms late overfills the full buffer, which ends the backlog of ANY server (a
 * pass proves nothing); it shows as a gap between mixes. A stall of this process long enough to
 * leave a tick without a frame (more than a tick) builds a NEW backlog at its end, which a correct
 * server may still hold in the judged second (a failure proves nothing).
 */
function disturbance(attempt: Attempt): string | null {
  // Only a gap that came with a dropped frame can have ended the backlog; a gap alone (this
  // process read late) changes nothing, so it no longer voids an attempt.
  if (attempt.caughtUp && attempt.dropAtLateTick > FRAME_MS + DISTURBANCE_MS) {
    return `a frame was dropped across a gap of ${attempt.dropAtLateTick.toFixed(1)} ms between two mixes (a late tick overfilled the buffer)`;
  }
  if (!attempt.caughtUp && attempt.sendLateness > FRAME_MS) {
    return `a frame went out ${attempt.sendLateness.toFixed(1)} ms after its time (this process was not running)`;
  }
  return null;
}

export function standingBacklogCheck(typeNames: TypeNames, helloFields: Record<string, unknown> = {}): Check {
  return {
    name: 'a talker made late by a stall catches up: a standing jitter-buffer backlog is cut within about a second',
    async run(context) {
      await withParty(context, typeNames, async (party) => {
        const talker = await party.join('Tess', helloFields);
        const listener = await party.join('Lee', helloFields);
        const sentAt: number[] = [];
        const send = () => {
          sentAt.push(performance.now());
          talker.wire.send(frameBytes(AUDIO, numberedFrame(sentAt.length - 1)));
        };
        /**
         * Sends `count` frames, one per tick, at origin + k * 20 ms (a schedule, not chained
         * sleeps). Returns how late the latest send was against its schedule, in ms.
         */
        const sendSteadily = async (origin: number, count: number): Promise<number> => {
          let worst = 0;
          for (let k = 0; k < count; k++) {
            await sleep(Math.max(0, origin + k * FRAME_MS - performance.now()));
            worst = Math.max(worst, performance.now() - (origin + k * FRAME_MS));
            send();
          }
          return worst;
        };

        // 1. Talk steadily and watch when the mixes arrive: that is when the server ticks.
        const warmUpStart = performance.now();
        const warmUpMark = listener.mark();
        await sendSteadily(warmUpStart, WARM_UP_FRAMES);
        const tickTimes = listener.framesOfType(AUDIO, warmUpMark).map((mix) => mix.at);
        expect(tickTimes.length >= WARM_UP_FRAMES / 2, 'the listener got too few mixes while one user talked steadily', {
          expected: `about ${WARM_UP_FRAMES} mixes in 0.5 s`,
          actual: `${tickTimes.length} mixes`,
          hint: 'mix on a 20 ms clock and send each listener the others\' frames',
        });
        const tickPhase = circularPhase(tickTimes, warmUpStart, FRAME_MS);

        // 2. After a pause, half a tick away from the ticks: a burst (the stall), then steadily.
        const attempt = async (): Promise<Attempt> => {
          let origin = warmUpStart + tickPhase + FRAME_MS / 2;
          while (origin < performance.now() + PAUSE_MS) origin += FRAME_MS;
          const since = listener.mark();
          await sleep(origin - performance.now());
          const burstLateness = performance.now() - origin;
          for (let i = 0; i < BURST_FRAMES - 1; i++) send();
          const sendLateness = Math.max(burstLateness, await sendSteadily(origin, STEADY_FRAMES));
          await sleep(100);

          // 3. Lag of a mix: how many newer frames had been sent when it arrived.
          const lastSent = sentAt.at(-1)!;
          const mixes = listener.framesOfType(AUDIO, since).filter((mix) => mix.at > origin && mix.at <= lastSent);
          const lagOf = (mix: (typeof mixes)[number]) => {
            const frameNumber = mix.payload.readInt16LE(0) - 1;
            const sentByThen = sentAt.filter((t) => t <= mix.at).length;
            return sentByThen - 1 - frameNumber;
          };
          const lags = mixes.filter((mix) => mix.at >= lastSent - JUDGED_MS).map(lagOf).sort((a, b) => a - b);
          const earlyLags = mixes.filter((mix) => mix.at >= origin + EARLY_FROM_MS && mix.at <= origin + EARLY_TO_MS).map(lagOf);
          const mean = (values: number[]) => (values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length);
          const earlyMean = mean(earlyLags);
          const lateMean = mean(lags);
          let dropAtLateTick = 0;
          for (let i = 1; i < mixes.length; i++) {
            const skipped = mixes[i]!.payload.readInt16LE(0) - mixes[i - 1]!.payload.readInt16LE(0) > 1;
            if (skipped) dropAtLateTick = Math.max(dropAtLateTick, mixes[i]!.at - mixes[i - 1]!.at);
          }
          const caughtUp = lags.length >= JUDGED_MS / FRAME_MS / 2 &&
            (lateMean <= earlyMean - MIN_DROP_FRAMES || (earlyMean <= NO_BACKLOG_MEAN && lateMean <= NO_BACKLOG_MEAN));
          return { caughtUp, lags, earlyMean, lateMean, sendLateness, dropAtLateTick };
        };

        const disturbed: string[] = [];
        const disturbedAttempts: Attempt[] = [];
        for (let n = 1; n <= MAX_ATTEMPTS; n++) {
          const result = await attempt();
          const why = disturbance(result);
          if (why !== null) {
            disturbedAttempts.push(result);
            disturbed.push(`attempt ${n}: ${why}; lag in frames, sorted: ${result.lags.join(' ')}`);
            continue;
          }
          expect(result.caughtUp, 'the talker stayed late: the backlog left by the stall was never cut', {
            expected: `in the last second, the mix Lee receives is a frame less behind what Tess has sent than right after the stall (mean lag down by at least ${MIN_DROP_FRAMES}), or never more than ${NO_BACKLOG_MEAN} frames behind`,
            actual: `mean lag ${result.earlyMean.toFixed(2)} frames after the stall, ${result.lateMean.toFixed(2)} in the last second; ${result.lags.length} mixes judged; lag in frames, sorted: ${result.lags.join(' ')}` +
              (disturbed.length > 0 ? ` (attempt ${n}; earlier attempts were disturbed: ${disturbed.join('; ')})` : ''),
            hint: 'when two or more frames have been left waiting in a talker\'s jitter buffer after every tick for 500 ms, drop the oldest (see "standing backlog" in the README)',
          });
          return;
        }
        // Every attempt disturbed. When this process itself ran late, the machine is to blame: SKIP.
        // When only mixes came late while this process kept time, the server's clock is: FAIL.
        const ownFault = disturbedAttempts.some((a) => a.sendLateness > FRAME_MS / 2);
        if (ownFault) throw new CheckSkipped(`the grading machine was too busy in all ${MAX_ATTEMPTS} attempts (this grader ran late, so a late tick proves nothing): ${disturbed.join('; ')}; grade again on a quieter machine`);
        expect(false, `the server's ticks came irregularly: in every attempt a tick more than ${FRAME_MS + DISTURBANCE_MS} ms after the one before dropped a frame, while this grader kept time`, {
          expected: `one attempt of ${(STEADY_FRAMES * FRAME_MS) / 1000} s in which no frame is lost at a tick later than ${FRAME_MS + DISTURBANCE_MS} ms (one tick per ${FRAME_MS} ms)`,
          actual: disturbed.join('\n'),
          hint: `tick every ${FRAME_MS} ms against a monotonic start (tick n is due at start + n × ${FRAME_MS} ms) and catch up on late ticks; see also the tick check`,
        });
      });
    },
  };
}
