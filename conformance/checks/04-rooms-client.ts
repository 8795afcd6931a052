// Stage 04's client checks: the client under test (CLIENT_CMD, default the reference) is run
// through its command line against a fake server that plays the server's part with raw frames.
// They use only the protocol in 04-rooms/README.md (nothing from 04-rooms/ is imported), so they
// grade a client written in any language. Stage 03's client checks (the voice gate, mute,
// push-to-talk, the news, users, a closed standard input) run in this stage's grade too, with
// 04's WELCOME and USERS (roomsMultiuserStage, conformance/stages.ts); here: the room in HELLO,
// --room, join, rooms, and one end-to-end check that the voice still gets through.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE } from '#shared/audio/format.ts';
import { expect, type Check, type CheckContext } from '../harness/checks.ts';
import { FakeServer } from '../harness/fake-server.ts';
import { describeFrames, finishSession, orStop, startSession as startClientSession, thenExit, type Session } from '../harness/client-session.ts';
import { distinctivePcm, firstDifference, frameBytes, jsonFrameBytes, jsonObjectOf, type WireFrame } from '../harness/frame-wire.ts';
import { expectRecording } from '../harness/recording.ts';
import { runCommand } from '../harness/run-command.ts';
import { describeRun } from '../harness/running-client.ts';
import { writeSpeechWav } from '../harness/speech-wav.ts';
import { errorLines } from '../harness/program-output.ts';
import { protocolIdClientCheck } from '../harness/protocol-id-checks.ts';
import { controlLimitClientCheck } from '../harness/control-limit-check.ts';
import type { MultiuserClientStage } from './03-multiuser-client.ts';

// The message types of the README's table.
const HELLO = 0x01;
const WELCOME = 0x02;
const AUDIO = 0x03;
const BYE = 0x04;
const USERS = 0x06;
const JOINED = 0x07;
const LEFT = 0x08;
const JOIN = 0x0a;
const JOIN_REFUSED = 0x0b;
const LIST_ROOMS = 0x0c;
const ROOMS = 0x0d;
const TYPE_NAMES: Record<number, string> = {
  [HELLO]: 'HELLO',
  [AUDIO]: 'AUDIO',
  [BYE]: 'BYE',
  [JOIN]: 'JOIN',
  [LIST_ROOMS]: 'LIST_ROOMS',
};

/** The room of a client started without --room. */
const DEFAULT_ROOM = 'lobby';
/** How long a command typed on standard input may take to act. */
const COMMAND_DEADLINE_MS = 3_000;
/** The --duration of the recording check: long enough that a WAV of only the frames heard (0.4 s) is plainly too short. */
const RECORDED_SECONDS = 2;
/** After a client refused its options and exited, how long a late connection is watched for. */
const NO_CONNECTION_WATCH_MS = 500;

const welcome = (name: string, room: string) => jsonFrameBytes(WELCOME, { name, room, sample_rate: SAMPLE_RATE, frame_samples: FRAME_SAMPLES });
const users = (room: string, names: string[]) => jsonFrameBytes(USERS, { room, users: names });

/** Stage 04's WELCOME and USERS for stage 03's client checks (multiuserClientChecks), which give no --room. */
export const roomsMultiuserStage: MultiuserClientStage = {
  welcome: (name) => ({ name, room: DEFAULT_ROOM, sample_rate: SAMPLE_RATE, frame_samples: FRAME_SAMPLES }),
  users: (names) => ({ room: DEFAULT_ROOM, users: names }),
};


/** Whether the output has a line "room: ID" (maybe followed by more words): where the client says it is. */
function showsRoom(room: string): (stdout: string) => boolean {
  const line = new RegExp(`^room: ${room.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\s|$)`, 'm');
  return (stdout) => line.test(stdout);
}

/**
 * Runs the client under test against a fake server that answers HELLO with WELCOME and
 * USERS [name] for the room the HELLO asked for (or "lobby" if it names none), as the real server does.
 */
function startSession(context: CheckContext, name: string, args: string[], timeoutMs?: number): Promise<Session> {
  return startClientSession(context, name, args, (hello) => {
    const room = typeof hello.room === 'string' ? hello.room : DEFAULT_ROOM;
    return Buffer.concat([welcome(name, room), users(room, [name])]);
  }, timeoutMs);
}

/** Waits for the client's next frame of `type` after the first `after` frames; returns it. */
async function nextFrameOfType(session: Session, type: number, after: number, what: string, hint: string): Promise<WireFrame> {
  return session.connection.waitFor(() => session.sent().slice(after).find((frame) => frame.type === type), COMMAND_DEADLINE_MS, what, hint);
}

/** Expects the client's HELLO to be {"name": name, "room": room}. */
function expectHello(session: Session, name: string, room: string, how: string): void {
  const { hello } = session;
  expect(hello.name === name && hello.room === room, `the HELLO does not carry the room ${how}`, {
    expected: `HELLO {"name":${JSON.stringify(name)},"room":${JSON.stringify(room)}}`,
    actual: `HELLO ${JSON.stringify(hello)}`,
    hint: `HELLO's payload is a JSON object with two strings: "name" and "room" (the --room option, "${DEFAULT_ROOM}" without it)`,
  });
}


const SILENT_FRAME = Buffer.alloc(FRAME_BYTES);

export const clientChecks: Check[] = [
  {
    name: 'client: --room game-42 is sent in HELLO as {"name", "room": "game-42"}',
    subject: 'client',
    async run(context) {
      const session = await startSession(context, 'Ada', ['--room', 'game-42', '--input', 'silence', '--output', 'null', '--duration', '1']);
      await orStop(session, () => expectHello(session, 'Ada', 'game-42', 'given with --room'));
      await finishSession(session, 10_000, 'when --duration 1 is over');
    },
  },
  {
    name: `client: without --room the HELLO asks for the room "${DEFAULT_ROOM}"`,
    subject: 'client',
    async run(context) {
      const session = await startSession(context, 'Ada', ['--input', 'silence', '--output', 'null', '--duration', '1']);
      await orStop(session, () => expectHello(session, 'Ada', DEFAULT_ROOM, `"${DEFAULT_ROOM}" when there is no --room`));
      await finishSession(session, 10_000, 'when --duration 1 is over');
    },
  },
  {
    name: 'client: an invalid --room is refused before connecting: one line, exit code 2',
    subject: 'client',
    async run(context) {
      const fake = await FakeServer.start();
      try {
        const result = await runCommand(context.clientCommand, ['--name', 'Ada', '--room', 'bad room!', '--host', '127.0.0.1', '--port', String(fake.port), '--input', 'silence', '--output', 'null', '--duration', '1'], { timeoutMs: 15_000 });
        const lines = errorLines(result.stderr);
        expect(result.exitCode === 2 && !result.timedOut, 'the client did not exit with code 2 on an invalid --room', {
          expected: 'exit code 2 at once: "bad room!" holds a space and a "!", which a room id may not',
          actual: describeRun(result),
          hint: 'check the room id before connecting (1 to 64 ASCII letters, digits, "-", "_", "." or ":"), print why on standard error, exit 2',
        });
        expect(lines.length === 1 && /room/i.test(lines[0]!), 'the client did not explain the invalid --room in one line', {
          expected: 'exactly one line on standard error that says what is wrong with the room id',
          actual: `standard error: ${JSON.stringify(result.stderr.slice(-400))}`,
          hint: 'one line naming the problem (for example: invalid --room "bad room!": a room id may contain only ...), no stack trace',
        });
        // Had it connected, the connection was made before it exited: a short look is enough.
        const connected = await fake.connection(0, NO_CONNECTION_WATCH_MS).then(
          () => true,
          () => false,
        );
        expect(!connected, 'the client connected to the server although its --room is invalid', {
          expected: 'no connection at all: the mistake is found before connecting',
          actual: 'the fake server accepted a connection from the client',
          hint: 'validate every option first, then connect',
        });
      } finally {
        await fake.close();
      }
    },
  },
  {
    name: 'client: join blue sends JOIN {"room":"blue"}; the USERS for blue shows "room: blue" and its members',
    subject: 'client',
    async run(context) {
      const session = await startSession(context, 'Ada', ['--input', 'silence', '--output', 'null']);
      await thenExit(session, async () => {
        await session.client.waitForStdout(showsRoom(DEFAULT_ROOM), 5_000, `"room: ${DEFAULT_ROOM}" after WELCOME and USERS`, 'print the room named in USERS as a line "room: ID" (and flush standard output)');
        const before = session.sent().length;
        session.client.type('join blue\n');
        const join = await nextFrameOfType(session, JOIN, before, 'a JOIN frame (0x0a) after typing "join blue"', 'on "join ROOM", send JOIN with payload {"room": ROOM}');
        const payload = jsonObjectOf(join.payload);
        expect('object' in payload && payload.object.room === 'blue', 'the JOIN does not ask for the room blue', {
          expected: 'JOIN {"room":"blue"}',
          actual: 'object' in payload ? `JOIN ${JSON.stringify(payload.object)}` : payload.problem,
          received: session.connection.received.subarray(-200),
          hint: 'JOIN\'s payload is a JSON object with one string, "room"; the room id is case-sensitive',
        });
        // The server's answer to a move: LEFT "moved" to the old room, and to the mover the new room's USERS.
        session.connection.send(users('blue', ['Cyd', 'Ada']));
        const moved = (stdout: string) => showsRoom('blue')(stdout) && stdout.includes('Cyd');
        await session.client.waitForStdout(moved, COMMAND_DEADLINE_MS, 'a line "room: blue" and the new members (Cyd) after USERS {"room":"blue",...}', 'on USERS, print "room: ID" for the room it names and its user list');
      });
    },
  },
  {
    name: 'client: a JOIN_REFUSED is shown in one line and the client stays where it was',
    subject: 'client',
    async run(context) {
      const session = await startSession(context, 'Ada', ['--input', 'silence', '--output', 'null']);
      await thenExit(session, async () => {
        session.connection.send(jsonFrameBytes(JOINED, { name: 'Bob' }));
        await session.client.waitForStdout((stdout) => stdout.includes('Bob'), 5_000, 'the news that Bob joined', 'print a line for each JOINED');
        const before = session.sent().length;
        session.client.type('join full-room\n');
        await nextFrameOfType(session, JOIN, before, 'a JOIN frame (0x0a) after typing "join full-room"', 'on "join ROOM", send JOIN with payload {"room": ROOM}');
        const message = 'someone called "Ada" is already in room "full-room"';
        session.connection.send(jsonFrameBytes(JOIN_REFUSED, { room: 'full-room', code: 'name_taken', message }));
        const refusalShown = (stdout: string) => stdout.split('\n').some((line) => line.includes(message) && line.includes('name_taken'));
        await session.client.waitForStdout(refusalShown, COMMAND_DEADLINE_MS, `one line with the refusal's message and code: ${message} (name_taken)`, 'JOIN_REFUSED is an answer, not the end: print its message and code, and carry on in the same room');
        expect(!showsRoom('full-room')(session.client.stdout), 'the client shows itself in the room it was refused', {
          expected: `no "room: full-room" line: the move was refused, the client is still in "${DEFAULT_ROOM}"`,
          actual: `standard output: ${JSON.stringify(session.client.stdout.slice(-400))}`,
          hint: 'a move happens when the server sends USERS for the new room, not when JOIN is sent',
        });
        const shown = session.client.stdout.length;
        session.client.type('users\n');
        await session.client.waitForStdout((stdout) => stdout.slice(shown).includes('Bob'), COMMAND_DEADLINE_MS, `an answer to the command users, after the refusal, that names Bob (still in "${DEFAULT_ROOM}")`, 'keep running after JOIN_REFUSED, with the room and user list you had');
      });
    },
  },
  {
    name: 'client: rooms sends LIST_ROOMS (empty) and prints each room of the ROOMS answer with its count',
    subject: 'client',
    async run(context) {
      const session = await startSession(context, 'Ada', ['--room', 'game-42', '--input', 'silence', '--output', 'null']);
      await thenExit(session, async () => {
        await session.client.waitForStdout(showsRoom('game-42'), 5_000, '"room: game-42" after WELCOME and USERS', 'print the room named in USERS as a line "room: ID" (and flush standard output)');
        const before = session.sent().length;
        session.client.type('rooms\n');
        const list = await nextFrameOfType(session, LIST_ROOMS, before, 'a LIST_ROOMS frame (0x0c) after typing "rooms"', 'on "rooms", send LIST_ROOMS: type 0x0c, no payload');
        expect(list.payload.length === 0, 'LIST_ROOMS has a payload', {
          expected: 'LIST_ROOMS with length 0',
          actual: `${list.payload.length} payload bytes`,
          received: session.connection.received.subarray(-100),
          hint: 'LIST_ROOMS is the 5-byte header 0c 00 00 00 00 and nothing else',
        });
        const shown = session.client.stdout.length;
        session.connection.send(jsonFrameBytes(ROOMS, { rooms: [{ room: 'game-42', users: 17 }, { room: 'lobby', users: 1 }, { room: 'x.1', users: 250 }] }));
        // Each id with its count next to it, whatever the punctuation: "game-42 (17)", "game-42: 17 users".
        const counts = [/game-42\W+17\b/, /lobby\W+1\b/, /x\.1\W+250\b/];
        const listed = (stdout: string) => counts.every((count) => count.test(stdout.slice(shown)));
        await session.client.waitForStdout(listed, COMMAND_DEADLINE_MS, 'the rooms with their counts: game-42 (17), lobby (1), x.1 (250)', 'on ROOMS, print every room id with its number of users (for example: rooms: game-42 (17), lobby (1), x.1 (250))');
      });
    },
  },
  {
    name: 'client: a user who moved away is shown as such (LEFT with reason "moved")',
    subject: 'client',
    async run(context) {
      const session = await startSession(context, 'Ada', ['--input', 'silence', '--output', 'null', '--duration', '1.5']);
      session.connection.send(Buffer.concat([users(DEFAULT_ROOM, ['Ada', 'Bob']), jsonFrameBytes(LEFT, { name: 'Bob', reason: 'moved' })]));
      const { result } = await finishSession(session, 12_000, 'when --duration 1.5 is over');
      const leftLine = result.stdout.split('\n').find((line) => line.includes('Bob') && /moved/i.test(line) && !line.startsWith('users'));
      expect(leftLine !== undefined, 'the client did not show that Bob moved away', {
        expected: 'a line naming Bob and saying he moved (for example: left: Bob (moved to another room))',
        actual: describeRun(result),
        hint: 'print a line for each LEFT with its reason; "moved" means the user went to another room',
      });
    },
  },
  {
    name: 'client: in a room, a tone from the --input WAV reaches the server as AUDIO, frame for frame',
    subject: 'client',
    async run(context) {
      const dir = mkdtempSync(joinPath(tmpdir(), 'rooms-check-'));
      try {
        const input = joinPath(dir, 'tone.wav');
        const { toneFrames } = writeSpeechWav(input, 0.3, 0.6, 1.2);
        const session = await startSession(context, 'Ada', ['--room', 'game-42', '--input', input, '--output', 'null', '--duration', '3']);
        const { frames } = await finishSession(session, 15_000, 'when --duration 3 is over');
        const sent = frames.filter((frame) => frame.type === AUDIO).map((frame) => frame.payload);
        const story = `the input: 0.3 s of silence, ${toneFrames.length} tone frames, 1.2 s of silence; after WELCOME the client sent ${describeFrames(frames, TYPE_NAMES)}`;
        const wrongTone = toneFrames.findIndex((frame, i) => !sent[i]?.equals(frame));
        expect(wrongTone === -1, 'the tone did not reach the server whole and unchanged', {
          expected: `the first ${toneFrames.length} AUDIO frames are the tone frames, in order, byte for byte`,
          actual: `${story}; AUDIO frame ${wrongTone + 1}: ${sent[wrongTone] ? firstDifference(toneFrames[wrongTone]!, sent[wrongTone]!) : 'missing'}`,
          hint: 'while the voice gate is open, send every input frame as it is, in a 1920-byte AUDIO frame; send nothing before the voice starts',
        });
        expect(sent.slice(toneFrames.length).every((payload) => payload.equals(SILENT_FRAME)), 'after the tone the client sent something that is not in the input', {
          expected: 'after the tone, at most the silent frames of the gate\'s hang-over',
          actual: story,
          hint: 'send the input frames in order, each once',
        });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  },
  {
    name: 'client: the --output WAV is a recording: the room\'s mix in order and sample-exact, silence where nothing came, as long as the session',
    subject: 'client',
    async run(context) {
      const dir = mkdtempSync(joinPath(tmpdir(), 'rooms-check-'));
      try {
        const output = joinPath(dir, 'heard.wav');
        const mix = distinctivePcm(20, FRAME_BYTES, 44);
        const frames = Array.from({ length: 20 }, (_, i) => mix.subarray(i * FRAME_BYTES, (i + 1) * FRAME_BYTES));
        const session = await startSession(context, 'Ada', ['--room', 'game-42', '--input', 'silence', '--output', output, '--duration', String(RECORDED_SECONDS)]);
        // Two bursts with a pause between: the recording keeps the pause, and the quiet after them.
        session.connection.send(Buffer.concat(frames.slice(0, 8).map((frame) => frameBytes(AUDIO, frame))));
        await sleep(300);
        session.connection.send(Buffer.concat(frames.slice(8).map((frame) => frameBytes(AUDIO, frame))));
        await finishSession(session, 12_000, `when --duration ${RECORDED_SECONDS} is over`);
        expectRecording(output, frames, RECORDED_SECONDS * 1000, 'the room\'s mix');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  },
  protocolIdClientCheck({ id: '04', hello: (name) => ({ name, room: DEFAULT_ROOM }), welcome: (name) => ({ name, room: DEFAULT_ROOM, sample_rate: SAMPLE_RATE, frame_samples: FRAME_SAMPLES }) }, ['--input', 'silence', '--output', 'null']),
  controlLimitClientCheck({ usersType: USERS, start: (context, name) => startSession(context, name, ['--input', 'silence', '--output', 'null']), users: (names) => ({ room: DEFAULT_ROOM, users: names }), usersCommand: 'users' }),
];
