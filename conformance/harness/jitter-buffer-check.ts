// A check shared by the mixing stages (03, 04): each talker's jitter buffer holds 3 frames (60 ms)
// and drops the OLDEST when a frame arrives while 3 wait (README, "Timing and limits": jitter
// buffer). A burst after a network hiccup must therefore cost at most 60 ms of delay: of a burst of
// 10 frames sent at once, the listener hears only the newest 3. A bigger buffer plays them all,
// and every extra frame is 20 ms the talker stays late; a buffer of 1 absorbs no jitter at all.
//
// Where the burst lands against the server's tick can let one tick take a frame while the burst is
// still being read, so 3 ± 1 frames of it are accepted.
import { FRAME_BYTES, FRAME_MS, FRAME_SAMPLES } from '#shared/audio/format.ts';
import { expect, type Check } from './checks.ts';
import { sleep } from './exact-mixes.ts';
import { frameBytes } from './frame-wire.ts';
import { withParty, type TypeNames } from './party.ts';

const AUDIO = 0x03;
/** The README's jitter buffer, in frames. */
const JITTER_BUFFER_FRAMES = 3;
const BURST_FRAMES = 10;

/** Burst frame number i (1-based): every sample is 100 × i, so a mix of it names the frame. */
function burstFrame(i: number): Buffer {
  const frame = Buffer.alloc(FRAME_BYTES);
  for (let s = 0; s < FRAME_SAMPLES; s++) frame.writeInt16LE(100 * i, s * 2);
  return frame;
}

export function jitterBufferCheck(typeNames: TypeNames, helloFields: Record<string, unknown> = {}): Check {
  return {
    name: `jitter buffer: of ${BURST_FRAMES} frames arriving at once, only the newest ${JITTER_BUFFER_FRAMES} are mixed (at most ${JITTER_BUFFER_FRAMES * FRAME_MS} ms of delay)`,
    async run(context) {
      await withParty(context, typeNames, async (party) => {
        const talker = await party.join('Burst T', helloFields);
        const listener = await party.join('Burst L', helloFields);
        const since = listener.mark();
        talker.send(Buffer.concat(Array.from({ length: BURST_FRAMES }, (_, i) => frameBytes(AUDIO, burstFrame(i + 1)))));
        await sleep((BURST_FRAMES + 5) * FRAME_MS); // long enough to play the whole burst, were it kept
        const heard = listener.framesOfType(AUDIO, since).map((mix) => mix.payload.readInt16LE(0) / 100);
        const hint = `keep at most ${JITTER_BUFFER_FRAMES} frames per talker; when one more arrives, drop the OLDEST waiting frame (late audio is useless)`;
        expect(heard.length <= JITTER_BUFFER_FRAMES + 1, `the jitter buffer holds more than ${JITTER_BUFFER_FRAMES} frames: ${heard.length} of a burst of ${BURST_FRAMES} were mixed`, {
          expected: `at most ${JITTER_BUFFER_FRAMES} (+1 if a tick fell inside the burst) of the burst heard, the newest: frames ${BURST_FRAMES - JITTER_BUFFER_FRAMES + 1}-${BURST_FRAMES}`,
          actual: `the listener heard burst frames ${heard.join(', ')}: each one more than ${JITTER_BUFFER_FRAMES} keeps the talker ${FRAME_MS} ms later`,
          hint,
        });
        expect(heard.length >= JITTER_BUFFER_FRAMES - 1 && heard.at(-1) === BURST_FRAMES, `the jitter buffer does not keep the newest ${JITTER_BUFFER_FRAMES} frames of a burst`, {
          expected: `the newest ${JITTER_BUFFER_FRAMES} frames of the burst heard (${BURST_FRAMES - JITTER_BUFFER_FRAMES + 1}-${BURST_FRAMES}; one fewer if a tick fell inside the burst)`,
          actual: `the listener heard burst frames: ${heard.join(', ') || 'none'}`,
          hint,
        });
      });
    },
  };
}
