// A --slow check shared by the stages whose WELCOME carries stage 05's session id (05 on): session
// ids are u16 1-65535, handed out in increasing order, skipping ids in use, wrapping from 65535 to
// 1. Seeing the wrap and the skip takes ~65 550 short connections (HELLO, WELCOME, BYE), ~10 s
// against the reference, so the default grade leaves it out. Each stage passes its own wire: its
// type names and its HELLO (the protocol it names); the rest (BYE, LIST_ROOMS and ROOMS to see
// that nobody else is connected) is the same in every stage from 05 on.
//
// The rule skips every id in use, and the check knows only its own users' ids, so it first waits
// for the server to list nobody else. Users listed with no connection of the grader's behind them
// are ghosts, which the README forbids (a user whose connection closes leaves at once, with BYE or
// without): a FAIL. The check makes sure to meet one if the server keeps them: its first user
// closes its connection without BYE. Only users the grader itself still holds connected (a check's
// leftover), or a wait that the grader's own stall may have cut short, make it "could not judge".
import { CheckFailure, CheckSkipped } from './check-failure.ts';
import { expect, type Check, type CheckContext } from './checks.ts';
import { frameBytes } from './frame-wire.ts';
import { FramedUser } from './framed-user.ts';
import { graderConnectionsTo } from './grader-connections.ts';
import { checkIdWrap } from './id-wrap-check.ts';
import { jsonOf, type Party, type TypeNames, withParty } from './party.ts';
import { withStallWatch } from './stall-watch.ts';

const BYE = 0x04;
const ERROR = 0x05;
const LIST_ROOMS = 0x0c;
const ROOMS = 0x0d;
/** "At once" for an answer to LIST_ROOMS, with room for a busy machine. */
const ANSWER_DEADLINE_MS = 1_000;
/** How long users who left may stay listed ("at once", with room for a busy machine). */
const GONE_DEADLINE_MS = 5_000;
/** Connections at once while session ids are burnt through to see them wrap (the reference takes ~8000 a second at 05). */
const WRAP_PARALLEL = 32;
const SESSION_ID_RULE = 'session ids are u16 1-65535, handed out in increasing order, skipping ids in use, wrapping from 65535 to 1: an id comes back only after ~65 000 others, and never while its user is connected';

/** What the check needs of a stage's wire (conformance/hostile/wire-spec.ts's StageWire has it). */
export interface SessionIdWrapWire {
  typeNames: Readonly<TypeNames>;
  /** HELLO's JSON object for `name` joining `room` (with the stage's protocol). */
  hello(name: string, room: string): Record<string, unknown>;
}

interface Member {
  user: FramedUser;
  id: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function sessionIdWrapCheck(wire: SessionIdWrapWire): Check {
  const typeNames = { ...wire.typeNames };
  /** Joins `room` and requires WELCOME to carry a session id. */
  const joinRoom = async (party: Party, name: string, room: string): Promise<Member> => {
    const user = await party.join(name, wire.hello(name, room));
    const id = user.welcome.id;
    expect(Number.isInteger(id) && (id as number) >= 1 && (id as number) <= 0xffff, `WELCOME to ${name} has no session id`, {
      expected: 'WELCOME {"name", "room", "id": 1..65535, ...}',
      actual: `WELCOME ${JSON.stringify(user.welcome)}`,
      hint: 'every user gets a numeric session id in WELCOME: VOICE names its speaker by it',
    });
    return { user, id: id as number };
  };
  return {
    name: `session ids wrap: after 65535 comes 1, and an id in use is skipped (a user kept connected while ~65 550 short connections, ${WRAP_PARALLEL} at once, each HELLO, WELCOME and BYE, until the ids come round to it); first, users whose connections closed (one without BYE) are gone from ROOMS`,
    timeLimitMs: 300_000,
    run: (context) =>
      withParty(context, typeNames, async (party) => {
        // A user who left first, so the kept id is not 1 even on a fresh server: the wrap must then
        // land on 1 (free) and the skip comes later, each judged on its own. It leaves by closing
        // its connection without BYE (the short connections below all say BYE), so a server that
        // keeps such users is seen keeping one before its ghosts' ids are taken for a wrong wrap.
        const first = await joinRoom(party, 'First', 'ids-first');
        first.user.destroy();
        const kept = await joinRoom(party, 'Kept', 'ids-kept');
        await expectAloneOnServer(context, kept);
        const keptEnded = () => {
          const error = kept.user.frames.find((f) => f.type === ERROR);
          if (error) return `ERROR ${error.payload.toString('utf8').slice(0, 200)}`;
          return kept.user.isClosed ? 'the server closed its connection' : undefined;
        };
        await checkIdWrap({
          what: 'session id',
          heldId: kept.id,
          idsPerConnection: 1,
          parallel: WRAP_PARALLEL,
          hint: SESSION_ID_RULE,
          heldEnded: keptEnded,
          // Each lane has a room of its own (nobody is told of the others' comings and goings); every
          // connection a name of its own, so none can be taken by a connection still closing.
          takeIds: async (index, lane) => {
            const name = `Session${index}`;
            const user = await FramedUser.join(context.server.host, context.server.port, { ...wire.hello(name, `ids-wrap-${lane}`), name }, { typeNames, hint: 'answer a valid HELLO with WELCOME {"name", "room", "id", ...}; a user who left with BYE or a closed connection is gone at once' });
            try {
              user.send(frameBytes(BYE));
              return [user.welcome.id as number];
            } finally {
              user.destroy();
            }
          },
        });
        const ended = keptEnded();
        expect(ended === undefined, `the user kept connected by the check (id ${kept.id}) was disconnected`, {
          expected: `user ${kept.id} still connected: it sent nothing wrong`,
          actual: ended ?? '',
          hint: 'a joined user who sends nothing stays connected (only the handshake is timed)',
        });
      }),
  };
}

/**
 * Waits until `kept` is the only user on the server (ROOMS lists only its room, with 1 user): the
 * ids of other users would be skipped too, and the check knows only its own. Others still listed
 * after GONE_DEADLINE_MS: a FAIL when the grader holds no connection to the server but Kept's (they
 * are users whose connections closed: First, or an earlier check's); a SKIP when it still holds
 * some (their users may rightly be listed), or when its own timers stalled during the wait.
 */
async function expectAloneOnServer(context: CheckContext, kept: Member): Promise<void> {
  const alone = JSON.stringify([{ room: kept.user.welcome.room, users: 1 }]);
  let rooms = '';
  const watch = await withStallWatch(async (watch) => {
    for (const deadline = performance.now() + GONE_DEADLINE_MS; performance.now() < deadline; await sleep(100)) {
      const since = kept.user.mark();
      kept.user.send(frameBytes(LIST_ROOMS));
      const answer = await kept.user.waitForFrame('ROOMS in answer to LIST_ROOMS', (f) => f.type === ROOMS, { since, timeoutMs: ANSWER_DEADLINE_MS, hint: 'answer LIST_ROOMS with ROOMS, as in stage 04' });
      rooms = JSON.stringify(jsonOf(answer).rooms);
      if (rooms === alone) return undefined;
    }
    return watch;
  });
  if (watch === undefined) return;
  const held = graderConnectionsTo(context.server.port) - 1; // less Kept's own
  if (held > 0) throw new CheckSkipped(`could not judge the session id rule: other users stayed listed ${GONE_DEADLINE_MS / 1_000} s after the check began (ROOMS: ${rooms.slice(0, 300)}) while the grader itself still held ${held} other connection${held === 1 ? '' : 's'} to the server (an earlier check's), whose users' ids the check cannot know`);
  watch.judge(() => {
    throw new CheckFailure(`users whose connections closed are still listed ${GONE_DEADLINE_MS / 1_000} s later: the server keeps users who left without BYE`, {
      expected: `ROOMS ${alone}: the grader holds no connection to the server but Kept's (First, of room "ids-first", closed its connection without BYE; the users of earlier checks left)`,
      actual: `ROOMS ${rooms.slice(0, 500)}`,
      hint: 'a user whose connection closes, with BYE or without (FIN, reset), leaves at once: the room is told LEFT "lost", ROOMS stops counting them, and their session id is free again (a kept one would be skipped at every wrap)',
    });
  }, ANSWER_DEADLINE_MS);
}
