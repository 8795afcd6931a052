// Stage 08's hostile callers (08-calls/README.md, "Tests the stage needs"): calls to yourself, to
// unknown and to garbage names; floods of INVITE and LOOKUP (a new flooder each time one is thrown
// out) and of ACCEPT, DECLINE and HANGUP with every call id, while calls and conversations go on;
// parties that vanish mid-call. Only the wire protocol is used (the helpers of the stage 08 checks),
// so they grade a server in any language.
import { CheckFailure } from '../harness/check-failure.ts';
import { expect, type Check } from '../harness/checks.ts';
import { frameBytes, jsonFrameBytes } from '../harness/frame-wire.ts';
import { barrier } from '../checks/07-chat-files.ts';
import { ACCEPT, CALL_END, CALL_START, DECLINE, HANGUP, INVITE, LOOKUP, REFUSED, invite, ring, startCall, hangUp, withCallers } from '../checks/08-calls.ts';
import type { Member } from '../checks/06-udp.ts';
import { jsonOf } from '../harness/party.ts';
import { sleep } from './check-helpers.ts';
import { expectServerServes } from './expectations.ts';
import { expectConversationsKept } from './kept-share.ts';
import { SteadyPair } from './steady-pair.ts';
import { BYE, ERROR, type StageWire } from './wire-spec.ts';

const DEADLINE_MS = 1_500;
const FLOOD_MS = 3_000;

/** Refusals of INVITEs that must ring nobody and keep the connection. */
function strangeCallees(wire: StageWire): Check {
  return {
    name: `hostile ${wire.id}: INVITEs to yourself, to an unknown name and to garbage names (ESC, 40 characters, empty) are REFUSED with the connection open and ring nobody; "to": 42 and "relay_only": "yes" are ERROR bad_field`,
    run: (context) =>
      withCallers(context, async (members) => {
        const mal = await members.join('Mal', 'strange');
        const ada = await members.join('Ada', 'strange');
        const since = ada.user.mark();
        const cases: [string, string][] = [['Mal', 'calling_yourself'], ['Nobody', 'no_such_user'], ['\x1b[2J\x1b[31mAda', 'no_such_user'], ['x'.repeat(40), 'no_such_user'], ['', 'no_such_user']];
        for (const [to, code] of cases) {
          const answer = await invite(mal, to);
          expect(answer.type === REFUSED && jsonOf(answer).code === code, `INVITE to ${JSON.stringify(to)} was not refused ${code}`, {
            expected: `REFUSED {"request": "invite", "code": "${code}", "message"}, the connection open`,
            actual: `${wire.typeNames[answer.type] ?? answer.type} ${answer.payload.toString('utf8').slice(0, 200)}`,
            sent: jsonFrameBytes(INVITE, { to }),
            hint: 'calling yourself is calling_yourself; a name nobody online has (whatever its characters) is no_such_user: REFUSED, not an error',
          });
        }
        await barrier(mal.user); // still connected
        await barrier(ada.user);
        expect(ada.user.framesOfType(INVITE, since).length === 0, 'a refused INVITE rang someone', { expected: 'no INVITE at Ada', actual: ada.user.describeFrames(since), hint: 'an INVITE is refused before anyone is rung' });
        for (const [i, fields] of [{ to: 42 }, { to: 'Ada', relay_only: 'yes' }].entries()) {
          const rogue = await members.join(`Rogue${i}`, 'strange');
          rogue.user.send(jsonFrameBytes(INVITE, fields));
          const error = await rogue.user.waitForFrame('ERROR bad_field', (f) => f.type === ERROR || f.type === REFUSED, { timeoutMs: DEADLINE_MS, hint: 'INVITE fields: "to" a string, "relay_only" absent or a boolean; anything else is ERROR bad_field' });
          expect(error.type === ERROR && jsonOf(error).code === 'bad_field', `INVITE ${JSON.stringify(fields)} did not get ERROR bad_field`, {
            expected: 'ERROR {"code": "bad_field", "message"}, then a close',
            actual: `${wire.typeNames[error.type]} ${error.payload.toString('utf8').slice(0, 200)}`,
            sent: jsonFrameBytes(INVITE, fields),
            hint: 'INVITE fields: "to" a string, "relay_only" absent or a boolean; anything else is ERROR bad_field',
          });
          await rogue.user.waitForClose(3_000, 'the server to close after ERROR bad_field');
        }
      }),
  };
}

/** Every call id, as ACCEPT, DECLINE and HANGUP: none of them this connection's. */
function everyCallId(): Buffer {
  const frames: Buffer[] = [];
  for (let call = 1; call <= 0xffff; call++) for (const type of [ACCEPT, DECLINE, HANGUP]) frames.push(jsonFrameBytes(type, { call }));
  return Buffer.concat(frames);
}

/** A new flooder each time one is thrown out, until `until`: INVITEs (to a user who declines) or LOOKUPs. */
async function reconnectingFlood(members: { join(name: string, room: string): Promise<Member> }, kind: 'invite' | 'lookup', target: string, until: number): Promise<{ flooders: number; problems: string[] }> {
  const problems: string[] = [];
  let flooders = 0;
  while (performance.now() < until) {
    const flooder = await members.join(`${kind}-flooder-${flooders++}`, 'hf-away');
    const since = flooder.user.mark();
    const batch = Buffer.concat(Array.from({ length: 40 }, () => (kind === 'invite' ? jsonFrameBytes(INVITE, { to: target }) : jsonFrameBytes(LOOKUP, { name: target }))));
    flooder.user.send(batch);
    try {
      const error = await flooder.user.waitForFrame('ERROR rate_limited', (f) => f.type === ERROR, { since, timeoutMs: DEADLINE_MS * 2 });
      if (jsonOf(error).code !== 'rate_limited') problems.push(`${flooder.user.name}: ERROR ${error.payload.toString('utf8').slice(0, 100)}`);
      await flooder.user.waitForClose(3_000, 'the close after ERROR');
    } catch (error) {
      problems.push(`${flooder.user.name}: ${error instanceof CheckFailure ? error.summary : String(error)}`);
    }
    flooder.user.destroy();
  }
  return { flooders, problems };
}

function callFloods(wire: StageWire): Check {
  return {
    name: `hostile ${wire.id}: ${FLOOD_MS / 1000} s of INVITE and LOOKUP floods (a new flooder each time one is thrown out) and ACCEPT, DECLINE and HANGUP of every call id keep 90% of the conversations' frames, ring the callee at most 5 times per flooder, and start or end nobody's call`,
    run: async (context) => {
      const pairs = [await SteadyPair.start(context, wire, 'hf-home', 'hf-home'), await SteadyPair.start(context, wire, 'hf-other', 'hf-other')];
      try {
        await withCallers(context, async (members) => {
          const ada = await members.join('Ada', 'hf-home');
          const bob = await members.join('Bob', 'hf-other');
          const eve = await members.join('Eve', 'hf-home'); // declines every INVITE the floods ring her with
          const mal = await members.join('Mal', 'hf-away');
          const call = await startCall(ada, bob);
          const marks = [ada.user.mark(), bob.user.mark()] as const;
          let rings = 0;
          let index = eve.user.mark();
          const decliner = setInterval(() => {
            for (; index < eve.user.frames.length; index++) {
              const frame = eve.user.frames[index]!;
              if (frame.type !== INVITE) continue;
              rings++;
              eve.user.send(jsonFrameBytes(DECLINE, { call: jsonOf(frame).call }));
            }
          }, 5);
          const ids = everyCallId();
          await sleep(300); // the conversations settle
          const floodStart = performance.now();
          const until = floodStart + FLOOD_MS;
          let results: { flooders: number; problems: string[] }[] = [];
          try {
            // No memory bound here: the reference's RSS grows 24-37 MB on a fresh server while it
            // welcomes dozens of flooders and parses 200 000 call messages (garbage not yet
            // collected), so a bound loose enough for it would not catch a server that keeps a
            // record per ignored message. The VOICE and JOIN floods and the churn guard memory.
            mal.user.send(ids);
            results = await Promise.all([reconnectingFlood(members, 'invite', 'Eve', until), reconnectingFlood(members, 'lookup', 'Eve', until), barrier(mal.user).then(() => ({ flooders: 0, problems: [] }))]);
            await sleep(Math.max(0, until - performance.now()));
          } finally {
            clearInterval(decliner);
          }
          const floodEnd = performance.now();
          const problems = results.flatMap((r) => r.problems);
          expect(problems.length === 0, 'a flooder did not get ERROR rate_limited and a close', {
            expected: 'every connection flooding INVITEs or LOOKUPs: REFUSED rate_limited, the 20th in a row ERROR rate_limited, then a close',
            actual: problems.slice(0, 5).join('; '),
            hint: 'a bucket per user and per kind (INVITE 5, then 1 per 10 s; LOOKUP 10, then 1 per second); the 20th refusal in a row is ERROR rate_limited',
          });
          const invitations = results[0]!.flooders;
          expect(rings <= invitations * 5, `Eve was rung ${rings} times by ${invitations} flooding connections`, {
            expected: `at most 5 rings per flooding connection (${invitations * 5})`,
            actual: `${rings} INVITEs at Eve`,
            hint: 'an INVITE takes a token from a bucket of 5 before anyone is rung',
          });
          await barrier(ada.user);
          await barrier(bob.user);
          const meddled = [...ada.user.frames.slice(marks[0]), ...bob.user.frames.slice(marks[1])].filter((f) => f.type === CALL_END || f.type === CALL_START);
          expect(meddled.length === 0, 'a stranger\'s ACCEPT, DECLINE or HANGUP touched a call that is not theirs', {
            expected: `Ada and Bob's call ${call.call} goes on: no CALL_END, no CALL_START while Mal sends ACCEPT, DECLINE and HANGUP of every call id`,
            actual: `Ada: ${ada.user.describeFrames(marks[0])}; Bob: ${bob.user.describeFrames(marks[1])}`,
            sent: ids.subarray(0, 64),
            hint: 'ACCEPT, DECLINE and HANGUP act only on a call of the sender, in the state they fit; anything else is ignored',
          });
          expectConversationsKept(pairs, floodStart, floodEnd, 'floods of INVITE, LOOKUP and call ids', 'limit INVITE and LOOKUP per user, ignore call messages that are not the sender\'s, and stop reading a connection after its ERROR');
          await hangUp(call.call, bob, ada);
        });
      } finally {
        for (const pair of pairs) pair.leave();
      }
      await expectServerServes(context, wire, 'after-call-floods', 'hf-home', [], 'floods of call messages');
    },
  };
}

function vanishingParties(wire: StageWire): Check {
  return {
    name: `hostile ${wire.id}: a party that vanishes mid-call (a reset, a FIN without BYE, a BYE) or while it rings gives the other CALL_END peer_left at once, who can be called again`,
    run: (context) =>
      withCallers(context, async (members) => {
        const ada = await members.join('Ada', 'vanish');
        const cat = await members.join('Cat', 'vanish');
        const ways: [string, (member: Member) => void][] = [
          ['a reset', (m) => m.user.reset()],
          ['a FIN without BYE', (m) => m.user.end()],
          ['a BYE', (m) => m.user.send(frameBytes(BYE))],
          ['a reset while ringing', (m) => m.user.reset()],
        ];
        for (const [i, [how, vanish]] of ways.entries()) {
          const ghost = await members.join(`Ghost${i}`, 'vanish');
          const ringing = i === 3;
          const call = ringing ? (await ring(ghost, ada)).call : (await startCall(ghost, ada)).call;
          const since = ada.user.mark();
          vanish(ghost);
          const end = await ada.user.waitForFrame(`CALL_END peer_left after ${how}`, (f) => f.type === CALL_END && jsonOf(f).call === call, { since, timeoutMs: DEADLINE_MS, hint: 'a party that leaves the server in any state ends its call: CALL_END {"reason": "peer_left", "by": the one who left} to the other, as soon as the connection is gone' });
          const by = jsonOf(end).by as { id?: number } | undefined;
          expect(jsonOf(end).reason === 'peer_left' && by?.id === ghost.id, `${how} ended the call with the wrong reason`, {
            expected: `CALL_END {"call": ${call}, "reason": "peer_left", "by": {"id": ${ghost.id}, "name": "${ghost.user.name}"}}`,
            actual: `CALL_END ${end.payload.toString('utf8')}`,
            hint: 'peer_left names the party who left',
          });
          const again = await ring(cat, ada); // Ada is idle again
          await hangUp(again.call, cat, ada, 'cancelled'); // Cat's 4 INVITEs fit the bucket of 5
        }
      }),
  };
}

/** The hostile checks of a stage with calls (08 on). */
export function callChecks(wire: StageWire): Check[] {
  return [strangeCallees(wire), callFloods(wire), vanishingParties(wire)];
}
