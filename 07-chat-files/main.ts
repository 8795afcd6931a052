// npm run stage:06 -- server | client | (nothing: a local demo through a lossy UDP path)
import { rmSync } from 'node:fs';
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
import { startLossyRelay } from '#shared/net/lossy-relay.ts';
import { DEFAULT_BITRATE_KBPS, DEFAULT_ROOM, MAX_BITRATE_KBPS, MIN_BITRATE_KBPS, parseUdpVia, runClient } from './client.ts';
import { defaultDownloadsFolder } from './downloads.ts';
import { startServer } from './server.ts';
import { countersLine } from './udp-voice.ts';
import { silentDisplay } from './terminal-display.ts';

const DEMO_SECONDS_WITHOUT_SPEAKER = 7;
/** Everyone meets in this room: the server forwards each robot's packets to you, your client mixes them. */
const DEMO_ROOM = 'udp-demo';
/** Your client's datagrams (both ways) go through a relay that loses this much, with a fixed seed: the same losses every run. */
const DEMO_LOSS_PERCENT = 5;
const DEMO_SEED = 6;
/** The demo types "users" for you this long after you join: the list shows who is who. */
const USERS_AFTER_SECONDS = 1;

/** A demo user who "talks" on a tone in a room: [seconds of silence, seconds of tone, ...], then leaves. */
interface Robot {
  name: string;
  room: string;
  toneHz: number;
  joinAfterMs: number;
  script: number[];
}

// One talks, then both at once, then the other alone: your client decodes the two streams
// and adds them up itself, so both tones keep their full level while they overlap.
const ROBOTS: Robot[] = [
  { name: 'robot-low', room: DEMO_ROOM, toneHz: 300, joinAfterMs: 500, script: [0.3, 3.0] },
  { name: 'robot-high', room: DEMO_ROOM, toneHz: 500, joinAfterMs: 700, script: [1.8, 3.0] },
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
  console.log('Stage 06 demo: voice over UDP. A server and three users on this machine, in one room:');
  console.log('robot-low talks on a 300 Hz tone, then robot-high on a 500 Hz tone joins in, then robot-low stops.');
  console.log(`The robots' voice goes to the server as UDP datagrams; YOUR client's datagrams pass a relay that loses`);
  console.log(`${DEMO_LOSS_PERCENT} % of them each way (seed ${DEMO_SEED}), with 20-30 ms of delay. Your client's jitter buffer rebuilds a single lost`);
  console.log('packet from the FEC copy in the next one and conceals bursts; its stats at the end say how many of each.');
  const devices = probeAudioDevices();
  const hasMic = devices.some((device) => device.maxInputChannels > 0);
  const hasSpeaker = devices.some((device) => device.maxOutputChannels > 0);
  const input = hasMic ? 'mic' : 'silence';
  const output = hasSpeaker ? 'speaker' : join(tmpdir(), 'stage-06-udp-demo.wav');
  console.log(hasMic ? 'input: your microphone, sent as Opus while you speak' : 'input: no microphone found, so you only listen');
  console.log(
    hasSpeaker
      ? 'output: your speaker; the robots leave after a few seconds: then type exit (or Ctrl+C)'
      : `output: no speaker found, so what you hear is recorded to ${output} for ${DEMO_SECONDS_WITHOUT_SPEAKER} seconds`,
  );
  console.log('');

  const user = userInfo().username;
  const name = nameProblem(user) === null && !ROBOTS.some((robot) => robot.name === user) ? user : 'student';
  const voices = ROBOTS.map((robot) => join(tmpdir(), `stage-06-${robot.name}-${process.pid}.wav`));
  ROBOTS.forEach((robot, i) => writeRobotVoice(robot, voices[i]!));
  const server = await startServer('127.0.0.1', 0);
  const port = server.address.port;
  // The server's UDP port is its TCP port (the README's default), so the relay knows where to send.
  const relay = await startLossyRelay({ target: { host: '127.0.0.1', port }, lossPercent: DEMO_LOSS_PERCENT, delayMs: 20, jitterMs: 10, seed: DEMO_SEED });
  try {
    const you = runClient({
      name,
      room: DEMO_ROOM,
      host: '127.0.0.1',
      port,
      input,
      output,
      durationSeconds: hasSpeaker ? undefined : DEMO_SECONDS_WITHOUT_SPEAKER,
      scriptedCommands: [{ afterSeconds: USERS_AFTER_SECONDS, command: 'users' }],
      udpVia: { host: '127.0.0.1', port: relay.port },
    });
    const robots = ROBOTS.map(async (robot, i) => {
      await sleep(robot.joinAfterMs); // a moment apart, so you see each one join
      // Quiet: their news is yours too. Without --duration they leave when their WAV file ends.
      await runClient({ name: robot.name, room: robot.room, host: '127.0.0.1', port, input: voices[i]!, output: 'null', commands: false, display: silentDisplay });
    });
    await Promise.all([you, ...robots]);
  } finally {
    const { toServer, toClient } = relay.counters;
    console.log(`\nThe relay lost ${toServer.dropped} of your ${toServer.received} datagrams to the server and ${toClient.dropped} of ${toClient.received} to you.`);
    await relay.close();
    await server.close();
    for (const voice of voices) rmSync(voice, { force: true });
  }
  if (!hasSpeaker) console.log(`What you heard is in ${output}: the low tone, both tones together, then the high one, without holes.`);
  console.log('\nTry it yourself in three terminals (or on three machines: use the server\'s address as --host):');
  console.log('  npx voice-chat 06 server');
  console.log(`  npx tsx tools/lossy-relay.ts --to 127.0.0.1:8888 --loss ${DEMO_LOSS_PERCENT}      # optional: a lossy path (prints its port)`);
  // Options that work on THIS machine: without a microphone or speaker, mic and speaker would fail.
  const audioHere = `${hasMic ? '' : ' --input tone:440'}${hasSpeaker ? '' : ' --output ada.wav'}`;
  console.log(`  npx voice-chat 06 client --name Ada --room game-42${audioHere}      # add --udp-via 127.0.0.1:RELAYPORT for the lossy path`);
  console.log('  npx voice-chat 06 client --name Bob --room game-42 --input tone:440 --output mix.wav --duration 10 --tcp');
}

await stageCommandLine('npm run stage:06 --', 'Stage 06: voice over UDP, control over TCP.')
  .command(
    'server',
    'run the server: users in rooms; each Opus packet is forwarded at once to the others in the room',
    (y) =>
      serverOptions(y).option('udp-port', {
        type: 'string', // parsed by parsePort, as --port
        coerce: parsePort,
        describe: 'UDP port for voice datagrams (default: the same number as the TCP port; 0 lets the system choose)',
      }),
    (args) =>
      runMain(async () => {
        const server = await startServer(args.host, args.port, { udpPort: args.udpPort });
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
    'join a room with your name, send your voice as Opus while you speak, decode and mix the others there',
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
        }),
      ),
  )
  .command('$0', 'run a local demo (a server, two robots talking over each other, and your client mixing them)', (y) => y, () => runMain(runDemo))
  .parseAsync();
