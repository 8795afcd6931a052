// npm run stage:04 -- server | client | (nothing: a local demo)
import { rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { probeAudioDevices } from '#shared/audio/device-probe.ts';
import { FRAME_BYTES, FRAME_MS } from '#shared/audio/format.ts';
import { ToneGenerator } from '#shared/audio/tone-source.ts';
import { WavFileSink } from '#shared/audio/wav-sink.ts';
import { clientOptions, parseDuration, serverOptions, stageCommandLine } from '#shared/cli.ts';
import { runMain } from '#shared/user-error.ts';
import { nameProblem } from '#shared/user-name.ts';
import { DEFAULT_GATE } from '#shared/voice-gate.ts';
import { DEFAULT_ROOM, runClient } from './client.ts';
import { startServer } from './server.ts';
import { silentDisplay } from './terminal-display.ts';

const DEMO_SECONDS_WITHOUT_SPEAKER = 7;
/** You start in the first robot's room; the demo moves you to the second's this long after you join. */
const [FIRST_ROOM, SECOND_ROOM] = ['red', 'blue'];
const ROOMS_AFTER_SECONDS = 2;
const MOVE_AFTER_SECONDS = 3.5;

/** A demo user who "talks" on a tone in a room: [seconds of silence, seconds of tone, ...], then leaves. */
interface Robot {
  name: string;
  room: string;
  toneHz: number;
  joinAfterMs: number;
  script: number[];
}

// Both talk at the same time, each in its own room: before the move you hear only the low tone,
// after it only the high one. They leave when they are done.
const ROBOTS: Robot[] = [
  { name: 'robot-red', room: FIRST_ROOM, toneHz: 300, joinAfterMs: 500, script: [0.3, 4.5] },
  { name: 'robot-blue', room: SECOND_ROOM, toneHz: 500, joinAfterMs: 700, script: [0.2, 1.5, 0.5, 3.5] },
];

/** Writes a robot's script as a WAV file: the voice gate then opens and closes on it like on speech. */
function writeRobotVoice(robot: Robot, path: string): void {
  const wav = new WavFileSink(path);
  const tone = new ToneGenerator(robot.toneHz);
  robot.script.forEach((seconds, i) => {
    const talking = i % 2 === 1;
    for (let frame = 0; frame < Math.round((seconds * 1000) / FRAME_MS); frame++) {
      wav.write(talking ? tone.nextFrame() : Buffer.alloc(FRAME_BYTES));
    }
  });
  void wav.close();
}

/** With no sub-command: a server and three users on this machine, in two rooms: two robots and you. */
async function runDemo(): Promise<void> {
  console.log('Stage 04 demo: rooms. A server and three users on this machine: robot-red talks on a');
  console.log(`300 Hz tone in room "${FIRST_ROOM}", robot-blue on a 500 Hz tone in room "${SECOND_ROOM}", at the same time.`);
  console.log(`You start in room "${FIRST_ROOM}": you hear and see only that room, so only the low tone.`);
  console.log(`After ${MOVE_AFTER_SECONDS} s the demo types "join ${SECOND_ROOM}" for you: you move without reconnecting,`);
  console.log('and from then on you hear only the high tone. (It also types "rooms" to list every room.)');
  const devices = probeAudioDevices();
  const hasMic = devices.some((device) => device.maxInputChannels > 0);
  const hasSpeaker = devices.some((device) => device.maxOutputChannels > 0);
  const input = hasMic ? 'mic' : 'silence';
  const output = hasSpeaker ? 'speaker' : join(tmpdir(), 'stage-04-rooms-demo.wav');
  console.log(hasMic ? 'input: your microphone, sent while you speak' : 'input: no microphone found, so you only listen');
  console.log(
    hasSpeaker
      ? `output: your speaker; the robots leave after a few seconds: try rooms, join ${FIRST_ROOM}, then exit (or Ctrl+C)`
      : `output: no speaker found, so what you hear is recorded to ${output} for ${DEMO_SECONDS_WITHOUT_SPEAKER} seconds`,
  );
  console.log('');

  const user = userInfo().username;
  const name = nameProblem(user) === null && !ROBOTS.some((robot) => robot.name === user) ? user : 'student';
  const voices = ROBOTS.map((robot) => join(tmpdir(), `stage-04-${robot.name}-${process.pid}.wav`));
  ROBOTS.forEach((robot, i) => writeRobotVoice(robot, voices[i]!));
  const server = await startServer('127.0.0.1', 0);
  const port = server.address.port;
  try {
    const you = runClient({
      name,
      room: FIRST_ROOM,
      host: '127.0.0.1',
      port,
      input,
      output,
      durationSeconds: hasSpeaker ? undefined : DEMO_SECONDS_WITHOUT_SPEAKER,
      scriptedCommands: [
        { afterSeconds: ROOMS_AFTER_SECONDS, command: 'rooms' },
        { afterSeconds: MOVE_AFTER_SECONDS, command: `join ${SECOND_ROOM}` },
      ],
    });
    const robots = ROBOTS.map(async (robot, i) => {
      await sleep(robot.joinAfterMs); // a moment apart, so you see each one join
      // Quiet: their news is yours too. Without --duration they leave when their WAV file ends.
      await runClient({ name: robot.name, room: robot.room, host: '127.0.0.1', port, input: voices[i]!, output: 'null', commands: false, display: silentDisplay });
    });
    await Promise.all([you, ...robots]);
  } finally {
    await server.close();
    for (const voice of voices) rmSync(voice, { force: true });
  }
  if (!hasSpeaker) console.log(`\nWhat you heard is in ${output}: the low tone, then (after the move) the high one.`);
  console.log('\nTry it yourself in three terminals (or on three machines: use the server\'s address as --host):');
  console.log('  npx voice-chat 04 server');
  // Options that work on THIS machine: without a microphone or speaker, mic and speaker would fail.
  const audioHere = `${hasMic ? '' : ' --input tone:440'}${hasSpeaker ? '' : ' --output ada.wav'}`;
  console.log(`  npx voice-chat 04 client --name Ada --room game-42${audioHere}      (then type: rooms, join lobby)`);
  console.log('  npx voice-chat 04 client --name Bob --room game-42 --input tone:440 --output mix.wav --duration 10');
}

await stageCommandLine('npm run stage:04 --', 'Stage 04: rooms. Each user hears and sees only the room they are in.')
  .command(
    'server',
    'run the server: users in rooms, each hears the mix of the others in their room',
    (y) => serverOptions(y),
    (args) => runMain(async () => void (await startServer(args.host, args.port))),
  )
  .command(
    'client',
    'join a room with your name, send your voice while you speak and play the mix of the others there',
    (y) =>
      clientOptions(y)
        .option('room', {
          type: 'string',
          default: DEFAULT_ROOM,
          describe: 'the room to join: 1-64 letters, digits, "-", "_", "." or ":" (type join ROOM to move later)',
        })
        .option('input', {
          type: 'string',
          default: 'mic',
          describe: 'what to send: mic, tone:HZ, silence or FILE.wav',
        })
        .option('output', {
          type: 'string',
          default: 'speaker',
          describe: 'where the mix goes: speaker, null or FILE.wav',
        })
        .option('duration', {
          type: 'string', // parsed by parseDuration: yargs' number type would turn "abc" into NaN
          coerce: parseDuration,
          describe: 'leave cleanly after this many seconds (default: until exit or Ctrl+C, or the end of a FILE input)',
        })
        .option('gate-open-db', {
          type: 'number',
          default: DEFAULT_GATE.openDb,
          describe: 'the voice gate opens (sending starts) when the level reaches this many dBFS',
        })
        .option('gate-close-db', {
          type: 'number',
          default: DEFAULT_GATE.closeDb,
          describe: 'the open gate starts closing when the level falls below this many dBFS',
        })
        .option('gate-hangover-ms', {
          type: 'number',
          default: DEFAULT_GATE.hangoverMs,
          describe: 'the gate stays open this long after the level falls, so word endings are not cut',
        })
        .option('ptt', {
          type: 'boolean',
          default: false,
          describe: 'push-to-talk instead of the gate: send only while it is on (Enter turns it on and off)',
        }),
    (args) =>
      runMain(() =>
        runClient({
          name: args.name,
          room: args.room,
          host: args.host,
          port: args.port,
          input: args.input,
          output: args.output,
          durationSeconds: args.duration,
          gate: { openDb: args.gateOpenDb, closeDb: args.gateCloseDb, hangoverMs: args.gateHangoverMs },
          pushToTalk: args.ptt,
        }),
      ),
  )
  .command('$0', 'run a local demo (a server, two robots talking in two rooms, and you moving between them)', (y) => y, () => runMain(runDemo))
  .parseAsync();
