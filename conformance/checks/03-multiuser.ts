// Stage 03's server checks: mixing, the user list and who is speaking, asserted over raw sockets.
// They use only the protocol in 03-multiuser/README.md (nothing from 03-multiuser/ is imported),
// so they grade a server in any language.
//
// How the mixing is checked: see conformance/harness/exact-mixes.ts (tones paced at real time, every
// mixed frame compared sample for sample with the clipped sum of some of the OTHER talkers).
import { FRAME_BYTES, FRAME_MS } from '#shared/audio/format.ts';
import { expect, type Check } from '../harness/checks.ts';
import { explainWrongMix, expectMixes, minimumMixes, sleep, squareFrame, TAIL_MS, talk, toneFrame, type Talker } from '../harness/exact-mixes.ts';
import { frameBytes, hexType, jsonFrameBytes } from '../harness/frame-wire.ts';
import type { FramedUser, ReceivedFrame } from '../harness/framed-user.ts';
import { standingBacklogCheck } from '../harness/backlog-check.ts';
import { jitterBufferCheck } from '../harness/jitter-buffer-check.ts';
import { tickRateCheck } from '../harness/tick-rate-check.ts';
import { expectTimed } from '../harness/tolerance.ts';
import { Unmeasured } from '../harness/unmeasured.ts';
import { withStallWatch } from '../harness/stall-watch.ts';
import { expectError, expectNever, isEvent, jsonOf, withParty } from '../harness/party.ts';
import { WireClient } from '../harness/wire-client.ts';
import { protocolIdServerCheck } from '../harness/protocol-id-checks.ts';

// The message types of the README's table.
const HELLO = 0x01;
const WELCOME = 0x02;
const AUDIO = 0x03;
const BYE = 0x04;
const ERROR = 0x05;
const USERS = 0x06;
const JOINED = 0x07;
const LEFT = 0x08;
const SPEAKING = 0x09;
const TYPE_NAMES: Record<number, string> = {
  [HELLO]: 'HELLO', [WELCOME]: 'WELCOME', [AUDIO]: 'AUDIO', [BYE]: 'BYE', [ERROR]: 'ERROR',
  [USERS]: 'USERS', [JOINED]: 'JOINED', [LEFT]: 'LEFT', [SPEAKING]: 'SPEAKING',
};

/** "At once" for news of a join or a leave, with room for a busy machine. */
const ANNOUNCE_DEADLINE_MS = 1_000;
/** The README's speaking hold: a user stops speaking this long after their last mixed frame. */
const SPEAKING_HOLD_MS = 200;
/** Speaking hold (200 ms) + jitter buffer (60 ms) + a tick, with room for a busy machine. */
const SPEAKING_END_DEADLINE_MS = 1_500;

function typeName(type: number): string {
  return `${TYPE_NAMES[type] ?? 'unknown type'} (${hexType(type)})`;
}

const audio = (pcm: Buffer) => frameBytes(AUDIO, pcm);
const bye = () => frameBytes(BYE);

// ----- joining, control messages and cleanup -----

/** The frame after WELCOME must be USERS; returns its list (or [] if it is not USERS). */
async function firstUsers(user: FramedUser): Promise<string[]> {
  const first = await user.waitForFrame('USERS right after WELCOME', () => true, { hint: 'after WELCOME, send USERS with every connected name' });
  const users = jsonOf(first).users;
  return first.type === USERS && Array.isArray(users) ? users : [];
}

/** The frame after WELCOME must be USERS, listing exactly `expected` (join order). */
async function expectUsers(user: FramedUser, expected: string[]): Promise<void> {
  await firstUsers(user);
  const first = user.frames[0];
  const users = first ? jsonOf(first).users : undefined;
  expect(first?.type === USERS && JSON.stringify(users) === JSON.stringify(expected), `USERS sent to ${user.name} is wrong`, {
    expected: `right after WELCOME, USERS (0x06) {"users": ${JSON.stringify(expected)}}: everyone here, ${user.name} included, in join order`,
    actual: first ? `${typeName(first.type)} ${first.payload.toString('utf8').slice(0, 200)}` : 'nothing after WELCOME',
    received: user.wire.received.subarray(0, 300),
    hint: 'after WELCOME, send USERS with every connected name (the newcomer last)',
  });
}

function speakersOf(frame: ReceivedFrame): unknown {
  return jsonOf(frame).speakers;
}

// Distinct names per check: a slow server still removing one check's users cannot make the
// next check's joins fail with name_taken.
const TONE_AMPLITUDE = 8_000; // three of them add up to 24 000: no clipping

export const serverChecks: Check[] = [
  {
    name: 'users: USERS lists everyone in join order, the others get JOINED',
    run: (context) =>
      withParty(context, TYPE_NAMES, async (party) => {
        const ada = await party.join('Ada');
        const bob = await party.join('Bob');
        const carol = await party.join('Zoë 🎧');
        // Others may still be here from earlier checks: only their order relative to ours is checked.
        const before = (await firstUsers(ada)).slice(0, -1);
        await expectUsers(ada, [...before, 'Ada']);
        await expectUsers(bob, [...before, 'Ada', 'Bob']);
        await expectUsers(carol, [...before, 'Ada', 'Bob', 'Zoë 🎧']);
        const hint = 'when someone joins, send JOINED {"name"} to everyone already here (not to the newcomer)';
        await ada.waitForFrame('JOINED {"name":"Bob"}', isEvent(JOINED, 'Bob'), { timeoutMs: ANNOUNCE_DEADLINE_MS, hint });
        await ada.waitForFrame('JOINED {"name":"Zoë 🎧"}', isEvent(JOINED, 'Zoë 🎧'), { timeoutMs: ANNOUNCE_DEADLINE_MS, hint });
        await bob.waitForFrame('JOINED {"name":"Zoë 🎧"}', isEvent(JOINED, 'Zoë 🎧'), { timeoutMs: ANNOUNCE_DEADLINE_MS, hint });
        for (const user of [ada, bob, carol]) {
          expectNever(user, isEvent(JOINED, user.name), `${user.name} was told that they joined`, 'no JOINED naming yourself: USERS already lists you', hint);
        }
      }),
  },
  {
    name: 'users: BYE gets LEFT "bye" to the others; the name is free again',
    run: (context) =>
      withParty(context, TYPE_NAMES, async (party) => {
        const ada = await party.join('Ada B');
        const bob = await party.join('Bob B');
        const since = ada.mark();
        bob.send(bye());
        await ada.waitForFrame('LEFT {"name":"Bob B","reason":"bye"}', isEvent(LEFT, 'Bob B', 'bye'), {
          since, timeoutMs: ANNOUNCE_DEADLINE_MS, hint: 'on BYE, send LEFT {"name", "reason":"bye"} to everyone else at once',
        });
        await bob.waitForClose(2_000, 'the server to close the connection after BYE', 'after BYE, close the connection');
        const again = await party.join('Bob B');
        await expectUsers(again, [...(await firstUsers(again)).slice(0, -2), 'Ada B', 'Bob B']);
      }),
  },
  {
    name: 'users: an abrupt reset gets LEFT "lost" to the others within 1 s',
    run: (context) =>
      withParty(context, TYPE_NAMES, async (party) => {
        const ada = await party.join('Ada R');
        const bob = await party.join('Bob R');
        const since = ada.mark();
        bob.send(audio(toneFrame(400, TONE_AMPLITUDE)));
        bob.reset();
        await ada.waitForFrame('LEFT {"name":"Bob R","reason":"lost"}', isEvent(LEFT, 'Bob R', 'lost'), {
          since, timeoutMs: ANNOUNCE_DEADLINE_MS,
          hint: 'a connection that breaks without BYE (reset, or FIN) is announced at once with LEFT {"reason":"lost"}, not at the next tick or a timeout',
        });
      }),
  },
  {
    name: 'users: closing without BYE (FIN) gets LEFT "lost" to the others',
    run: (context) =>
      withParty(context, TYPE_NAMES, async (party) => {
        const ada = await party.join('Ada F');
        const bob = await party.join('Bob F');
        const since = ada.mark();
        bob.end();
        await ada.waitForFrame('LEFT {"name":"Bob F","reason":"lost"}', isEvent(LEFT, 'Bob F', 'lost'), {
          since, timeoutMs: ANNOUNCE_DEADLINE_MS, hint: 'when a connection ends (FIN) without BYE, send LEFT {"reason":"lost"} to everyone else',
        });
      }),
  },
  {
    name: 'users: a duplicate name gets ERROR name_taken; the first user is untouched',
    run: (context) =>
      withParty(context, TYPE_NAMES, async (party) => {
        const ada = await party.join('Ada N');
        const bob = await party.join('Bob N');
        const impostor = await WireClient.connect(context.server.host, context.server.port);
        impostor.send(jsonFrameBytes(HELLO, { name: 'Ada N' }));
        await expectError(impostor, 'name_taken', 'names are unique: a HELLO with a name already here gets ERROR name_taken and is closed', TYPE_NAMES);
        // The real Ada still hears Bob, and was never told about the impostor.
        const since = ada.mark();
        const bobVoice = toneFrame(600, TONE_AMPLITUDE);
        await talk([{ user: bob, pcm: bobVoice }], 10);
        await ada.waitForFrame('an AUDIO frame with Bob\'s voice', (frame) => frame.type === AUDIO && frame.payload.equals(bobVoice), {
          since, hint: 'refusing a duplicate name must not disturb the user who has it',
        });
        expectNever(ada, (frame) => (frame.type === JOINED || frame.type === LEFT) && jsonOf(frame).name === 'Ada N', 'the refused duplicate was announced', 'no JOINED or LEFT about a connection that never joined', 'check the name before adding the user or telling anyone');
      }),
  },
  {
    name: 'mixing: a lone talker hears nothing; a listener hears them unchanged',
    run: (context) =>
      withParty(context, TYPE_NAMES, async (party) => {
        const ada = await party.join('Ada L');
        const bob = await party.join('Bob L');
        const adaVoice = toneFrame(400, TONE_AMPLITUDE);
        const since = [ada.mark(), bob.mark()] as const;
        const timing = await talk([{ user: ada, pcm: adaVoice }], 25);
        await sleep(TAIL_MS);
        const adaGot = ada.framesOfType(AUDIO, since[0]);
        expect(adaGot.length === 0, 'a lone talker was sent audio', {
          expected: 'no AUDIO to Ada while nobody else talks: a listener never hears their own voice, and silence is not sent',
          actual: `${adaGot.length} AUDIO frames; the first: ${adaGot[0] ? explainWrongMix(adaGot[0].payload, 'Ada L', [{ user: ada, pcm: adaVoice }]) : ''}`,
          received: adaGot[0]?.payload,
          hint: 'mix for each listener the sum of everyone ELSE; when nobody else contributed this tick, send that listener nothing',
        });
        expectMixes(bob, since[1], [{ user: ada, pcm: adaVoice }], [{ user: ada, pcm: adaVoice }], {
          minFrames: minimumMixes(timing), minFullShare: 0.9, hint: 'a listener gets the talker\'s frame unchanged when only one person talks',
        });
      }),
  },
  {
    name: 'mixing: each of three talkers hears exactly the other two summed; a listener hears all three',
    run: (context) =>
      withParty(context, TYPE_NAMES, async (party) => {
        const talkers: Talker[] = [
          { user: await party.join('Ada M'), pcm: toneFrame(400, TONE_AMPLITUDE) },
          { user: await party.join('Bob M'), pcm: toneFrame(600, TONE_AMPLITUDE) },
          { user: await party.join('Carol M'), pcm: toneFrame(1000, TONE_AMPLITUDE) },
        ];
        const listener = await party.join('Dave M');
        const marks = [...talkers.map((t) => t.user.mark()), listener.mark()];
        const timing = await talk(talkers, 75); // 1.5 s
        await sleep(TAIL_MS);
        const hint = 'each tick: add the samples of every talker\'s frame (no averaging), then give each listener that sum minus their own frame, clipped to 16 bits';
        for (const [i, talker] of talkers.entries()) {
          const others = talkers.filter((other) => other !== talker);
          expectMixes(talker.user, marks[i]!, others, talkers, { minFrames: minimumMixes(timing), minFullShare: 0.5, hint });
        }
        expectMixes(listener, marks[3]!, talkers, talkers, { minFrames: minimumMixes(timing), minFullShare: 0.5, hint });
      }),
  },
  {
    name: 'mixing: two loud talkers clip to 32767 and -32768 instead of wrapping around',
    run: (context) =>
      withParty(context, TYPE_NAMES, async (party) => {
        const loud = squareFrame(30_000); // +30000 then -30000: the sum overflows both ways
        const talkers: Talker[] = [
          { user: await party.join('Loud 1'), pcm: loud },
          { user: await party.join('Loud 2'), pcm: loud },
        ];
        const listener = await party.join('Ears');
        const since = listener.mark();
        const timing = await talk(talkers, 40);
        await sleep(TAIL_MS);
        // Both talkers send the same frame, so "one of them" is 30000 and "both" must be 32767.
        expectMixes(listener, since, talkers, talkers, {
          minFrames: minimumMixes(timing), minFullShare: 0.5,
          hint: 'add in a wider integer (30000 + 30000 = 60000), then clip to 32767 / -32768; a 16-bit sum wraps around to -5536',
        });
        expect(listener.framesOfType(AUDIO, since).some((frame) => frame.payload.readInt16LE(0) === 32_767 && frame.payload.readInt16LE(FRAME_BYTES - 2) === -32_768), 'no clipped frame seen', {
          expected: 'frames whose samples are 32767 (first half) and -32768 (second half)', actual: 'none',
          hint: 'clip the sum to the 16-bit range',
        });
      }),
  },
  {
    name: 'speaking: SPEAKING names the talker (to a newcomer too), then becomes empty 200 ms after their last mixed frame',
    run: (context) =>
      withParty(context, TYPE_NAMES, async (party) => {
        const ada = await party.join('Ada S');
        const bob = await party.join('Bob S');
        const since = [ada.mark(), bob.mark()] as const;
        const talking = talk([{ user: ada, pcm: toneFrame(400, TONE_AMPLITUDE) }], 50);
        const hint = 'after each tick, when the set of users whose frames were mixed in the last 200 ms changes, send SPEAKING {"speakers": [...]} to everyone';
        for (const [i, user] of [ada, bob].entries()) {
          const frame = await user.waitForFrame('SPEAKING {"speakers":["Ada S"]}', (f) => f.type === SPEAKING, { since: since[i], timeoutMs: 2_000, hint });
          expect(JSON.stringify(speakersOf(frame)) === '["Ada S"]', `${user.name} was told the wrong speakers`, {
            expected: 'SPEAKING {"speakers":["Ada S"]}: only Ada talks', actual: frame.payload.toString('utf8'),
            hint: 'SPEAKING lists everyone speaking, in join order; a user who sends no audio is not speaking',
          });
        }
        // A newcomer is told who speaks right after USERS.
        const carol = await party.join('Carol S');
        const afterUsers = await carol.waitForFrame('SPEAKING right after USERS', (f) => f.type !== AUDIO && f.type !== USERS, { timeoutMs: 1_000, hint: 'on join: WELCOME, USERS, then SPEAKING if anyone is speaking' });
        expect(afterUsers.type === SPEAKING && JSON.stringify(speakersOf(afterUsers)) === '["Ada S"]', 'a newcomer was not told who is speaking', {
          expected: 'WELCOME, USERS, then SPEAKING {"speakers":["Ada S"]} while Ada talks',
          actual: carol.describeFrames(0),
          hint: 'on join: WELCOME, USERS, then SPEAKING if anyone is speaking',
        });
        // The hold is timed between two reads of this grader: if the grader itself stalls around
        // them (a busy machine), they arrive together or late, which says nothing of the server.
        await withStallWatch(async (watch) => {
          await talking;
          const stopped = performance.now();
          const ended: ReceivedFrame[] = [];
          for (const user of [ada, bob, carol]) {
            ended.push(await user.waitForFrame('SPEAKING {"speakers":[]} after Ada stopped', (f) => f.type === SPEAKING && JSON.stringify(speakersOf(f)) === '[]', {
              timeoutMs: Math.max(1, SPEAKING_END_DEADLINE_MS - (performance.now() - stopped)),
              hint: 'a user stops speaking 200 ms (10 ticks) after their last frame was mixed; then send SPEAKING with the smaller set',
            }));
          }
          // The hold, timed on one connection: Bob's last mix of Ada's voice, then Bob's SPEAKING [].
          const lastMix = bob.framesOfType(AUDIO, since[1]).at(-1);
          expect(lastMix !== undefined, 'Bob heard none of Ada\'s voice', { expected: 'AUDIO frames with Ada\'s voice while she talked', actual: bob.describeFrames(since[1]) });
          const hold = ended[1]!.at - lastMix.at;
          const holdHint = 'a user is speaking while one of their frames was mixed in the last 10 ticks (200 ms); count ticks, not wall-clock guesses';
          const unmeasured = new Unmeasured();
          expectTimed(hold, SPEAKING_HOLD_MS, { pipelineMs: FRAME_MS }, watch.worstLateMs, unmeasured, 'the speaking hold', 'SPEAKING [] (timed from Bob\'s last mix of Ada\'s voice)', holdHint);
          unmeasured.settle();
        });
      }),
  },
  {
    name: 'slow reader: a user who floods audio and never reads does not stall the mix for the others',
    run: (context) =>
      withParty(context, TYPE_NAMES, async (party) => {
        const ada = await party.join('Ada P');
        const bob = await party.join('Bob P');
        const carol = await party.join('Carol P');
        const hog = await party.join('Hog P');
        hog.pauseReading();
        const hogVoice = toneFrame(1000, TONE_AMPLITUDE);
        hog.send(Buffer.concat(Array.from({ length: 3000 }, () => audio(hogVoice)))); // 5.8 MB at once
        const talkers: Talker[] = [
          { user: ada, pcm: toneFrame(400, TONE_AMPLITUDE) },
          { user: bob, pcm: toneFrame(600, TONE_AMPLITUDE) },
          { user: hog, pcm: hogVoice },
        ];
        const marks = [ada.mark(), bob.mark(), carol.mark()];
        const timing = await talk(talkers, 100); // 2 s
        await sleep(TAIL_MS);
        const hint = 'never wait for a client that does not read: skip its audio when its send buffer is full, keep ticking for everyone else; mix at most ONE frame per talker per tick (a jitter buffer that drops the oldest)';
        // "Most are full" is not required here: the hog's queue empties and refills at its own pace.
        expectMixes(ada, marks[0]!, [talkers[1]!, talkers[2]!], talkers, { minFrames: minimumMixes(timing), minFullShare: 0, hint });
        expectMixes(bob, marks[1]!, [talkers[0]!, talkers[2]!], talkers, { minFrames: minimumMixes(timing), minFullShare: 0, hint });
        expectMixes(carol, marks[2]!, talkers, talkers, { minFrames: minimumMixes(timing), minFullShare: 0, hint });
        hog.destroy();
      }),
  },
  {
    name: 'errors: malformed connections get ERROR and are closed while the others keep talking',
    run: (context) =>
      withParty(context, TYPE_NAMES, async (party) => {
        const ada = await party.join('Ada E');
        const bob = await party.join('Bob E');
        const eve = await party.join('Eve E');
        const talkers: Talker[] = [
          { user: ada, pcm: toneFrame(400, TONE_AMPLITUDE) },
          { user: bob, pcm: toneFrame(600, TONE_AMPLITUDE) },
        ];
        const marks = [ada.mark(), bob.mark()];
        const talking = talk(talkers, 75);
        const rogue = async (bytes: Buffer, code: string, hint: string) => {
          const client = await WireClient.connect(context.server.host, context.server.port);
          client.send(bytes);
          await expectError(client, code, hint, TYPE_NAMES);
        };
        await Promise.all([
          rogue(frameBytes(0x7f, 'garbage'), 'unknown_type', 'a type byte that is not HELLO, AUDIO or BYE gets ERROR unknown_type'),
          rogue(jsonFrameBytes(USERS, { users: ['Mallory'] }), 'unknown_type', 'USERS (0x06) only goes from server to client: from a client it is unknown_type'),
          rogue(Buffer.from([HELLO, 0xff, 0xff, 0xff, 0xff]), 'frame_too_large', 'check the declared length against the type\'s limit (HELLO: 1024) as soon as the 5 header bytes are in'),
          rogue(audio(toneFrame(400, 1000)), 'not_joined', 'AUDIO is only accepted after a successful HELLO'),
        ]);
        // A joined user who breaks the protocol leaves with reason "error".
        const since = ada.mark();
        eve.send(frameBytes(0x7f, 'garbage'));
        await ada.waitForFrame('LEFT {"name":"Eve E","reason":"error"}', isEvent(LEFT, 'Eve E', 'error'), {
          since, timeoutMs: ANNOUNCE_DEADLINE_MS, hint: 'a user disconnected for a protocol error is announced with LEFT {"reason":"error"}',
        });
        const timing = await talking;
        await sleep(TAIL_MS);
        const hint = 'an error on one connection must close that connection only; the mix goes on for everyone else';
        expectMixes(ada, marks[0]!, [talkers[1]!], talkers, { minFrames: minimumMixes(timing), minFullShare: 0.5, hint });
        expectMixes(bob, marks[1]!, [talkers[0]!], talkers, { minFrames: minimumMixes(timing), minFullShare: 0.5, hint });
      }),
  },
  tickRateCheck(TYPE_NAMES),
  jitterBufferCheck(TYPE_NAMES),
  standingBacklogCheck(TYPE_NAMES),
  protocolIdServerCheck({ id: '03', hello: (name) => ({ name }), welcome: (name) => ({ name, sample_rate: 48_000, frame_samples: 960 }) }),
];
