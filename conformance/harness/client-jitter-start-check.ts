// A client check shared by the stages whose client plays room voice through stage 05's jitter
// buffer (05, and 06's, kept by 07 and 08): a speaker's stream that is not playing starts "when 2
// packets wait (40 ms) or the oldest has waited 40 ms". The 40 ms is what plays a lone packet
// (the first of a talk spurt, a short word) at once instead of holding it until more come: a
// client that waits for more packets, or longer, holds the start of every talk spurt back by that
// much, and one that only counts packets never plays a speaker's last lone word at all.
//
// How: the speaker talks 10 packets at real time (a 300 Hz tone: the client is seen to play them
// at all), stops for 300 ms (the talk spurt ends), sends ONE packet (700 Hz), and 400 ms later the
// next two at once (1000 and 1300 Hz). The client's --output WAV, read 20 ms at a time (a client
// writes one frame per tick from its start), shows when each played. The WAV's clock cannot be
// tied to the grader's, so the lone packet's wait is measured against the pair's: the pair starts
// by the "2 packets" rule at the next tick (0-20 ms), so the lone packet waited
// (the time between their sends, as the grader took it) - (the time between them in the WAV),
// + 0 to 20 ms. A client that holds the lone packet until the pair comes plays the three in a row:
// it waited about 400 ms.
import { FRAME_MS } from '#shared/audio/format.ts';
import { CheckFailure } from './check-failure.ts';
import { expect, type Check, type CheckContext } from './checks.ts';
import { strongestTones, toneSpeaker, type SpeakerPacket } from './client-jitter-check.ts';
import { withStallWatch } from './stall-watch.ts';
import { describeWindow, judgeDuration, showMs, timingWindow } from './tolerance.ts';

/** The README: a stream starts when this many packets wait... */
const START_PACKETS = 2;
/** ...or when the oldest has waited this long. */
const START_WAIT_MS = 40;
const LEAD_PACKETS = 10;
/** Silence after the lead: the talk spurt is over (2 concealed ticks) well before the lone packet. */
const AFTER_LEAD_MS = 300;
/** From the lone packet to the pair: longer than the accepted wait, so holding the lone packet for the pair shows. */
const LONE_TO_PAIR_MS = 400;
/** After the pair, time for it to play before the steps end. */
const AFTER_PAIR_MS = 300;
/** The tones: the lead, the lone packet, the pair's two (index in this list = what strongestTones names). */
const TONES_HZ = [300, 700, 1_000, 1_300];
const [LEAD, LONE, PAIR_FIRST] = [0, 1, 2];
const FIRST_SEQUENCE = 2_000;
/** How long the client runs (--duration): the steps take ~1.3 s after WELCOME. */
export const START_CHECK_SECONDS = 2.5;

/**
 * Runs the client under test with --output a WAV for `seconds`, `speaker` a room-mate; once it can
 * hear (WELCOME sent, and at stage 06 its UDP path up), calls `speak` with a function that sends
 * packets of that speaker at once (one message or datagram each, in one go). Returns the recording.
 */
export type PlayWhile = (context: CheckContext, speaker: { id: number; name: string }, seconds: number, speak: (send: (packets: SpeakerPacket[]) => void) => Promise<void>) => Promise<Int16Array>;

const sleepUntil = (at: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, at - performance.now())));

export function clientJitterStartCheck(play: PlayWhile): Check {
  return {
    name: `client: a speaker's lone packet is played about ${START_WAIT_MS} ms after it arrives, not held for the next (its jitter buffer starts at ${START_PACKETS} packets or ${START_WAIT_MS} ms)`,
    subject: 'client',
    async run(context) {
      await withStallWatch(async (watch) => {
        const packetAt = toneSpeaker();
        const sentAt = { lone: 0, pair: 0 };
        const played = await play(context, { id: 1, name: 'Bob' }, START_CHECK_SECONDS, async (send) => {
          watch.reset();
          const start = performance.now();
          for (let i = 0; i < LEAD_PACKETS; i++) {
            await sleepUntil(start + i * FRAME_MS);
            send([{ sequence: FIRST_SEQUENCE + i, packet: packetAt(TONES_HZ[LEAD]!) }]);
          }
          // Encoded before it is due, so that the send times are the sends alone.
          const lone = { sequence: FIRST_SEQUENCE + LEAD_PACKETS, packet: packetAt(TONES_HZ[LONE]!) };
          const pair = [0, 1].map((i) => ({ sequence: FIRST_SEQUENCE + LEAD_PACKETS + 1 + i, packet: packetAt(TONES_HZ[PAIR_FIRST + i]!) }));
          await sleepUntil(start + (LEAD_PACKETS - 1) * FRAME_MS + AFTER_LEAD_MS);
          send([lone]);
          sentAt.lone = performance.now();
          await sleepUntil(sentAt.lone + LONE_TO_PAIR_MS);
          send(pair);
          sentAt.pair = performance.now();
          await sleepUntil(sentAt.pair + AFTER_PAIR_MS);
        });
        const blocks = strongestTones(played, TONES_HZ);
        const lead = blocks.indexOf(LEAD);
        const lone = blocks.indexOf(LONE, Math.max(0, lead));
        const pair = blocks.indexOf(PAIR_FIRST, Math.max(0, lone));
        const sentApartMs = sentAt.pair - sentAt.lone;
        const story = `${LEAD_PACKETS} packets of ${TONES_HZ[LEAD]} Hz at real time, ${AFTER_LEAD_MS} ms of nothing, one packet of ${TONES_HZ[LONE]} Hz, ${Math.round(sentApartMs)} ms later the next two at once (${TONES_HZ[PAIR_FIRST]} and ${TONES_HZ[PAIR_FIRST + 1]} Hz); per 20 ms of the WAV, what played (L: the lead, 1: the lone packet, 2 and 3: the pair, -: silence): ${blocks.map((b) => (b === null ? '-' : b === LEAD ? 'L' : String(b))).join(' ')}`;
        const summary = `the jitter buffer's start is not ${START_PACKETS} packets or ${START_WAIT_MS} ms`;
        const hint = `a speaker's stream that is not playing starts at the first tick where ${START_PACKETS} packets wait OR the oldest has waited ${START_WAIT_MS} ms; then it plays from the oldest`;
        expect(lead !== -1, `${summary}: the client never played a speaker's ${LEAD_PACKETS} packets at real time`, {
          expected: `the ${TONES_HZ[LEAD]} Hz lead in the --output WAV (${LEAD_PACKETS} packets, one per 20 ms)`,
          actual: story,
          hint,
        });
        expect(lone !== -1 && pair !== -1, `${summary}: ${lone === -1 ? 'a lone packet was never played' : 'the two packets after a lone one were never played'}`, {
          expected: `the lone packet (${TONES_HZ[LONE]} Hz) played ${START_WAIT_MS} ms after it arrived, then the pair (${TONES_HZ[PAIR_FIRST]} Hz first) when it came`,
          actual: story,
          hint,
        });
        // The lone packet waited between `waitedMs` and `waitedMs` + a tick (the pair's own start).
        const waitedMs = sentApartMs - (pair - lone) * FRAME_MS;
        // The grader's own measured lateness is the noise (the timing rule for a short duration).
        const window = timingWindow(START_WAIT_MS, { pipelineMs: FRAME_MS, graderLateMs: watch.worstLateMs });
        const verdict = judgeDuration(waitedMs, window) === 'late' ? 'late' : judgeDuration(waitedMs + FRAME_MS, window) === 'early' ? 'early' : 'ok';
        watch.judge(() => {
          if (verdict === 'ok') return;
          throw new CheckFailure(`${summary}: a lone packet waited ${Math.round(waitedMs)}-${Math.round(waitedMs + FRAME_MS)} ms before it played (${verdict === 'late' ? 'too long' : 'too short'})`, {
            expected: `the lone packet played ${showMs(START_WAIT_MS)} after it arrived, as its oldest packet has waited ${START_WAIT_MS} ms (accepted: ${describeWindow(window)}); measured against the pair after it, which starts at once (${START_PACKETS} packets wait): the time between their sends less the time between them in the WAV, + 0-${FRAME_MS} ms`,
            actual: `the pair was sent ${Math.round(sentApartMs)} ms after the lone packet and played ${(pair - lone) * FRAME_MS} ms after it; ${story}`,
            hint: verdict === 'late' ? `${hint}: a lone packet must not wait for the next one` : hint,
          });
        });
      });
    },
  };
}
