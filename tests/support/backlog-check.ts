// A check shared by stages 03 and 04: after a stall, a talker's late frames arrive together and
// then one per tick, so without care the jitter buffer stays full and the talker stays 40 ms late
// for as long as they speak. The server must cut such a standing backlog of two or more frames
// (README: jitter buffer); one frame of lag is allowed.
import { FRAME_BYTES, FRAME_MS, FRAME_SAMPLES } from '../../shared/audio/format.ts';
import { expect, type Check } from './checks.ts';
import { sleep } from './exact-mixes.ts';
import { frameBytes } from './frame-wire.ts';
import { withParty, type TypeNames } from './party.ts';

const AUDIO = 0x03;
const BURST_FRAMES = 3; // the stall's late frames, sent at once
const STEADY_FRAMES = 125; // then 2.5 s at real time
/** The documented trim acts after 500 ms of standing backlog; judge the last second only. */
const JUDGED_MS = 1_000;

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
        const since = listener.mark();
        const sentAt: number[] = [];
        const send = () => {
          sentAt.push(performance.now());
          talker.wire.send(frameBytes(AUDIO, numberedFrame(sentAt.length - 1)));
        };
        for (let i = 0; i < BURST_FRAMES; i++) send();
        const start = performance.now();
        for (let k = 1; k <= STEADY_FRAMES; k++) {
          await sleep(Math.max(0, start + k * FRAME_MS - performance.now())); // a schedule, not chained sleeps
          send();
        }
        await sleep(100);

        // Lag of a mix: how many newer frames had been sent when it arrived.
        const judgedFrom = sentAt.at(-1)! - JUDGED_MS;
        const lags = listener
          .framesOfType(AUDIO, since)
          .filter((mix) => mix.at >= judgedFrom && mix.at <= sentAt.at(-1)!)
          .map((mix) => {
            const frameNumber = mix.payload.readInt16LE(0) - 1;
            const sentByThen = sentAt.filter((t) => t <= mix.at).length;
            return sentByThen - 1 - frameNumber;
          })
          .sort((a, b) => a - b);
        const median = lags[Math.floor(lags.length / 2)];
        expect(lags.length >= JUDGED_MS / FRAME_MS / 2 && median !== undefined && median <= 1, 'the talker stayed late: the backlog left by the stall was never cut', {
          expected: `in the last second, the mix Lee receives is at most 1 frame behind what Tess has sent (median)`,
          actual: `${lags.length} mixes judged; lag in frames, sorted: ${lags.join(' ')}`,
          hint: 'when two or more frames have been left waiting in a talker\'s jitter buffer after every tick for 500 ms, drop the oldest (see "standing backlog" in the README)',
        });
      });
    },
  };
}
