// A check shared by stages 03 and 04: after a stall, a talker's late frames arrive together and
// then one per tick, so without care the jitter buffer stays full and the talker stays 40 ms late
// for as long as they speak. The server must cut such a standing backlog of two or more frames
// (README: standing backlog); one frame of lag is allowed.
//
// Where a frame lands relative to the server's tick decides how many frames wait: near a tick, a
// queue alternates between two depths, and a correct server that finds one frame waiting starts
// counting its 25 ticks again. So the check learns the tick's phase from when mixes arrive and
// sends every frame half a tick away from it: the stall (3 frames at once), then one frame per
// tick for 3 s. How an attempt is judged, from the server's ticks rather than this grader's clock,
// is in backlog-verdict.ts: a long standing backlog while every frame came in time fails; a cut
// that no late tick explains passes; anything else (this grader sent late, or a tick came so late
// that a fourth frame overflowed the buffer, which ends the backlog of ANY server) is undecided and
// the attempt is repeated with the phase learned from the last one.
//
// Failing needs three attempts that say "never cut" and none that cut: on a busy machine a correct
// server can read a frame after the tick it was meant for, and count again, without anything
// showing here; twice in one attempt delays its cut past the 60 ticks that fail an attempt (seen
// at a load average of 6 to 8, about once in 20 attempts, and once in two attempts in a row).
// When no attempt decides, the check SKIPs if this grader itself ran late (the machine was busy),
// and otherwise FAILs: the server let the backlog stand, or its ticks came late, while this grader
// kept time.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { FRAME_BYTES, FRAME_MS, FRAME_SAMPLES } from '#shared/audio/format.ts';
import { describeLags, inferTickTime, judgeAttempt, LATE_MIX_MS, NEVER_CUT_TICKS, type AttemptVerdict, type SentFrame } from './backlog-verdict.ts';
import { CheckSkipped } from './check-failure.ts';
import { expect, type Check } from './checks.ts';
import { sleep } from './exact-mixes.ts';
import { frameBytes } from './frame-wire.ts';
import { withParty, type TypeNames } from './party.ts';

const AUDIO = 0x03;
const WARM_UP_FRAMES = 25; // 0.5 s at real time, to find the tick's phase
const BURST_FRAMES = 3; // the stall's late frames, sent at once
const STEADY_FRAMES = 150; // then 3 s at real time: the cut is due after 0.5 s, a failure needs 1.2 s without one
/** Silence before each attempt: the server's ticks empty the talker's jitter buffer. */
const PAUSE_MS = 120;
const MAX_ATTEMPTS = 8;
/** Attempts that must say "never cut", with none that cut, before the check fails. */
const NEVER_CUT_ATTEMPTS = 3;

/** Frame number i: every sample is i + 1, so any mix of it names the frame it came from. */
function numberedFrame(i: number): Buffer {
  const frame = Buffer.alloc(FRAME_BYTES);
  for (let s = 0; s < FRAME_SAMPLES; s++) frame.writeInt16LE(i + 1, s * 2);
  return frame;
}

export function standingBacklogCheck(typeNames: TypeNames, helloFields: Record<string, unknown> = {}): Check {
  return {
    name: 'a talker made late by a stall catches up: a standing jitter-buffer backlog is cut within about a second',
    async run(context) {
      await withParty(context, typeNames, async (party) => {
        const talker = await party.join('Tess', helloFields);
        const listener = await party.join('Lee', helloFields);
        let nextNumber = 0;
        const send = (dueAt: number, sentFrames: SentFrame[]) => {
          const number = nextNumber++;
          sentFrames.push({ number, dueAt, sentAt: performance.now() });
          talker.wire.send(frameBytes(AUDIO, numberedFrame(number)));
        };
        /**
         * Sends `count` frames, one per tick, due at origin + k * 20 ms (a schedule, not chained
         * sleeps). Each goes out after the event loop has read what already arrived (setImmediate
         * runs after the poll phase; a timer runs before it), so a mix that came before a send is
         * recorded as having come before it, even when this process was busy: the verdict relies
         * on that to tell a cut from an overflow.
         */
        const sendSteadily = async (origin: number, count: number, sentFrames: SentFrame[]) => {
          for (let k = 0; k < count; k++) {
            const dueAt = origin + k * FRAME_MS;
            await sleep(Math.max(0, dueAt - performance.now()));
            await new Promise((resolve) => setImmediate(resolve));
            send(dueAt, sentFrames);
          }
        };

        // 1. Talk steadily and watch when the mixes arrive: that is when the server ticks.
        const warmUpStart = performance.now();
        const warmUpMark = listener.mark();
        await sendSteadily(warmUpStart, WARM_UP_FRAMES, []);
        const tickTimes = listener.framesOfType(AUDIO, warmUpMark).map((mix) => mix.at);
        expect(tickTimes.length >= WARM_UP_FRAMES / 2, 'the listener got too few mixes while one user talked steadily', {
          expected: `about ${WARM_UP_FRAMES} mixes in 0.5 s`,
          actual: `${tickTimes.length} mixes`,
          hint: 'mix on a 20 ms clock and send each listener the others\' frames',
        });
        /** A time at which the server ticked (as best known): sends go half a tick away from it. */
        let aTick = inferTickTime(tickTimes);

        // 2. After a pause, half a tick away from the ticks: a burst (the stall), then steadily.
        const attempt = async (): Promise<AttemptVerdict> => {
          let origin = aTick + FRAME_MS / 2;
          while (origin < performance.now() + PAUSE_MS) origin += FRAME_MS;
          const since = listener.mark();
          const frames: SentFrame[] = [];
          await sleep(origin - performance.now());
          const loopDelay = monitorEventLoopDelay({ resolution: 2 });
          loopDelay.enable();
          for (let i = 0; i < BURST_FRAMES - 1; i++) send(origin, frames);
          await sendSteadily(origin, STEADY_FRAMES, frames);
          await sleep(100);
          loopDelay.disable();
          const mixes = listener.framesOfType(AUDIO, since)
            .filter((mix) => mix.at > origin)
            .map((mix) => ({ at: mix.at, frame: mix.payload.readInt16LE(0) - 1 }));
          const verdict = judgeAttempt({ frames, mixes, origin }, loopDelay.max / 1e6);
          if (verdict.serverTickAt !== null) aTick = verdict.serverTickAt; // the phase as this attempt found it
          return verdict;
        };

        const attempts: string[] = []; // what each attempt showed, in order
        let neverCut = 0;
        let graderLate = false;
        const neverCutFailure = (after: string) => ({
          expected: `after the stall (3 frames at once, then one every 20 ms, each sent half a tick before the server's tick), the mix Lee receives is 2 frames behind what Tess has sent for at most 25 ticks, then 1; never ${NEVER_CUT_TICKS} ticks in a row at 2 or more while every frame and every mix is in time (${after})`,
          actual: attempts.join('\n'),
          hint: `when two or more frames have been left waiting in a talker's jitter buffer after every tick for 25 ticks, drop the oldest (see "standing backlog" in the README). Lags are counted against your server's ticks, inferred from when its mixes arrive; "2×60" is 60 ticks in a row at 2 frames of lag, "*" marks ticks whose frame this grader sent late, "+" ticks whose mix came more than ${LATE_MIX_MS} ms late, "-" ticks with no mix`,
        });
        for (let n = 1; n <= MAX_ATTEMPTS; n++) {
          const verdict = await attempt();
          const lags = `lag in frames at each tick, as runs (lag×ticks): ${describeLags(verdict.ticks)}`;
          if (verdict.kind === 'cut') return; // only the server's own rule explains it
          if (verdict.kind === 'undecided') {
            graderLate ||= verdict.graderLate;
            attempts.push(`attempt ${n} undecided: ${verdict.reason}; ${lags}`);
            continue;
          }
          neverCut++;
          attempts.push(`attempt ${n}: ${verdict.stretchTicks} ticks in a row (${((verdict.stretchTicks * FRAME_MS) / 1000).toFixed(2)} s) 2 or more frames behind; ${lags}`);
          if (neverCut < NEVER_CUT_ATTEMPTS) continue;
          expect(false, 'the talker stayed late: the backlog left by the stall was never cut', neverCutFailure(`${NEVER_CUT_ATTEMPTS} attempts did, and none cut`));
        }
        // No attempt decided. When this process itself ran late, the machine is to blame: SKIP.
        // When it kept time, the server is: it let a backlog stand, or its ticks came late.
        if (graderLate) throw new CheckSkipped(`${MAX_ATTEMPTS} attempts decided nothing (none cut; ${neverCut} said never cut, and it takes ${NEVER_CUT_ATTEMPTS} to fail), and this grader ran late (the grading machine was busy): ${attempts.join('; ')}; grade again on a quieter machine`);
        expect(neverCut === 0, 'the talker stayed late: the backlog left by the stall was never cut', neverCutFailure(`${neverCut} attempts did, none cut, and the others saw the server's ticks come late while this grader kept time`));
        expect(false, 'the server\'s ticks came late or irregularly: no attempt could be judged, while this grader kept time', {
          expected: `one attempt of ${(STEADY_FRAMES * FRAME_MS) / 1000} s in which the server mixes on a steady 20 ms clock, so the lag it leaves can be read`,
          actual: attempts.join('\n'),
          hint: `tick every ${FRAME_MS} ms against a monotonic start (tick n is due at start + n × ${FRAME_MS} ms) and catch up on late ticks; see also the tick check`,
        });
      });
    },
  };
}
