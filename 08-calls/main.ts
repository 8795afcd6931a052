// npm run stage:07 -- server | client | (nothing: a local demo of chat lines and a file in a room)
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { probeAudioDevices } from '#shared/audio/device-probe.ts';
import { FRAME_BYTES, FRAME_MS } from '#shared/audio/format.ts';
import { ToneGenerator } from '#shared/audio/tone-source.ts';
import { WavFileSink } from '#shared/audio/wav-sink.ts';
import { clientOptions, parseDuration, parsePort, serverOptions, stageCommandLine } from '#shared/cli.ts';
import { runMain } from '#shared/user-error.ts';
import { nameProblem } from '#shared/user-name.ts';
import { DEFAULT_GATE } from '#shared/voice-gate.ts';
import { DEFAULT_BITRATE_KBPS, DEFAULT_ROOM, MAX_BITRATE_KBPS, MIN_BITRATE_KBPS, parseUdpVia, runClient } from './client.ts';
import { defaultDownloadsFolder } from './downloads.ts';
import { DEFAULT_RING_TIMEOUT_S, parseRingTimeout, startServer } from './server.ts';
import { countersLine } from './udp-voice.ts';
import { silentDisplay } from './terminal-display.ts';

/** Your client leaves by itself after this long (the robots are done by then). */
const DEMO_SECONDS = 7;
/** Everyone meets in this room: the robots' lines, files and voices reach you there. */
const DEMO_ROOM = 'chat-demo';
/** The demo types "/users" for you this long after you join: the list shows who is who. */
const USERS_AFTER_SECONDS = 1.5;

/** A demo user in the room: a tone as voice, then a chat line and (for one) a file, then it leaves. */
interface Robot {
  name: string;
  toneHz: number;
  joinAfterMs: number;
  /** [seconds of silence, seconds of tone, ...] */
  script: number[];
  say: string[];
  /** A file the robot writes and then sends (its name and text). */
  file?: { name: string; text: string };
}

const ROBOTS: Robot[] = [
  {
    name: 'robot-low',
    toneHz: 300,
    joinAfterMs: 500,
    script: [0.3, 2.0, 1.0],
    say: ['hello from robot-low: I am sending you a file'],
    file: { name: 'notes from robot-low.txt', text: 'Stage 07: this file came in 16 KiB chunks, paced by the server\'s credit, and was checked with SHA-256.\n' },
  },
  { name: 'robot-high', toneHz: 500, joinAfterMs: 800, script: [1.0, 2.0, 0.5], say: ['robot-high here: type a line to chat, /send FILE to share one'] },
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

/** With no sub-command: a server and three users on this machine, in one room: two robots and you. */
async function runDemo(): Promise<void> {
  console.log('Stage 07 demo: text chat and files in a room. A server and three users on this machine:');
  console.log('robot-low and robot-high talk on tones and each send a chat line; robot-low sends you a small file.');
  console.log('The file is offered with its size and SHA-256, sent in chunks within the server\'s credit, written to a');
  console.log('hidden part file in your downloads folder, checked, and only then given its name.');
  const devices = probeAudioDevices();
  const hasMic = devices.some((device) => device.maxInputChannels > 0);
  const hasSpeaker = devices.some((device) => device.maxOutputChannels > 0);
  const input = hasMic ? 'mic' : 'silence';
  const output = hasSpeaker ? 'speaker' : 'null';
  const work = mkdtempSync(join(tmpdir(), 'stage-07-demo-'));
  const downloads = join(work, 'downloads');
  console.log(hasMic ? 'input: your microphone, sent as Opus while you speak' : 'input: no microphone found, so you only listen');
  console.log(hasSpeaker ? 'output: your speaker' : 'output: no speaker found, so the voices are decoded and discarded (the chat and the file are the point here)');
  console.log(`downloads: ${downloads} (a temporary folder, removed at the end; your own client uses --downloads DIR)`);
  console.log(`Type a line to chat, or a command (/help); your client leaves by itself after ${DEMO_SECONDS} seconds.`);
  console.log('');

  const user = userInfo().username;
  const name = nameProblem(user) === null && !ROBOTS.some((robot) => robot.name === user) ? user : 'student';
  const voices = ROBOTS.map((robot) => join(work, `${robot.name}.wav`));
  ROBOTS.forEach((robot, i) => writeRobotVoice(robot, voices[i]!));
  const files = ROBOTS.map((robot) => {
    if (!robot.file) return [];
    const path = join(work, robot.file.name);
    writeFileSync(path, robot.file.text);
    return [path];
  });
  const server = await startServer('127.0.0.1', 0);
  const port = server.address.port;
  try {
    const you = runClient({
      name,
      room: DEMO_ROOM,
      host: '127.0.0.1',
      port,
      input,
      output,
      downloads,
      durationSeconds: DEMO_SECONDS,
      scriptedCommands: [{ afterSeconds: USERS_AFTER_SECONDS, command: '/users' }],
    });
    const robots = ROBOTS.map(async (robot, i) => {
      await sleep(robot.joinAfterMs); // a moment apart, so you see each one join
      // Quiet: their news is yours too. They leave when their WAV file ends; a robot sending a
      // file stays until its transfer is over (--duration), so the file is complete when it goes.
      await runClient({
        name: robot.name,
        room: DEMO_ROOM,
        host: '127.0.0.1',
        port,
        input: voices[i]!,
        output: 'null',
        commands: false,
        display: silentDisplay,
        downloads: join(work, `${robot.name}-downloads`),
        noFiles: true,
        sayLines: robot.say,
        sendFiles: files[i],
        durationSeconds: robot.script.reduce((sum, seconds) => sum + seconds, 0) + 0.5,
      });
    });
    await Promise.all([you, ...robots]);
  } finally {
    await server.close();
  }
  const received = readdirSync(downloads);
  for (const file of received) console.log(`\nin ${downloads}: "${file}": ${JSON.stringify(readFileSync(join(downloads, file), 'utf8'))}`);
  if (received.length === 0) console.log(`\nnothing arrived in ${downloads}`);
  rmSync(work, { recursive: true, force: true });
  console.log('\nTry it yourself in three terminals (or on three machines: use the server\'s address as --host):');
  console.log('  npx voice-chat 07 server');
  // Options that work on THIS machine: without a microphone or speaker, mic and speaker would fail.
  const audioHere = `${hasMic ? '' : ' --input silence'}${hasSpeaker ? '' : ' --output null'}`;
  console.log(`  npx voice-chat 07 client --name Ada --room game-42${audioHere}      # then type a line, or /send FILE`);
  console.log(`  npx voice-chat 07 client --name Bob --room game-42${audioHere} --downloads ./bob-downloads`);
}

await stageCommandLine('npm run stage:07 --', 'Stage 07: text chat and file sharing in rooms, beside voice over UDP.')
  .command(
    'server',
    'run the server: users in rooms (each Opus packet forwarded at once to the others in the room), and calls between two users anywhere on it',
    (y) =>
      serverOptions(y)
        .option('udp-port', {
          type: 'string', // parsed by parsePort, as --port
          coerce: parsePort,
          describe: 'UDP port for voice datagrams (default: the same number as the TCP port; 0 lets the system choose)',
        })
        .option('ring-timeout', {
          type: 'string', // parsed by parseRingTimeout, as --port
          default: String(DEFAULT_RING_TIMEOUT_S),
          coerce: parseRingTimeout,
          describe: 'seconds a call rings before it ends unanswered (CALL_END no_answer); tests use 2',
        }),
    (args) =>
      runMain(async () => {
        const server = await startServer(args.host, args.port, { udpPort: args.udpPort, ringTimeoutS: args.ringTimeout });
        // The datagram counters once more at exit (Ctrl+C, kill), then end as the signal would.
        for (const signal of ['SIGINT', 'SIGTERM'] as const) {
          process.once(signal, () => {
            console.log(countersLine(server.counters));
            process.kill(process.pid, signal);
          });
        }
      }),
  )
  .command(
    'client',
    'join a room with your name: talk (Opus, decoded and mixed by your client), chat, and send and receive files',
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
          describe: 'where the mix of the others goes (your client mixes it): speaker, null or FILE.wav',
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
        .option('bitrate', {
          type: 'number',
          default: DEFAULT_BITRATE_KBPS,
          describe: `the Opus bitrate of your voice in kb/s, ${MIN_BITRATE_KBPS}-${MAX_BITRATE_KBPS} (24: ~55-byte packets every 20 ms)`,
        })
        .option('ptt', {
          type: 'boolean',
          default: false,
          describe: 'push-to-talk instead of the gate: send only while it is on (Enter turns it on and off)',
        })
        .option('tcp', {
          type: 'boolean',
          default: false,
          describe: 'never use UDP: voice over the TCP connection, as in stage 05 (for networks that block UDP, and to compare)',
        })
        .option('udp-via', {
          type: 'string',
          describe: 'send the datagrams to HOST:PORT (a relay such as tools/lossy-relay.ts) instead of the server',
        })
        .option('downloads', {
          type: 'string',
          describe: `where received files land (default ${defaultDownloadsFolder()}; created if missing)`,
        })
        .option('no-files', {
          type: 'boolean',
          default: false,
          describe: 'decline every file offered to you (you are still told what was offered)',
        })
        .option('send', {
          type: 'string',
          array: true,
          describe: 'offer this file to the room as soon as you join (repeatable; for scripts and tests)',
        })
        .option('say', {
          type: 'string',
          array: true,
          describe: 'send this chat line to the room as soon as you join (repeatable; for scripts and tests)',
        })
        .option('call', {
          type: 'string',
          describe: 'call this user as soon as you join (looked up once a second for up to 10 s while not online)',
        })
        .option('auto-accept', {
          type: 'boolean',
          default: false,
          describe: 'accept every call at once (scripts, tests, robots)',
        })
        .option('relay', {
          type: 'boolean',
          default: false,
          describe: 'every call goes through the server: your address is never given to a peer (relay_only)',
        })
        .option('block-direct', {
          type: 'boolean',
          default: false,
          describe: 'for tests: drop every direct datagram from a peer, as a filtering NAT would, so calls fall back to the relay',
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
          bitrateKbps: args.bitrate,
          tcpOnly: args.tcp,
          udpVia: args.udpVia === undefined ? undefined : parseUdpVia(args.udpVia),
          downloads: args.downloads,
          noFiles: args.noFiles,
          sendFiles: args.send,
          sayLines: args.say,
          callName: args.call,
          autoAccept: args.autoAccept,
          relay: args.relay,
          blockDirect: args.blockDirect,
        }),
      ),
  )
  .command('$0', 'run a local demo (a server, two robots sending chat lines and a file, and your client)', (y) => y, () => runMain(runDemo))
  .parseAsync();
