// A check shared by the stages with rooms (04 on): the move bucket's refill rate (README, limits:
// moves, 10 at once, then 1 per second). The flood check cannot see the refill: its JOINs all come
// within milliseconds, so a refill of 10 a second, or none at all, gives it the same answers.
//
// Judged with the course's tolerance rule (GRADING.md, timing): k tokens back within
// k × 0.8 s - 100 ms of emptying the bucket is too fast (the first within 700 ms), none by
// 1.5 × 1 s + 100 ms = 1.6 s too slow (or never). Times are judged by when the answers ARRIVED,
// counted from when the first JOIN was SENT: a server grants a move before its answer arrives and
// takes its tokens after the JOINs were sent, so neither a late grader nor a busy server makes a
// correct one look fast. Each stage passes its own wire: its type names and its HELLO (05 on name
// a protocol), the rest of the exchange (JOIN, USERS, JOIN_REFUSED) is the same in every stage.
import { CheckFailure } from './check-failure.ts';
import { expect, type Check } from './checks.ts';
import { sleep } from './exact-mixes.ts';
import { hexType, jsonFrameBytes } from './frame-wire.ts';
import type { ReceivedFrame } from './framed-user.ts';
import { jsonOf, withParty, type TypeNames } from './party.ts';
import { describeWindow, EARLY_FACTOR, SCHEDULING_NOISE_MS, showMs, timingWindow } from './tolerance.ts';

const ERROR = 0x05;
const USERS = 0x06;
const JOIN = 0x0a;
const JOIN_REFUSED = 0x0b;
/** "At once" for an answer to a JOIN, with room for a busy machine. */
const ANSWER_DEADLINE_MS = 1_000;

/** What the check needs of a stage's wire (conformance/hostile/wire-spec.ts's StageWire has it). */
export interface MoveRefillWire {
  typeNames: Readonly<TypeNames>;
  /** HELLO's JSON object for `name` joining `room`. */
  hello(name: string, room: string): Record<string, unknown>;
  moves?: { burst: number; refillMs: number };
}

export function moveRefillCheck(wire: MoveRefillWire): Check {
  const { burst: BURST, refillMs: REFILL_MS } = wire.moves!;
  const perSecond = REFILL_MS === 1_000 ? '1 per second' : `1 per ${showMs(REFILL_MS)}`;
  const window = timingWindow(REFILL_MS);
  /** The most moves a server may have granted `elapsed` ms after the bucket emptied, by the tolerance rule. */
  const mostMoves = (elapsed: number) => Math.floor((elapsed + SCHEDULING_NOISE_MS) / (EARLY_FACTOR * REFILL_MS));
  const hint = `moves come from a per-user bucket of ${BURST} tokens, refilled at ${perSecond} (one token back ${showMs(REFILL_MS)} after it was taken), never more than ${BURST}`;
  const describe = (frame: ReceivedFrame) => `${wire.typeNames[frame.type] ?? 'unknown type'} (${hexType(frame.type)}) ${frame.payload.toString('utf8').slice(0, 200)}`;
  const join = (room: string) => jsonFrameBytes(JOIN, { room });
  return {
    name: `moving: the move bucket refills at ${perSecond}: after ${BURST} moves at once, no move within ${showMs(window.earliestMs)}, one within ${showMs(window.latestMs)}`,
    run: (context) =>
      withParty(context, { ...wire.typeNames }, async (party) => {
        const rooms = ['refill-a', 'refill-b'] as const;
        const mia = await party.join('Mia', wire.hello('Mia', rooms[0]));
        const welcomeUsers = await mia.waitForFrame(`USERS for room "${rooms[0]}"`, (f) => f.type === USERS, { timeoutMs: ANSWER_DEADLINE_MS, hint: 'after WELCOME, USERS lists the room' });
        expect(jsonOf(welcomeUsers).room === rooms[0], 'USERS after WELCOME names the wrong room', { expected: `USERS {"room": "${rooms[0]}", ...}`, actual: describe(welcomeUsers), hint: 'after WELCOME, USERS lists the room' });
        let current: string = rooms[0];
        const otherRoom = (room: string) => (room === rooms[0] ? rooms[1] : rooms[0]);
        const isAnswer = (f: ReceivedFrame) => f.type === USERS || f.type === JOIN_REFUSED || f.type === ERROR;
        /** Sends `count` JOINs at once, alternating rooms; returns how many moved Mia, and when the last move's USERS came. */
        const tryMoves = async (count: number): Promise<{ moved: number; lastMoveAt: number; answers: ReceivedFrame[] }> => {
          let since = mia.mark();
          const targets: string[] = [];
          for (let i = 0, room = current; i < count; i++) targets.push((room = otherRoom(room)));
          mia.send(Buffer.concat(targets.map((room) => join(room))));
          const answers: ReceivedFrame[] = [];
          let moved = 0;
          let lastMoveAt = 0;
          for (let i = 0; i < count; i++) {
            const answer = await mia.waitForFrame(`an answer to JOIN ${i + 1} of ${count}`, isAnswer, { since, timeoutMs: ANSWER_DEADLINE_MS, hint });
            since = mia.frames.indexOf(answer) + 1;
            answers.push(answer);
            const ok = (answer.type === USERS) || (answer.type === JOIN_REFUSED && jsonOf(answer).code === 'rate_limited');
            expect(ok, 'a JOIN got the wrong answer', { expected: 'USERS (a move, or your own room again) or JOIN_REFUSED {"code": "rate_limited"}', actual: describe(answer), hint });
            if (answer.type === USERS && jsonOf(answer).room !== current) {
              current = String(jsonOf(answer).room);
              moved++;
              lastMoveAt = answer.at;
            }
          }
          return { moved, lastMoveAt, answers };
        };

        // The bucket: BURST moves at once, and the next JOIN, sent with them, is refused.
        const drainedSentAt = performance.now();
        const drained = await tryMoves(BURST + 1);
        expect(drained.moved === BURST && drained.answers[BURST]!.type === JOIN_REFUSED, `a new user did not get exactly ${BURST} moves at once`, {
          expected: `${BURST} USERS (moves), then JOIN_REFUSED rate_limited for the ${BURST + 1}th JOIN`,
          actual: drained.answers.map(describe).join(', '), hint,
        });
        const drainedSeenAt = drained.lastMoveAt; // the server took the last token before this
        const tooFast = (moved: number, at: number) => {
          const elapsed = at - drainedSentAt;
          if (moved <= mostMoves(elapsed)) return;
          throw new CheckFailure(`the move refill is not ${perSecond}: ${moved === 1 ? 'a move was' : `${moved} moves were`} allowed ${showMs(elapsed)} after ${BURST} moves emptied the bucket`, {
            expected: `at most ${mostMoves(elapsed)} move${mostMoves(elapsed) === 1 ? '' : 's'} by then: a token comes back ${showMs(REFILL_MS)} after it was taken (the first no sooner than ${showMs(window.earliestMs)}: ${describeWindow(window)})`,
            actual: `${moved} USERS of a move; the last arrived ${showMs(elapsed)} after the first JOIN was sent`, hint,
          });
        };

        // Too fast: a JOIN sent just before the earliest accepted refill finds the bucket still empty.
        await sleep(window.earliestMs - SCHEDULING_NOISE_MS - (performance.now() - drainedSentAt));
        const early = await tryMoves(1);
        let moves = early.moved;
        if (moves > 0) tooFast(moves, early.lastMoveAt);

        // Too slow: at the latest accepted refill after the server took the last token, a move (three JOINs: a bucket refilled whole moves three times).
        await sleep(window.latestMs - (performance.now() - drainedSeenAt));
        const late = await tryMoves(3);
        moves += late.moved;
        if (moves === 0) {
          throw new CheckFailure(`the move refill is not ${perSecond}: no move was allowed ${showMs(window.latestMs)} after ${BURST} moves emptied the bucket`, {
            expected: `a move (USERS for the other room): a token is back ${showMs(REFILL_MS)} after it was taken (accepted: ${describeWindow(window)})`,
            actual: late.answers.map(describe).join(', '), hint,
          });
        }
        if (late.moved > 0) tooFast(moves, late.lastMoveAt);
      }),
  };
}
