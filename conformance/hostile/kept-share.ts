// Issue 18's rule for floods that are not of voice (JOINs in stage 04, INVITEs and LOOKUPs in stage
// 08): while one connection floods, well-behaved conversations (steady-pair.ts) in the flooder's
// room and in another keep at least 90% of their frames (one per 20 ms). A shortfall while this
// process itself sent its frames late says SKIP (the machine, not the server, was busy).
import { CheckFailure, CheckSkipped } from '../harness/check-failure.ts';
import { OWN_LATENESS_MS, type SteadyPair } from './steady-pair.ts';
import { AUDIO, TICK_MS } from './wire-spec.ts';

/** Each conversation keeps at least this share of its frames during a flood. */
export const MIN_KEPT_SHARE = 0.9;

/** Fails the check unless every pair's listener got 90% of one frame per 20 ms between `from` and `to`. */
export function expectConversationsKept(pairs: SteadyPair[], from: number, to: number, during: string, hint: string): void {
  const expected = Math.floor((to - from) / TICK_MS);
  const heard = pairs.map((pair) => ({ pair, received: pair.listener.frames.filter((f) => f.type === AUDIO && f.at >= from && f.at <= to).length }));
  const summary = heard.map((h) => `${h.pair.listener.name} got ${h.received} of ${expected} frames`).join('; ');
  const short = heard.filter((h) => h.received < MIN_KEPT_SHARE * expected);
  if (short.length === 0) return;
  const ownLateness = Math.max(...pairs.map((pair) => pair.worstSendLateMs));
  if (ownLateness > OWN_LATENESS_MS) {
    throw new CheckSkipped(`the machine running the check was too busy during ${during} to judge the conversations: a talker's frame went out ${Math.round(ownLateness)} ms late (the limit is ${OWN_LATENESS_MS} ms); ${summary}`);
  }
  throw new CheckFailure(`${during} silenced ${short.map((h) => h.pair.listener.name).join(' and ')}`, {
    expected: `at least ${Math.round(MIN_KEPT_SHARE * 100)}% of the frames (one per ${TICK_MS} ms) in each conversation during ${during}`,
    actual: summary,
    hint,
  });
}
