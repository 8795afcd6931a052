// The forwarding delay of stages 05-08: none. A forwarding server sends each voice packet on "at
// once", as soon as it is read (no tick, no timer, no queue but the sockets'), whether it came as
// TCP VOICE (05) or as a VOICE_UP datagram (06 on). The timing rule (tolerance.ts) turns a
// documented 0 ms into "within its noise allowance"; the median of many copies is judged, so that
// one late packet on a busy machine does not decide, and a server that holds every packet does.
import type { StallWatch } from './stall-watch.ts';
import { expectDuration, timingWindow } from './tolerance.ts';

/** The READMEs' forwarding delay: none ("at once"). */
export const FORWARDING_DELAY_MS = 0;
/** What the rule accepts for it: the check names cite its latest. */
export const FORWARDING_WINDOW = timingWindow(FORWARDING_DELAY_MS);

/**
 * Fails the check unless the median of `delays` (each copy's arrival less its sending, in ms) is
 * "at once"; `what` names the timing ("the median time from a VOICE sent to its copy at Cy"). A
 * failure while the grader's own timers (`watch`, running while the copies were sent and
 * received) stalled is a SKIP.
 */
export function expectMedianForwardedAtOnce(delays: number[], what: string, watch: StallWatch, hint: string): void {
  const sorted = [...delays].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  const shown = `${sorted.slice(0, 3).map(Math.round).join(', ')} ... ${sorted.slice(-3).map(Math.round).join(', ')} ms`;
  watch.judge(() => expectDuration(median, FORWARDING_WINDOW, 'the forwarding delay', `${what} (of ${sorted.length}: ${shown})`, hint));
}
