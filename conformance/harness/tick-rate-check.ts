// A check shared by the mixing stages (03, 04): the server mixes on a 20 ms clock, 50 mixes a
// second per listener (README, "Timing and limits": tick). The mixing checks compare each frame
// sample for sample but cannot count frames strictly (a late frame of the grader's own is not the
// server's fault), so without this check a server ticking every 30 ms, which loses a third of
// everyone's voice, would pass them all.
//
// How: one user talks FASTER than real time (60 frames a second), so the talker's jitter buffer is
// never empty and every tick of the server makes exactly one mix for the listener, whatever its
// phase; the listener counts the mixes of 3 seconds. The rate must be 50 a second within the
// tolerance of conformance/harness/tolerance.ts. A tick too slow and a tick too fast both show.
//
// Only a late grader can blur this: when this process does not run for a while, its frames stop
// and its clock of arrivals slips. A gap of G ms between two sends is harmless up to what the
// talker's full 3-frame buffer covers (the buffer feeds 3 ticks); past that it can cost at most
// ceil((G - 40) / 20) mixes, and the same stall can move as many mixes across an edge of the judged
// window. So each attempt adds up what its own gaps could explain: a rate inside the tolerance
// passes; a rate outside it fails when this grader's own gaps cannot explain the difference, and
// only otherwise proves nothing and is repeated; when every attempt is disturbed so, the check
// SKIPs, naming the disturbances (the machine's fault, not the server's). (It once skipped any
// attempt with a send 40 ms late, which made it SKIP 6 runs in 14 on a loaded 2-core machine.)
import { FRAME_MS } from '#shared/audio/format.ts';
import { CheckSkipped } from './check-failure.ts';
import { expect, type Check } from './checks.ts';
import { sleep, toneFrame } from './exact-mixes.ts';
import { frameBytes } from './frame-wire.ts';
import { withParty, type TypeNames } from './party.ts';
import { rateWindow } from './tolerance.ts';

const AUDIO = 0x03;
/** The README's tick: one mix per listener per tick. */
const TICKS_PER_SECOND = 1000 / FRAME_MS;
/** The talker's pace: 20% faster than real time, so a frame always waits at every tick. */
const FEED_PER_SECOND = 60;
/** Before judging: the talker's jitter buffer fills. */
const SETTLE_MS = 500;
const JUDGED_MS = 3_000;
/** A gap between sends the talker's buffer covers: 3 frames feed 3 ticks, less one tick of phase. */
const COVERED_GAP_MS = 2 * FRAME_MS;
const MAX_ATTEMPTS = 3;

export function tickRateCheck(typeNames: TypeNames, helloFields: Record<string, unknown> = {}): Check {
  const accepted = rateWindow(TICKS_PER_SECOND);
  return {
    name: `tick: a listener gets ${TICKS_PER_SECOND} mixes a second (a mix every ${FRAME_MS} ms) while someone talks`,
    async run(context) {
      await withParty(context, typeNames, async (party) => {
        const talker = await party.join('Tick T', helloFields);
        const listener = await party.join('Tick L', helloFields);
        const bytes = frameBytes(AUDIO, toneFrame(400, 8_000));
        const disturbed: string[] = [];
        for (let n = 1; n <= MAX_ATTEMPTS; n++) {
          const since = listener.mark();
          const start = performance.now();
          const end = start + SETTLE_MS + JUDGED_MS + 2 * FRAME_MS;
          let explainable = 0; // mixes this grader's own gaps could have cost or moved
          let longestGap = 0;
          let previous = start;
          for (let k = 0; ; k++) {
            const due = start + (k * 1000) / FEED_PER_SECOND;
            if (due > end) break;
            await sleep(Math.max(0, due - performance.now()));
            const now = performance.now();
            const gap = now - previous;
            previous = now;
            longestGap = Math.max(longestGap, gap);
            if (gap > COVERED_GAP_MS) explainable += 2 * Math.ceil((gap - COVERED_GAP_MS) / FRAME_MS);
            talker.send(bytes);
          }
          const from = start + SETTLE_MS;
          const to = from + JUDGED_MS;
          const mixes = listener.framesOfType(AUDIO, since).filter((mix) => mix.at >= from && mix.at < to).length;
          const perSecond = mixes / (JUDGED_MS / 1000);
          const seconds = JUDGED_MS / 1000;
          const inside = perSecond >= accepted.lowest && perSecond <= accepted.highest;
          const missing = perSecond < accepted.lowest ? Math.ceil(accepted.lowest * seconds) - mixes : mixes - Math.floor(accepted.highest * seconds);
          if (!inside && missing <= explainable) {
            disturbed.push(`attempt ${n}: this grader stopped for up to ${longestGap.toFixed(0)} ms between two sends (it was not running), which could explain ${explainable} mixes; ${perSecond.toFixed(1)} mixes a second`);
            await sleep(200); // let the talker's buffer drain before the next attempt
            continue;
          }
          const tickMs = perSecond > 0 ? 1000 / perSecond : Infinity;
          expect(inside, `the mixer's tick is not ${FRAME_MS} ms: the listener got ${perSecond.toFixed(1)} mixes a second, as from a ${tickMs.toFixed(0)} ms tick`, {
            expected: `${TICKS_PER_SECOND} mixes a second (${accepted.lowest}-${accepted.highest}) while another user always had a frame waiting: one mix per ${FRAME_MS} ms tick`,
            actual: `${mixes} mixes in ${seconds} s (this grader's own gaps could explain ${explainable} of the ${missing} mixes missing or extra)` + (disturbed.length > 0 ? ` (attempt ${n}; earlier ones were disturbed: ${disturbed.join('; ')})` : ''),
            hint: perSecond < accepted.lowest
              ? `tick every ${FRAME_MS} ms against a monotonic start (tick n is due at start + n × ${FRAME_MS} ms), so late timers do not add up; a slower tick drops voice, because each talker's buffer overflows`
              : `tick every ${FRAME_MS} ms, not faster: each tick takes one frame per talker`,
          });
          return;
        }
        throw new CheckSkipped(`the grading machine was too busy to time the server's tick in ${MAX_ATTEMPTS} attempts: ${disturbed.join('; ')}; grade again on a quieter machine`);
      });
    },
  };
}
