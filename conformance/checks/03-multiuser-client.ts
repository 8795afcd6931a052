// Stage 03's client checks: the client under test (CLIENT_CMD, default the reference) is run
// through its command line against a fake server that plays the server's part with raw frames.
// They use only the protocol in 03-multiuser/README.md (nothing from 03-multiuser/ is imported),
// so they grade a client written in any language.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE } from '#shared/audio/format.ts';
import { expect, type Check, type CheckContext } from '../harness/checks.ts';
import { describeFrames, finishSession, orStop, startSession as startClientSession, thenExit, type Session } from '../harness/client-session.ts';
import { distinctivePcm, firstDifference, frameBytes, jsonFrameBytes } from '../harness/frame-wire.ts';
import { expectRecording } from '../harness/recording.ts';
import { describeRun } from '../harness/running-client.ts';
import { codePointName, rawCharacters } from '../harness/program-output.ts';
import { writeSpeechWav } from '../harness/speech-wav.ts';
import { protocolIdClientCheck } from '../harness/protocol-id-checks.ts';
import { controlLimitClientCheck } from '../harness/control-limit-check.ts';

// The message types of the README's table.
const HELLO = 0x01;
const WELCOME = 0x02;
const AUDIO = 0x03;
const BYE = 0x04;
const USERS = 0x06;
const JOINED = 0x07;
const LEFT = 0x08;
const SPEAKING = 0x09;
const TYPE_NAMES: Record<number, string> = { [HELLO]: 'HELLO', [WELCOME]: 'WELCOME', [AUDIO]: 'AUDIO', [BYE]: 'BYE' };

/** The documented default hang-over is 300 ms; a client may choose otherwise within these bounds. */
const MIN_HANGOVER_MS = 100;
const MAX_HANGOVER_MS = 1_000;
/** How long "nothing is sent" is watched for, and how long a command may take to act. */
const QUIET_MS = 600;
const COMMAND_DEADLINE_MS = 3_000;
/** The --duration of the closed-input check, and the AUDIO frames of the tone it must send at least: half of one per 20 ms (slack for a loaded machine). */
const CLOSED_INPUT_SECONDS = 2;
const MIN_CLOSED_INPUT_FRAMES = Math.ceil((CLOSED_INPUT_SECONDS * 1000) / FRAME_MS / 2);
/** A timer may fire a little early by another clock: how much sooner than --duration a BYE may come. */
const TIMER_SLACK_MS = 100;
/** The --duration of the recording check: long enough that a WAV of only the frames heard (0.5 s) is plainly too short. */
const RECORDED_SECONDS = 2;

/**
 * What differs between the stages whose client keeps stage 03's (03 and 04, whose README says
 * "Stage 03's client requirements hold"): the payloads of WELCOME and USERS the fake server
 * sends. 04's carry the room ("lobby": these checks give no --room); JOINED, LEFT and SPEAKING
 * are the same in both.
 */
export interface MultiuserClientStage {
  /** WELCOME's payload for `name`. */
  welcome(name: string): Record<string, unknown>;
  /** USERS's payload for these names. */
  users(names: string[]): Record<string, unknown>;
}

const STAGE_03: MultiuserClientStage = {
  welcome: (name) => ({ name, sample_rate: SAMPLE_RATE, frame_samples: FRAME_SAMPLES }),
  users: (names) => ({ users: names }),
};

const audio = (pcm: Buffer) => frameBytes(AUDIO, pcm);

/** n distinct 1920-byte frames; `seed` keeps frames of different checks different too. */
function distinctFrames(count: number, seed: number): Buffer[] {
  const pcm = distinctivePcm(count, FRAME_BYTES, seed);
  return Array.from({ length: count }, (_, i) => pcm.subarray(i * FRAME_BYTES, (i + 1) * FRAME_BYTES));
}

/** Runs the client under test against a fake server that answers HELLO with WELCOME and USERS [name], as the real server does. */
function startStageSession(stage: MultiuserClientStage, context: CheckContext, name: string, args: string[], timeoutMs?: number): Promise<Session> {
  return startClientSession(context, name, args, () => Buffer.concat([jsonFrameBytes(WELCOME, stage.welcome(name)), jsonFrameBytes(USERS, stage.users([name]))]), timeoutMs);
}

function audioCount(session: Session): number {
  return session.sent().filter((frame) => frame.type === AUDIO).length;
}

/** Waits until the client has sent no AUDIO for QUIET_MS; fails if that does not happen by the deadline. */
async function expectAudioToStop(session: Session, deadlineMs: number, summary: string, hint: string): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  let count = audioCount(session);
  let since = Date.now();
  while (Date.now() - since < QUIET_MS) {
    expect(Date.now() < deadline, summary, {
      expected: `no AUDIO for ${QUIET_MS} ms, within ${deadlineMs / 1000} s`,
      actual: `AUDIO kept coming: ${audioCount(session)} frames so far`,
      received: session.connection.received.subarray(-120),
      hint,
    });
    await sleep(FRAME_MS);
    const now = audioCount(session);
    if (now !== count) [count, since] = [now, Date.now()];
  }
}

/** Waits until the client sends more AUDIO than `before`. */
async function expectAudioToFlow(session: Session, before: number, what: string, hint: string): Promise<void> {
  await session.connection.waitFor(() => (audioCount(session) > before ? true : undefined), COMMAND_DEADLINE_MS, what, hint);
}


const SILENT_FRAME = Buffer.alloc(FRAME_BYTES);

/**
 * Stage 03's client checks that stage 04's client must pass too (its README keeps stage 03's
 * client requirements), for the stage's WELCOME and USERS: run in both grades under the same names.
 */
export function multiuserClientChecks(stage: MultiuserClientStage): Check[] {
  const users = (names: string[]) => jsonFrameBytes(USERS, stage.users(names));
  const startSession = (context: CheckContext, name: string, args: string[], timeoutMs?: number) => startStageSession(stage, context, name, args, timeoutMs);
  return [
    {
      name: 'client: with silence as input the voice gate stays shut: HELLO, no AUDIO, BYE',
      subject: 'client',
      async run(context) {
        const session = await startSession(context, 'Ada', ['--input', 'silence', '--output', 'null', '--duration', '2']);
        const { frames } = await finishSession(session, 12_000, 'when --duration 2 is over');
        expect(frames.length === 1 && frames[0]!.type === BYE, 'the client sent something while silent', {
          expected: 'after WELCOME: only BYE (no AUDIO: silence never opens the voice gate)',
          actual: `after WELCOME: ${describeFrames(frames, TYPE_NAMES)}`,
          hint: 'send AUDIO only while the voice gate is open: the RMS level of the input must reach --gate-open-db (default -40 dBFS)',
        });
      },
    },
    {
      name: 'client: speech is sent whole, with a hang-over of 100 ms to 1 s, and nothing of the silence before it',
      subject: 'client',
      async run(context) {
        const dir = mkdtempSync(joinPath(tmpdir(), 'multiuser-check-'));
        try {
          const input = joinPath(dir, 'speech.wav');
          // The tail is longer than the longest hang-over allowed, so a gate that never closes is caught.
          const { leadFrames, toneFrames, tailFrames } = writeSpeechWav(input, 0.5, 0.6, 1.5);
          const session = await startSession(context, 'Ada', ['--input', input, '--output', 'null', '--duration', '3.5']);
          const { frames } = await finishSession(session, 15_000, 'when --duration 3.5 is over');
          const sent = frames.filter((frame) => frame.type === AUDIO).map((frame) => frame.payload);
          const story = `the input: ${leadFrames} silent frames, ${toneFrames.length} tone frames, ${tailFrames} silent frames; after WELCOME the client sent ${describeFrames(frames, TYPE_NAMES)}`;

          const firstTone = sent.findIndex((payload) => payload.equals(toneFrames[0]!));
          expect(firstTone === 0, firstTone > 0 ? 'the client sent audio before the speech began' : 'the start of the speech was not sent', {
            expected: 'the first AUDIO frame is the first tone frame, byte for byte (silence opens no gate)',
            actual: `${story}; the first tone frame is AUDIO number ${firstTone === -1 ? '(none)' : firstTone + 1}`,
            hint: 'open the gate on the first frame whose level reaches --gate-open-db, and send that frame itself; send nothing while the gate is shut',
          });
          const wrongTone = toneFrames.findIndex((frame, i) => !sent[i]?.equals(frame));
          expect(wrongTone === -1, 'the speech was not sent whole and unchanged', {
            expected: `the ${toneFrames.length} tone frames, in order, each byte-exact`,
            actual: `${story}; tone frame ${wrongTone + 1}: ${sent[wrongTone] ? firstDifference(toneFrames[wrongTone]!, sent[wrongTone]!) : 'missing'}`,
            hint: 'while the gate is open, send every input frame as it is',
          });
          const trailing = sent.slice(toneFrames.length);
          const hangoverMs = trailing.length * FRAME_MS;
          expect(trailing.every((payload) => payload.equals(SILENT_FRAME)), 'after the speech the client sent something that is not in the input', {
            expected: 'after the tone, only the silent frames that follow it in the input',
            actual: story,
            hint: 'send the input frames in order, each once',
          });
          expect(hangoverMs >= MIN_HANGOVER_MS && hangoverMs <= MAX_HANGOVER_MS, hangoverMs < MIN_HANGOVER_MS ? 'the gate shut too soon after the speech (no hang-over)' : 'the gate did not shut after the speech', {
            expected: `${MIN_HANGOVER_MS / FRAME_MS} to ${MAX_HANGOVER_MS / FRAME_MS} silent frames after the tone (a hang-over of ${MIN_HANGOVER_MS} ms to ${MAX_HANGOVER_MS / 1000} s; the default is 300 ms)`,
            actual: `${trailing.length} silent frames (${hangoverMs} ms); ${story}`,
            hint: 'keep the gate open for --gate-hangover-ms after the level falls below --gate-close-db, so the ends of words are not cut, then shut it',
          });
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    },
    {
      name: 'client: --ptt sends nothing until Enter, then sends; Enter again stops it',
      subject: 'client',
      async run(context) {
        const session = await startSession(context, 'Ada', ['--ptt', '--input', 'tone:440', '--output', 'null']);
        await thenExit(session, async () => {
          await sleep(1_000);
          expect(audioCount(session) === 0, 'push-to-talk sent audio before it was turned on', {
            expected: 'no AUDIO in the first second: push-to-talk starts off (the tone would open a voice gate, but --ptt replaces the gate)',
            actual: `${audioCount(session)} AUDIO frames`,
            hint: 'with --ptt, send only while push-to-talk is on; it starts off',
          });
          session.client.type('\n');
          await expectAudioToFlow(session, 0, 'AUDIO after Enter (an empty line on standard input)', 'an empty line on standard input (the Enter key) turns push-to-talk on');
          session.client.type('\n');
          await expectAudioToStop(session, COMMAND_DEADLINE_MS, 'audio did not stop when push-to-talk was turned off', 'a second Enter turns push-to-talk off again');
        });
      },
    },
    {
      name: 'client: mute stops the audio, unmute resumes it, exit leaves',
      subject: 'client',
      async run(context) {
        const session = await startSession(context, 'Ada', ['--input', 'tone:440', '--output', 'null']);
        await thenExit(session, async () => {
          await expectAudioToFlow(session, 4, 'a few AUDIO frames of the tone', 'a -12 dBFS tone opens the voice gate: send it');
          session.client.type('mute\n');
          await expectAudioToStop(session, COMMAND_DEADLINE_MS, 'audio did not stop after the command mute', 'after "mute" on standard input, send no AUDIO at all');
          session.client.type('unmute\n');
          await expectAudioToFlow(session, audioCount(session), 'AUDIO again after the command unmute', 'after "unmute", send again (while the gate is open)');
        });
      },
    },
    {
      name: 'client: shows the users, who joins, who leaves and why, and who speaks; prints none of ESC, U+0085, U+2028 or U+202E from names raw',
      subject: 'client',
      async run(context) {
        const session = await startSession(context, 'Dee', ['--input', 'silence', '--output', 'null', '--duration', '1.5']);
        // The server's news, including names a hostile server could use to take over a terminal
        // (ESC), break a line where none is (U+0085 NEL, U+2028) or turn text around (U+202E).
        session.connection.send(
          Buffer.concat([
            users(['Ada', 'Bob', 'Dee', 'Mal\u001b[2J', 'Nel\u0085x', 'Lin\u2028e']),
            jsonFrameBytes(JOINED, { name: 'Carol' }),
            jsonFrameBytes(JOINED, { name: 'Eve\u001b[31m' }),
            jsonFrameBytes(JOINED, { name: 'Rev\u202egnp.exe' }),
            jsonFrameBytes(SPEAKING, { speakers: ['Bob'] }),
            jsonFrameBytes(LEFT, { name: 'Bob', reason: 'lost' }),
          ]),
        );
        const { result } = await finishSession(session, 12_000, 'when --duration 1.5 is over');
        const missing = ['Ada', 'Bob', 'Carol', 'lost'].filter((word) => !result.stdout.includes(word));
        expect(missing.length === 0, 'the client did not show all the news', {
          expected: 'standard output mentions Ada and Bob (USERS), Carol (JOINED), and that Bob left with the reason "lost"',
          actual: `missing: ${missing.join(', ')}; ${describeRun(result)}`,
          hint: 'print the user list when it arrives, and one line per JOINED, LEFT (with its reason) and SPEAKING',
        });
        // "who leaves and why": Bob is in USERS too, so the leave shows only as a line naming him with the reason.
        expect(/Bob[^\n]*lost|lost[^\n]*Bob/.test(result.stdout), 'the client did not show who left and why', {
          expected: 'a line naming Bob with the reason "lost" after LEFT {"name":"Bob","reason":"lost"} (the README\'s plain line: "left: Bob (lost)")',
          actual: describeRun(result),
          hint: 'on LEFT, print one line with the name and the reason',
        });
        // Bob is named by USERS and LEFT too: only a line about speaking shows that SPEAKING was read.
        expect(/speak[^\n]*Bob|Bob[^\n]*speak/i.test(result.stdout), 'the client did not show who speaks', {
          expected: 'a line naming Bob as speaking after SPEAKING {"speakers":["Bob"]} (the README\'s plain line: "speaking: Bob")',
          actual: describeRun(result),
          hint: 'on SPEAKING, print "speaking: NAMES" (or mark the speakers in the status line)',
        });
        // ESC only as the start of the server's sequences: a client may colour its own lines.
        const raw = [
          ...['\u001b[2J', '\u001b[31m'].filter((sequence) => result.stdout.includes(sequence) || result.stderr.includes(sequence)).map(() => codePointName('\u001b')),
          ...rawCharacters([result.stdout, result.stderr], ['\u0085', '\u2028', '\u202e']),
        ];
        expect(raw.length === 0, `the client printed ${[...new Set(raw)].join(', ')} from a name sent by the server raw`, {
          expected: 'names shown with ESC (U+001B), NEL (U+0085), the line separator U+2028 and the bidi override U+202E escaped (the reference writes \\x1b, \\x85, \\u2028, \\u202e), never raw',
          actual: `raw ${[...new Set(raw)].join(', ')} in the output; ${describeRun(result)}`,
          hint: 'never print a string from the server as it is: escape control characters (C0 and C1), line and paragraph separators (U+2028, U+2029) and bidirectional controls (U+202A-U+202E, U+2066-U+2069) before printing',
        });
      },
    },
    {
      name: `client: with its standard input closed it stays until --duration ${CLOSED_INPUT_SECONDS} is over, sending the tone's AUDIO (at least ${MIN_CLOSED_INPUT_FRAMES} frames), then BYE and exit 0`,
      subject: 'client',
      async run(context) {
        const session = await startSession(context, 'Ada', ['--input', 'tone:440', '--output', 'null', '--duration', String(CLOSED_INPUT_SECONDS)]);
        const welcomedAt = performance.now(); // WELCOME has just been sent: the client's --duration starts after this
        session.client.closeInput(); // as a script that gives the client no input (the README: that does not end it)
        const hint = 'the end of standard input is not a command to leave (scripts run the client with no input): stop reading commands, keep talking until --duration is over, then send BYE';
        let leftAfterMs = 0;
        await orStop(session, async () => {
          const how = await session.connection.waitFor(() => (session.sent().some((frame) => frame.type === BYE) ? 'BYE' : session.connection.isClosed ? 'closed' : undefined), CLOSED_INPUT_SECONDS * 1000 + 10_000, `BYE (0x04) when --duration ${CLOSED_INPUT_SECONDS} is over`, hint);
          leftAfterMs = performance.now() - welcomedAt;
          expect(how === 'BYE', 'the client closed the connection without BYE after its standard input closed', {
            expected: `AUDIO until --duration ${CLOSED_INPUT_SECONDS} is over, then BYE (the README: "The end of standard input does not end the client")`,
            actual: `closed ${Math.round(leftAfterMs)} ms after WELCOME; after WELCOME the client sent ${describeFrames(session.sent().slice(1), TYPE_NAMES)}`,
            hint,
          });
        });
        const { frames } = await finishSession(session, 5_000, `when --duration ${CLOSED_INPUT_SECONDS} is over`);
        const story = `BYE came ${Math.round(leftAfterMs)} ms after WELCOME; after WELCOME the client sent ${describeFrames(frames, TYPE_NAMES)}`;
        expect(leftAfterMs >= CLOSED_INPUT_SECONDS * 1000 - TIMER_SLACK_MS, 'the client left before --duration was over (its standard input was closed)', {
          expected: `BYE no sooner than --duration ${CLOSED_INPUT_SECONDS} s after WELCOME (the README: "The end of standard input does not end the client")`,
          actual: story,
          hint,
        });
        const sentAudio = frames.filter((frame) => frame.type === AUDIO).length;
        expect(sentAudio >= MIN_CLOSED_INPUT_FRAMES, 'the client stopped sending the tone when its standard input closed', {
          expected: `the tone (loud enough to open the voice gate) sent as one AUDIO frame per 20 ms until --duration is over: at least ${MIN_CLOSED_INPUT_FRAMES} of the ${(CLOSED_INPUT_SECONDS * 1000) / FRAME_MS} frames`,
          actual: story,
          hint,
        });
      },
    },
    {
      name: 'client: the command users prints the current list (after a join and a leave)',
      subject: 'client',
      async run(context) {
        const session = await startSession(context, 'Ada', ['--input', 'silence', '--output', 'null']);
        await thenExit(session, async () => {
          session.connection.send(Buffer.concat([users(['Ada', 'Bob']), jsonFrameBytes(JOINED, { name: 'Carol' }), jsonFrameBytes(LEFT, { name: 'Bob', reason: 'bye' })]));
          // The news is on screen once Bob is mentioned after Carol (his leave): only then ask.
          const newsShown = (stdout: string) => stdout.includes('Carol') && stdout.indexOf('Bob', stdout.indexOf('Carol')) !== -1;
          await session.client.waitForStdout(newsShown, 5_000, 'the news on standard output: Carol joins, then Bob leaves', 'print each JOINED and LEFT, and flush standard output after each line');
          const before = session.client.stdout.length;
          session.client.type('users\n');
          await session.client.waitForStdout((stdout) => stdout.slice(before).includes('Carol'), COMMAND_DEADLINE_MS, 'an answer to the command users that names Carol', 'on "users", print the current list of users (and flush standard output)');
          const answer = session.client.stdout.slice(before);
          expect(!answer.includes('Bob'), 'the list printed by users still has a user who left', {
            expected: 'the current list: Ada and Carol, without Bob (who left)',
            actual: `answer: ${JSON.stringify(answer)}`,
            hint: 'keep the list: USERS replaces it, JOINED adds a name, LEFT removes one',
          });
        });
      },
    },
  ];
}

export const clientChecks: Check[] = [
  ...multiuserClientChecks(STAGE_03),
  {
    name: 'client: the --output WAV is a recording: the mix it receives, in order and sample-exact, silence where nothing came, as long as the session',
    subject: 'client',
    async run(context) {
      const dir = mkdtempSync(joinPath(tmpdir(), 'multiuser-check-'));
      try {
        const output = joinPath(dir, 'mix.wav');
        const mix = distinctFrames(25, 31);
        const session = await startStageSession(STAGE_03, context, 'Ada', ['--input', 'silence', '--output', output, '--duration', String(RECORDED_SECONDS)]);
        // News between the audio frames: the client must keep both apart. A pause between the two
        // bursts: the recording must keep it as silence (and the time after the last frame too).
        session.connection.send(Buffer.concat([jsonFrameBytes(USERS, STAGE_03.users(['Ada', 'Bob'])), ...mix.slice(0, 10).map(audio), jsonFrameBytes(SPEAKING, { speakers: ['Bob'] })]));
        await sleep(300);
        session.connection.send(Buffer.concat(mix.slice(10).map(audio)));
        await finishSession(session, 12_000, `when --duration ${RECORDED_SECONDS} is over`);
        expectRecording(output, mix, RECORDED_SECONDS * 1000, 'the mix the server sent');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  },
  protocolIdClientCheck({ id: '03', hello: (name) => ({ name }), welcome: (name) => ({ name, sample_rate: SAMPLE_RATE, frame_samples: FRAME_SAMPLES }) }, ['--input', 'silence', '--output', 'null']),
  controlLimitClientCheck({ usersType: USERS, start: (context, name) => startStageSession(STAGE_03, context, name, ['--input', 'silence', '--output', 'null']), users: (names) => ({ users: names }), usersCommand: 'users' }),
];
