// Stage 04's server checks: rooms. Each user is in one room, hears and sees only its members,
// moves without reconnecting; empty rooms disappear. Asserted over raw sockets with only the
// protocol in 04-rooms/README.md (nothing from 04-rooms/ is imported), so they grade a server in
// any language. Mixing itself is stage 03's; here the exact-mix comparison (see
// conformance/harness/exact-mixes.ts) proves that no voice crosses from one room to another.
//
// "Nothing reached room B" needs an end to the waiting: a user of room B asks LIST_ROOMS and
// waits for ROOMS. The server writes to one connection in order, so whatever it sent that user
// before answering (a leaked JOINED, LEFT or SPEAKING) has arrived by then.
import { CheckFailure } from '../harness/check-failure.ts';
import { expect, type Check } from '../harness/checks.ts';
import { expectMixes, minimumMixes, sleep, TAIL_MS, talk, toneFrame, type Talker } from '../harness/exact-mixes.ts';
import { frameBytes, hexType, jsonFrameBytes } from '../harness/frame-wire.ts';
import type { FramedUser, ReceivedFrame } from '../harness/framed-user.ts';
import { standingBacklogCheck } from '../harness/backlog-check.ts';
import { jitterBufferCheck } from '../harness/jitter-buffer-check.ts';
import { tickRateCheck } from '../harness/tick-rate-check.ts';
import { joinFloodRule } from '../hostile/join-flood-check.ts';
import { moveRefillCheck } from '../harness/move-refill-check.ts';
import { WIRES } from '../hostile/wire-spec.ts';
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
const JOIN = 0x0a;
const JOIN_REFUSED = 0x0b;
const LIST_ROOMS = 0x0c;
const ROOMS = 0x0d;
const TYPE_NAMES: Record<number, string> = {
  [HELLO]: 'HELLO', [WELCOME]: 'WELCOME', [AUDIO]: 'AUDIO', [BYE]: 'BYE', [ERROR]: 'ERROR',
  [USERS]: 'USERS', [JOINED]: 'JOINED', [LEFT]: 'LEFT', [SPEAKING]: 'SPEAKING',
  [JOIN]: 'JOIN', [JOIN_REFUSED]: 'JOIN_REFUSED', [LIST_ROOMS]: 'LIST_ROOMS', [ROOMS]: 'ROOMS',
};

/** "At once" for news of a join, a leave or a move, with room for a busy machine. */
const ANNOUNCE_DEADLINE_MS = 1_000;
/** Speaking hold (200 ms) + jitter buffer (60 ms) + a tick, with room for a busy machine. */
const SPEAKING_END_DEADLINE_MS = 1_500;
/** JOINs of your own room sent at once: more than the move bucket's 10. */
const OWN_ROOM_JOINS = 12;
const TONE_AMPLITUDE = 8_000; // three of them add up to 24 000: no clipping

function typeName(type: number): string {
  return `${TYPE_NAMES[type] ?? 'unknown type'} (${hexType(type)})`;
}

const bye = () => frameBytes(BYE);
const join = (room: string) => jsonFrameBytes(JOIN, { room });
const hello = (name: string, room: string) => jsonFrameBytes(HELLO, { name, room });

/** "USERS {...}" */
function describe(frame: ReceivedFrame): string {
  return `${typeName(frame.type)} ${frame.payload.toString('utf8').slice(0, 200)}`;
}

function inRoom(room: string) {
  return { room };
}

// ----- rooms, users and moves, as the wire shows them -----

interface RoomCount {
  room: string;
  users: number;
}

/** Sends LIST_ROOMS and returns the ROOMS answer (checking its shape). Also a barrier: see the top. */
async function listRooms(user: FramedUser): Promise<{ rooms: RoomCount[]; frame: ReceivedFrame }> {
  const since = user.mark();
  user.send(frameBytes(LIST_ROOMS));
  const hint = 'answer LIST_ROOMS (0x0C, empty) with ROOMS (0x0D) {"rooms": [{"room": id, "users": count}, ...]}, sorted by id';
  const frame = await user.waitForFrame('ROOMS in answer to LIST_ROOMS', (f) => f.type === ROOMS, { since, timeoutMs: ANNOUNCE_DEADLINE_MS, hint });
  const rooms = jsonOf(frame).rooms;
  const wellFormed = Array.isArray(rooms) && rooms.every((entry) => typeof entry?.room === 'string' && Number.isInteger(entry?.users));
  expect(wellFormed, `ROOMS sent to ${user.name} is malformed`, { expected: '{"rooms": [{"room": string, "users": integer}, ...]}', actual: describe(frame), hint });
  return { rooms: rooms as RoomCount[], frame };
}

/** The member count ROOMS gives for `room`, or undefined when the room is not listed. */
function countOf(rooms: RoomCount[], room: string): number | undefined {
  return rooms.find((entry) => entry.room === room)?.users;
}

/** Requires ROOMS to list `room` with `users` members (undefined: not listed at all). */
async function expectRoomCount(asker: FramedUser, room: string, users: number | undefined, why: string, hint: string): Promise<void> {
  const { rooms, frame } = await listRooms(asker);
  expect(countOf(rooms, room) === users, why, {
    expected: users === undefined ? `ROOMS without "${room}"` : `ROOMS with {"room": "${room}", "users": ${users}}`,
    actual: describe(frame),
    hint,
  });
}

/** Waits for USERS (since `since`) and requires it to name `room` and list exactly `users`, in join order. */
async function expectUsers(user: FramedUser, room: string, users: string[], since: number, hint: string): Promise<void> {
  const frame = await user.waitForFrame(`USERS for room "${room}"`, (f) => f.type === USERS, { since, timeoutMs: ANNOUNCE_DEADLINE_MS, hint });
  const object = jsonOf(frame);
  expect(object.room === room && JSON.stringify(object.users) === JSON.stringify(users), `USERS sent to ${user.name} is wrong`, {
    expected: `USERS (0x06) ${JSON.stringify({ room, users })}: the members of ${user.name}'s room, ${user.name} included, in join order`,
    actual: describe(frame),
    hint,
  });
}

/** Waits for JOIN_REFUSED (since `since`) for `room` with `code`, and requires the connection to stay open. */
async function expectJoinRefused(user: FramedUser, room: string, code: string, since: number, hint: string): Promise<void> {
  const frame = await user.waitForFrame(`JOIN_REFUSED "${code}"`, (f) => f.type === JOIN_REFUSED || f.type === ERROR, { since, timeoutMs: ANNOUNCE_DEADLINE_MS, hint });
  const object = jsonOf(frame);
  expect(frame.type === JOIN_REFUSED && object.code === code && object.room === room && typeof object.message === 'string', `a refused JOIN got the wrong answer`, {
    expected: `JOIN_REFUSED (0x0B) {"room": ${JSON.stringify(room)}, "code": "${code}", "message": "<reason>"}`,
    actual: describe(frame),
    hint,
  });
  expect(!user.isClosed, `${user.name}'s connection was closed after a refused JOIN`, {
    expected: 'the connection stays open: a refused move is not a protocol error', actual: 'closed', hint,
  });
}

export const serverChecks: Check[] = [
  {
    name: 'rooms: WELCOME and USERS name your room; USERS and JOINED cover its members only',
    run: (context) =>
      withParty(context, TYPE_NAMES, async (party) => {
        const ada = await party.join('Ada', inRoom('welcome-red'));
        const bob = await party.join('Bob', inRoom('welcome-blue'));
        const carol = await party.join('Carol', inRoom('welcome-red'));
        const welcome = carol.welcome;
        expect(welcome.room === 'welcome-red', 'WELCOME does not name the room', {
          expected: 'WELCOME {"name": "Carol", "room": "welcome-red", "sample_rate": 48000, "frame_samples": 960}',
          actual: `WELCOME ${JSON.stringify(welcome)}`,
          hint: 'WELCOME repeats the name and the room the HELLO asked for',
        });
        const hint = 'right after WELCOME, send USERS {"room", "users"}: the members of that room only, the newcomer last';
        await expectUsers(ada, 'welcome-red', ['Ada'], 0, hint);
        await expectUsers(bob, 'welcome-blue', ['Bob'], 0, hint);
        await expectUsers(carol, 'welcome-red', ['Ada', 'Carol'], 0, hint);
        for (const user of [ada, bob, carol]) {
          expect(user.frames[0]?.type === USERS, `the first message after WELCOME to ${user.name} is not USERS`, {
            expected: 'WELCOME, then USERS', actual: user.describeFrames(0), hint,
          });
        }
        await ada.waitForFrame('JOINED {"name":"Carol"}', isEvent(JOINED, 'Carol'), {
          timeoutMs: ANNOUNCE_DEADLINE_MS, hint: 'when someone joins a room, send JOINED {"name"} to the members already in that room',
        });
        await listRooms(bob); // whatever the server sent Bob before this answer has arrived
        expectNever(bob, (f) => f.type === JOINED, 'a member of another room was told about a join', 'Bob (room welcome-blue) gets no JOINED: Ada and Carol joined welcome-red', 'send JOINED only to the members of the room that was joined');
      }),
  },
  {
    name: 'isolation: audio never crosses rooms; each room hears exactly its own talkers',
    run: (context) =>
      withParty(context, TYPE_NAMES, async (party) => {
        const a = inRoom('iso-a');
        const b = inRoom('iso-b');
        const roomA: Talker[] = [
          { user: await party.join('Ada (room A)', a), pcm: toneFrame(400, TONE_AMPLITUDE) },
          { user: await party.join('Bob (room A)', a), pcm: toneFrame(600, TONE_AMPLITUDE) },
        ];
        const listenerA = await party.join('Ann (room A)', a);
        const roomB: Talker[] = [{ user: await party.join('Cy (room B)', b), pcm: toneFrame(1000, TONE_AMPLITUDE) }];
        const listenerB = await party.join('Bea (room B)', b);
        const everyone = [...roomA, ...roomB];
        const users = [...everyone.map((t) => t.user), listenerA, listenerB];
        const marks = new Map(users.map((user) => [user, user.mark()]));
        const timing = await talk(everyone, 75); // 1.5 s
        await sleep(TAIL_MS);
        const hint = 'mix each room on its own: a listener hears the sum of the OTHER members of their own room, never a voice from another room';
        const options = { minFrames: minimumMixes(timing), minFullShare: 0.5, hint };
        expectMixes(listenerB, marks.get(listenerB)!, roomB, everyone, options);
        expectMixes(listenerA, marks.get(listenerA)!, roomA, everyone, options);
        expectMixes(roomA[0]!.user, marks.get(roomA[0]!.user)!, [roomA[1]!], everyone, options);
        expectMixes(roomA[1]!.user, marks.get(roomA[1]!.user)!, [roomA[0]!], everyone, options);
        // Cy talks alone in room B: the room has nothing for Cy to hear.
        const cy = roomB[0]!.user;
        const cyGot = cy.framesOfType(AUDIO, marks.get(cy)!);
        expect(cyGot.length === 0, 'a lone talker in room B was sent audio', {
          expected: 'no AUDIO to Cy: nobody else in room iso-b talks, and room iso-a\'s voices must not reach iso-b',
          actual: `${cyGot.length} AUDIO frames`,
          received: cyGot[0]?.payload,
          hint,
        });
      }),
  },
  {
    name: 'isolation: joins, leaves (bye, lost, error, moved) and SPEAKING in room A never reach room B',
    run: (context) =>
      withParty(context, TYPE_NAMES, async (party) => {
        const b = inRoom('quiet-b');
        const bea = await party.join('Bea', b);
        const bo = await party.join('Bo', b);
        await bea.waitForFrame('JOINED {"name":"Bo"}', isEvent(JOINED, 'Bo'), { timeoutMs: ANNOUNCE_DEADLINE_MS, hint: 'when someone joins a room, send JOINED {"name"} to its other members' });
        await bo.waitForFrame('USERS after WELCOME', (f) => f.type === USERS, { timeoutMs: ANNOUNCE_DEADLINE_MS, hint: 'right after WELCOME, send USERS' });
        const since = [bea.mark(), bo.mark()] as const; // from here on, nothing happens in quiet-b

        // Room A, busy: joins, a refused duplicate, speech, and every way of leaving.
        const a = inRoom('busy-a');
        const aNames = ['Ada', 'Amy', 'Ali', 'Art', 'Eve', 'Mo'];
        const [ada, amy, ali, art, eve, mo] = await Promise.all(aNames.map((name) => party.join(name, a))) as FramedUser[];
        const impostor = await WireClient.connect(context.server.host, context.server.port);
        impostor.send(hello('Ada', 'busy-a'));
        await expectError(impostor, 'name_taken', 'names are unique within a room: a HELLO with a name already in that room gets ERROR name_taken', TYPE_NAMES);
        await talk([{ user: ada!, pcm: toneFrame(400, TONE_AMPLITUDE) }], 15);
        await amy!.waitForFrame('SPEAKING {"speakers":["Ada"]}', (f) => f.type === SPEAKING && JSON.stringify(jsonOf(f).speakers) === '["Ada"]', {
          timeoutMs: SPEAKING_END_DEADLINE_MS, hint: 'after a tick in which the speakers of a room changed, send SPEAKING to that room\'s members',
        });
        amy!.send(bye());
        ali!.reset();
        art!.end();
        eve!.send(frameBytes(0x7f, 'garbage'));
        mo!.send(join('busy-c'));
        // Everything room A is told, Ada sees: wait for all of it before asking room B.
        const leftHint = 'tell a room\'s members at once when one of them leaves (LEFT "bye", "lost", "error") or moves to another room with JOIN (LEFT "moved")';
        for (const [name, reason] of [['Amy', 'bye'], ['Ali', 'lost'], ['Art', 'lost'], ['Eve', 'error'], ['Mo', 'moved']] as const) {
          await ada!.waitForFrame(`LEFT {"name":"${name}","reason":"${reason}"}`, isEvent(LEFT, name, reason), { timeoutMs: ANNOUNCE_DEADLINE_MS, hint: leftHint });
        }
        await ada!.waitForFrame('SPEAKING {"speakers":[]}', (f) => f.type === SPEAKING && JSON.stringify(jsonOf(f).speakers) === '[]', {
          timeoutMs: SPEAKING_END_DEADLINE_MS, hint: 'a user stops speaking 200 ms after their last mixed frame: then send SPEAKING with the smaller set to their room',
        });

        for (const [i, user] of [bea, bo].entries()) {
          await listRooms(user);
          const news = user.frames.slice(since[i]).filter((frame) => frame.type !== ROOMS);
          const aboutA = news.find((frame) => aNames.some((name) => frame.payload.toString('utf8').includes(`"${name}"`)));
          const hint = 'send JOINED, LEFT and SPEAKING only to the members of the room they are about';
          expect(aboutA === undefined, `${user.name} (room quiet-b) was told about room busy-a`, {
            expected: `nothing about ${aNames.join(', ')}: they are all in room busy-a`,
            actual: aboutA ? describe(aboutA) : '',
            hint,
          });
          expect(news.length === 0, `${user.name} (room quiet-b) got messages though nothing happened in that room`, {
            expected: 'nothing but the ROOMS answers (and no AUDIO: nobody in quiet-b talks)',
            actual: user.describeFrames(since[i]),
            hint,
          });
        }
      }),
  },
  {
    name: 'moving: JOIN moves a user without reconnecting; LEFT "moved" to the old room, JOINED to the new one',
    run: (context) =>
      withParty(context, TYPE_NAMES, async (party) => {
        const ada = await party.join('Ada', inRoom('move-a'));
        const amy = await party.join('Amy', inRoom('move-a'));
        const mo = await party.join('Mo', inRoom('move-a'));
        const bea = await party.join('Bea', inRoom('move-b'));
        const moVoice = toneFrame(1000, TONE_AMPLITUDE);
        await talk([{ user: mo, pcm: moVoice }], 15);
        await amy.waitForFrame('SPEAKING {"speakers":["Mo"]}', (f) => f.type === SPEAKING && JSON.stringify(jsonOf(f).speakers) === '["Mo"]', {
          timeoutMs: SPEAKING_END_DEADLINE_MS, hint: 'after a tick in which the speakers of a room changed, send SPEAKING to that room\'s members',
        });

        const before = new Map([ada, amy, mo, bea].map((user) => [user, user.mark()]));
        // Three last words in move-a, written together with the JOIN: they are still in Mo's
        // jitter buffer when the JOIN is read, and must not be heard in move-b.
        const lastWordsInA = toneFrame(1500, TONE_AMPLITUDE);
        mo.send(Buffer.concat([...Array.from({ length: 3 }, () => frameBytes(AUDIO, lastWordsInA)), join('move-b')]));
        const leftHint = 'on JOIN, tell the members of the room being left LEFT {"name", "reason":"moved"}, at once';
        const toldAt = new Map<FramedUser, number>(); // index of the frame just after LEFT "moved"
        for (const user of [ada, amy]) {
          const left = await user.waitForFrame('LEFT {"name":"Mo","reason":"moved"}', isEvent(LEFT, 'Mo', 'moved'), { since: before.get(user), timeoutMs: ANNOUNCE_DEADLINE_MS, hint: leftHint });
          toldAt.set(user, user.frames.indexOf(left) + 1);
        }
        await bea.waitForFrame('JOINED {"name":"Mo"}', isEvent(JOINED, 'Mo'), {
          since: before.get(bea), timeoutMs: ANNOUNCE_DEADLINE_MS, hint: 'on JOIN, tell the members of the new room JOINED {"name"}',
        });
        await expectUsers(mo, 'move-b', ['Bea', 'Mo'], before.get(mo)!, 'after a move, send the mover USERS {"room", "users"} for the new room');
        await amy.waitForFrame('SPEAKING {"speakers":[]} once Mo is gone', (f) => f.type === SPEAKING && JSON.stringify(jsonOf(f).speakers) === '[]', {
          since: before.get(amy), timeoutMs: SPEAKING_END_DEADLINE_MS, hint: 'a speaker who moves out is no longer speaking in that room: send SPEAKING without them',
        });
        expect(!mo.isClosed, 'the mover was disconnected', { expected: 'JOIN keeps the connection open', actual: mo.describeFrames(before.get(mo)), hint: 'JOIN moves the user on the same connection' });

        // Now the mover talks in room B only; Ada keeps talking in room A.
        const talkers: Talker[] = [
          { user: ada, pcm: toneFrame(400, TONE_AMPLITUDE) },
          { user: bea, pcm: toneFrame(600, TONE_AMPLITUDE) },
          { user: mo, pcm: moVoice },
        ];
        const marks = new Map([ada, amy, mo, bea].map((user) => [user, user.mark()]));
        const timing = await talk(talkers, 60);
        await sleep(TAIL_MS);
        const hint = 'after JOIN, mix the mover into the new room only: the old room no longer hears them, and they hear only the new room';
        const options = { minFrames: minimumMixes(timing), minFullShare: 0.5, hint };
        expectNever(bea, (f) => f.type === AUDIO && f.payload.equals(lastWordsInA), 'the new room heard what the mover said in the old one', 'no AUDIO with Mo\'s 1500 Hz tone: Mo sent it in move-a, right before JOIN', 'on a move, drop the frames still waiting in the mover\'s jitter buffer: they were said in the old room', before.get(bea));
        expectNever(amy, (f) => f.type === AUDIO && f.payload.equals(moVoice), 'the old room heard the mover after the move', 'no AUDIO with Mo\'s voice once Amy was told LEFT "moved"', hint, toldAt.get(amy));
        expectMixes(amy, marks.get(amy)!, [talkers[0]!], talkers, options);
        expectMixes(bea, marks.get(bea)!, [talkers[2]!], talkers, options);
        expectMixes(mo, marks.get(mo)!, [talkers[1]!], talkers, options);
        const adaGot = ada.framesOfType(AUDIO, marks.get(ada));
        expect(adaGot.length === 0, 'the old room still hears the mover', {
          expected: 'no AUDIO to Ada: she talks alone in move-a now that Mo moved to move-b', actual: `${adaGot.length} AUDIO frames`, received: adaGot[0]?.payload, hint,
        });
      }),
  },
  {
    name: `moving: JOIN to the room you are in sends USERS again, tells nobody anything and takes no move token (${OWN_ROOM_JOINS} at once, then a move still succeeds)`,
    run: (context) =>
      withParty(context, TYPE_NAMES, async (party) => {
        const ada = await party.join('Ada', inRoom('stay-here'));
        const bob = await party.join('Bob', inRoom('stay-here'));
        await ada.waitForFrame('JOINED {"name":"Bob"}', isEvent(JOINED, 'Bob'), { timeoutMs: ANNOUNCE_DEADLINE_MS });
        const since = [ada.mark(), bob.mark()] as const;
        // More than the bucket's 10: were they moves, the last ones and the move after them would be refused.
        ada.send(Buffer.concat(Array.from({ length: OWN_ROOM_JOINS }, () => join('stay-here'))));
        let next = since[0];
        for (let i = 1; i <= OWN_ROOM_JOINS; i++) {
          const hint = 'a JOIN for the room you are already in just answers USERS for it; it is not a move, so it takes no token from the move bucket (README: a JOIN of your own room takes none)';
          const answer = await ada.waitForFrame(`the answer to JOIN ${i} of ${OWN_ROOM_JOINS} for "stay-here"`, (f) => f.type === USERS || f.type === JOIN_REFUSED || f.type === ERROR, { since: next, timeoutMs: ANNOUNCE_DEADLINE_MS, hint });
          expect(answer.type === USERS, `a JOIN of your own room took a move token: JOIN ${i} of ${OWN_ROOM_JOINS} for the room Ada is in was refused`, {
            expected: 'USERS {"room": "stay-here", "users": ["Ada", "Bob"]} for each of them', actual: describe(answer), hint,
          });
          next = ada.frames.indexOf(answer);
          await expectUsers(ada, 'stay-here', ['Ada', 'Bob'], next, hint);
          next++;
        }
        await listRooms(bob);
        expectNever(bob, (f) => f.type === LEFT || f.type === JOINED, 'a JOIN to the same room was announced as a move', 'no LEFT or JOINED: Ada did not go anywhere', 'when the room asked for is the one the user is in, send USERS to them and nothing to anyone else', since[1]);
        // The bucket is still full: a real move now succeeds.
        const beforeMove = ada.mark();
        ada.send(join('stay-away'));
        const moved = await ada.waitForFrame('USERS for room "stay-away"', (f) => f.type === USERS || f.type === JOIN_REFUSED || f.type === ERROR, { since: beforeMove, timeoutMs: ANNOUNCE_DEADLINE_MS });
        expect(moved.type === USERS && jsonOf(moved).room === 'stay-away', `a JOIN of your own room took a move token: after ${OWN_ROOM_JOINS} JOINs of her own room, Ada could not move`, {
          expected: 'USERS {"room": "stay-away", "users": ["Ada"]}: the bucket of 10 moves is untouched', actual: describe(moved),
          hint: 'only a move (a JOIN of another room) takes a token; a JOIN of your own room takes none',
        });
      }),
  },
  {
    name: 'rooms: a room exists while someone is in it, and disappears with its last member (bye, move or lost)',
    run: (context) =>
      withParty(context, TYPE_NAMES, async (party) => {
        const watcher = await party.join('Watcher', inRoom('watch-tower'));
        const lena = await party.join('Lena', inRoom('brief-1'));
        const leo = await party.join('Leo', inRoom('brief-1'));
        const hint = 'keep a room while it has members; delete it as soon as the last one leaves or moves out';
        await expectRoomCount(watcher, 'brief-1', 2, 'ROOMS does not count both members', hint);
        leo.send(bye());
        await leo.waitForClose(2_000, 'the server to close the connection after BYE');
        await expectRoomCount(watcher, 'brief-1', 1, 'a room with one member left is not listed with 1', hint);
        // The name promises "bye" too: a room whose only member leaves with BYE disappears.
        const lou = await party.join('Lou', inRoom('brief-3'));
        await expectRoomCount(watcher, 'brief-3', 1, 'a room with one member is not listed with 1', hint);
        lou.send(bye());
        await lou.waitForClose(2_000, 'the server to close the connection after BYE');
        await expectRoomCount(watcher, 'brief-3', undefined, 'a room whose last member left with BYE is still listed', hint);
        let since = lena.mark();
        lena.send(join('brief-2'));
        await expectUsers(lena, 'brief-2', ['Lena'], since, 'after a move, send the mover USERS for the new room');
        await expectRoomCount(watcher, 'brief-1', undefined, 'a room whose last member moved out is still listed', hint);
        await expectRoomCount(watcher, 'brief-2', 1, 'the room a user moved into is not listed', 'JOIN to a room that does not exist creates it');
        since = lena.mark();
        lena.send(join('brief-1'));
        await expectUsers(lena, 'brief-1', ['Lena'], since, 'a room that disappeared can be created again: USERS lists only the newcomer');
        lena.reset(); // leaving without BYE: the server notices on its own, so ask until a deadline
        const deadline = performance.now() + ANNOUNCE_DEADLINE_MS;
        let rooms = (await listRooms(watcher)).rooms;
        while (countOf(rooms, 'brief-1') !== undefined && performance.now() < deadline) {
          await sleep(20);
          rooms = (await listRooms(watcher)).rooms;
        }
        expect(countOf(rooms, 'brief-1') === undefined && countOf(rooms, 'brief-2') === undefined, 'a room whose last member was lost is still listed', {
          expected: `within ${ANNOUNCE_DEADLINE_MS} ms of Lena's connection reset, ROOMS without "brief-1" (nor "brief-2")`,
          actual: JSON.stringify({ rooms }),
          hint,
        });
        expect(countOf(rooms, 'watch-tower') === 1, 'the watcher\'s own room is not listed', { expected: '{"room": "watch-tower", "users": 1} in ROOMS', actual: JSON.stringify({ rooms }), hint: 'ROOMS lists every room, the asker\'s included' });
      }),
  },
  {
    name: 'room ids: a bad id gets ERROR bad_room in HELLO, JOIN_REFUSED bad_room in JOIN (the connection stays usable)',
    run: (context) =>
      withParty(context, TYPE_NAMES, async (party) => {
        const tooLong = 'x'.repeat(65);
        const hint = 'a room id is 1 to 64 ASCII letters, digits, "-", "_", "." or ":"';
        const badIds = ['bad room!', tooLong, '', 'café', 'a/b'];
        await Promise.all(badIds.map(async (room) => {
          const client = await WireClient.connect(context.server.host, context.server.port);
          client.send(hello('Ada', room));
          await expectError(client, 'bad_room', `${hint}; a HELLO with any other "room" gets ERROR bad_room (got room ${JSON.stringify(room)})`, TYPE_NAMES);
        }));
        const noRoom = await WireClient.connect(context.server.host, context.server.port);
        noRoom.send(jsonFrameBytes(HELLO, { name: 'Ada' }));
        await expectError(noRoom, 'bad_field', 'a HELLO without a "room" string gets ERROR bad_field', TYPE_NAMES);
        const longest = 'Az09-_.:'.repeat(8); // 64 characters, every kind allowed
        await party.join('Lou', inRoom(longest)).catch((error: unknown) => {
          // Say which number is wrong: the README's longest id must be welcome (not just "could not join").
          if (!(error instanceof CheckFailure)) throw error;
          throw new CheckFailure(`the room id limit is not 64 characters: a HELLO with a valid room id of 64 characters was refused (${error.summary})`, { ...error.details, hint: `${hint}; 64 characters are allowed` });
        });

        const ada = await party.join('Ada', inRoom('ids-ok'));
        const bob = await party.join('Bob', inRoom('ids-ok'));
        for (const room of badIds) {
          const since = ada.mark();
          ada.send(join(room));
          await expectJoinRefused(ada, room, 'bad_room', since, `${hint}; a JOIN with any other id gets JOIN_REFUSED bad_room and the user stays where they are`);
        }
        await expectRoomCount(ada, 'ids-ok', 2, 'a refused JOIN moved the user anyway', 'after JOIN_REFUSED the user is still in their room');
        expectNever(bob, (f) => f.type === LEFT, 'a refused JOIN was announced as a leave', 'no LEFT: Ada is still here', 'a refused move changes nothing');
        const since = ada.mark();
        ada.send(join('ids-ok-2'));
        await expectUsers(ada, 'ids-ok-2', ['Ada'], since, 'after refused JOINs the connection still works: a good JOIN moves the user');
      }),
  },
  {
    name: 'names: the same name may be in two rooms; a duplicate in one room gets name_taken (ERROR in HELLO, JOIN_REFUSED in JOIN)',
    run: (context) =>
      withParty(context, TYPE_NAMES, async (party) => {
        const adaInA = await party.join('Ada', inRoom('names-a'));
        const adaInB = await party.join('Ada', inRoom('names-b'));
        const bob = await party.join('Bob', inRoom('names-b'));
        const impostor = await WireClient.connect(context.server.host, context.server.port);
        impostor.send(hello('Ada', 'names-a'));
        await expectError(impostor, 'name_taken', 'names are unique within a room: a HELLO with a name already in that room gets ERROR name_taken', TYPE_NAMES);

        const since = adaInB.mark();
        adaInB.send(join('names-a'));
        await expectJoinRefused(adaInB, 'names-a', 'name_taken', since, 'a JOIN into a room where someone already has your name gets JOIN_REFUSED name_taken; you stay where you are');
        const { rooms, frame } = await listRooms(adaInB);
        expect(countOf(rooms, 'names-a') === 1 && countOf(rooms, 'names-b') === 2, 'a refused JOIN changed the rooms', {
          expected: 'ROOMS with names-a: 1 and names-b: 2 (the refused Ada stays in names-b)', actual: describe(frame), hint: 'a refused move changes nothing',
        });
        await listRooms(adaInA);
        expectNever(adaInA, (f) => f.type === JOINED || f.type === LEFT, 'the first Ada was told about a refused duplicate', 'no JOINED or LEFT in names-a: nobody joined it', 'check the name before moving or announcing anyone');
        expectNever(bob, (f) => f.type === LEFT, 'a refused JOIN was announced as a leave', 'no LEFT in names-b: Ada is still there', 'a refused move changes nothing');
      }),
  },
  {
    name: 'LIST_ROOMS: ROOMS gives every room\'s id and member count, sorted by id, and never a name',
    run: (context) =>
      withParty(context, TYPE_NAMES, async (party) => {
        await party.join('Secret One', inRoom('list-b'));
        await party.join('Secret Two', inRoom('list-b'));
        await party.join('Hidden Name', inRoom('list-a'));
        await party.join('Other Case', inRoom('LIST-Z'));
        const asker = await party.join('Asker', inRoom('list-c'));
        const { rooms, frame } = await listRooms(asker);
        const hint = 'ROOMS lists {"room", "users"} for every room, sorted by id (plain ASCII order: "LIST-Z" before "list-a"); member names stay inside their room';
        const ours = rooms.filter((entry) => ['list-a', 'list-b', 'list-c', 'LIST-Z'].includes(entry.room));
        expect(JSON.stringify(ours) === JSON.stringify([{ room: 'LIST-Z', users: 1 }, { room: 'list-a', users: 1 }, { room: 'list-b', users: 2 }, { room: 'list-c', users: 1 }]), 'ROOMS is wrong', {
          expected: 'ROOMS listing, in this order, {"room":"LIST-Z","users":1}, {"room":"list-a","users":1}, {"room":"list-b","users":2}, {"room":"list-c","users":1} (other rooms may be listed too)',
          actual: describe(frame),
          hint,
        });
        const ids = rooms.map((entry) => entry.room);
        expect(ids.every((id, i) => i === 0 || ids[i - 1]! < id), 'ROOMS is not sorted by id', { expected: 'room ids in ascending ASCII order', actual: JSON.stringify(ids), hint });
        const text = frame.payload.toString('utf8');
        const leaked = ['Secret One', 'Secret Two', 'Hidden Name', 'Other Case', 'Asker'].filter((name) => text.includes(name));
        expect(leaked.length === 0, 'ROOMS reveals who is in a room', { expected: 'ids and counts only', actual: `ROOMS mentions ${leaked.join(', ')}: ${text.slice(0, 300)}`, hint });
      }),
  },
  {
    name: 'errors: JOIN and LIST_ROOMS before HELLO, a malformed JOIN, or server-only types get ERROR and a close',
    run: (context) =>
      withParty(context, TYPE_NAMES, async (party) => {
        const rogue = async (bytes: Buffer, code: string, hint: string) => {
          const client = await WireClient.connect(context.server.host, context.server.port);
          client.send(bytes);
          await expectError(client, code, hint, TYPE_NAMES);
        };
        await Promise.all([
          rogue(join('lobby'), 'not_joined', 'JOIN is only accepted after a successful HELLO'),
          rogue(frameBytes(LIST_ROOMS), 'not_joined', 'LIST_ROOMS is only accepted after a successful HELLO'),
          rogue(Buffer.from([LIST_ROOMS, 0, 0, 0, 1, 0]), 'frame_too_large', 'LIST_ROOMS has an empty payload: a declared length above 0 is frame_too_large'),
          rogue(jsonFrameBytes(ROOMS, { rooms: [] }), 'unknown_type', 'ROOMS (0x0D) only goes from server to client: from a client it is unknown_type'),
          rogue(jsonFrameBytes(JOIN_REFUSED, { room: 'x', code: 'bad_room', message: '' }), 'unknown_type', 'JOIN_REFUSED (0x0B) only goes from server to client'),
        ]);
        const ada = await party.join('Ada', inRoom('errors-a'));
        const eve = await party.join('Eve', inRoom('errors-a'));
        const since = ada.mark();
        const hint = 'a JOIN whose "room" is not a string is a protocol error: ERROR bad_field, then close';
        eve.send(jsonFrameBytes(JOIN, { room: 42 }));
        const error = await eve.waitForFrame('ERROR "bad_field"', (f) => f.type === ERROR || f.type === JOIN_REFUSED, { timeoutMs: ANNOUNCE_DEADLINE_MS, hint });
        expect(error.type === ERROR && jsonOf(error).code === 'bad_field', 'a malformed JOIN got the wrong answer', {
          expected: 'ERROR (0x05) {"code": "bad_field", "message": ...}', actual: describe(error), hint,
        });
        await eve.waitForClose(3_000, 'the server to close the connection after ERROR', hint);
        await ada.waitForFrame('LEFT {"name":"Eve","reason":"error"}', isEvent(LEFT, 'Eve', 'error'), {
          since, timeoutMs: ANNOUNCE_DEADLINE_MS, hint: 'a user disconnected for a protocol error is announced to their room with LEFT {"reason":"error"}',
        });
      }),
  },
  tickRateCheck(TYPE_NAMES, inRoom('tick')),
  jitterBufferCheck(TYPE_NAMES, inRoom('burst')),
  // Over the hostile cases' raw connections: they count mixes and keep up with a flood's answers.
  joinFloodRule(WIRES['04']),
  moveRefillCheck(WIRES['04']),
  standingBacklogCheck(TYPE_NAMES, inRoom('catch-up')),
  protocolIdServerCheck({ id: '04', hello: (name) => ({ name, room: 'lobby' }), welcome: (name) => ({ name, room: 'lobby', sample_rate: 48_000, frame_samples: 960 }) }),
];
