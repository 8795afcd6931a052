// A check shared by stages 03 and 04: after a stall, a talker's late frames arrive together and
// then one per tick, so without care the jitter buffer stays full and the talker stays 40 ms late
// for as long as they speak. The server must cut such a standing backlog of two or more frames
// (README: standing backlog); one frame of lag is allowed.
//
// Where a frame lands relative to the server's tick decides how many frames wait: near a tick, a
// queue alternates between two depths and the answer becomes a matter of luck. So the check first
// learns the tick's phase from when mixes arrive, then sends every frame half a tick away from it.
import { FRAME_BYTES, FRAME_MS, FRAME_SAMPLES } from '#shared/audio/format.ts';
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
        /** Sends `count` frames, one per tick, at origin + k * 20 ms (a schedule, not chained sleeps). */
        const sendSteadily = async (origin: number, count: number) => {
          for (let k = 0; k < count; k++) {
            await sleep(Math.max(0, origin + k * FRAME_MS - performance.now()));
            send();
          }
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

        // 2. From now on send half a tick away from the ticks: a burst (the stall), then steadily.
        let origin = warmUpStart + tickPhase + FRAME_MS / 2;
        while (origin < performance.now() + FRAME_MS) origin += FRAME_MS;
        const since = listener.mark();
        await sleep(origin - performance.now());
        for (let i = 0; i < BURST_FRAMES - 1; i++) send();
        await sendSteadily(origin, STEADY_FRAMES);
        await sleep(100);

        // 3. Lag of a mix: how many newer frames had been sent when it arrived.
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
