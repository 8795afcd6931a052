// npm run stage:08 -- server | client | (nothing: a local demo of a call, direct between two clients)
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { probeAudioDevices } from '#shared/audio/device-probe.ts';
import { FRAME_SAMPLES } from '#shared/audio/format.ts';
import { DEFAULT_TONE_AMPLITUDE } from '#shared/audio/tone-source.ts';
import { WAV_HEADER_BYTES } from '#shared/audio/wav-sink.ts';
import { clientOptions, parseDuration, parsePort, serverOptions, stageCommandLine } from '#shared/cli.ts';
import { runMain } from '#shared/user-error.ts';
import { nameProblem, printable } from '#shared/user-name.ts';
import { DEFAULT_GATE } from '#shared/voice-gate.ts';
import { DEFAULT_BITRATE_KBPS, DEFAULT_ROOM, MAX_BITRATE_KBPS, MIN_BITRATE_KBPS, parseUdpVia, runClient } from './client.ts';
import { defaultDownloadsFolder } from './downloads.ts';
import { DEFAULT_RING_TIMEOUT_S, parseRingTimeout, startServer } from './server.ts';
import { countersLine } from './udp-voice.ts';
import { type ClientDisplay, silentDisplay } from './terminal-display.ts';

/** Your client leaves by itself after this long; the demo hangs up for you a second before. */
const DEMO_SECONDS = 7;
const HANGUP_AFTER_SECONDS = 6;
/** The robot you call: in a room of its own (a call goes anywhere on the server), answering every call. */
const CALLEE = { name: 'robot', room: 'robot-room', toneHz: 500 };
/** A third user, who tries to call the robot while you talk with it, and hears that it is busy. */
const THIRD = { name: 'robot-cat', room: DEFAULT_ROOM, callAfterMs: 2500 };
/** Your voice when there is no microphone: a tone the robot's recording can be measured on. */
const YOUR_TONE_HZ = 300;

/** A robot's display: only its call lines, marked with its name (its other news would be noise). */
function robotDisplay(name: string): ClientDisplay {
  return {
    ...silentDisplay,
    line: (text) => {
      if (/^(not called|calling |call \d)/u.test(text)) console.log(printable(`  [${name}] ${text}`));
    },
  };
}

/** The level of a recording where it is not silent: seconds of sound and their RMS in dBFS (a WAV of the course's format). */
function measureRecording(path: string): { seconds: number; dbfs: number } {
  const data = readFileSync(path).subarray(WAV_HEADER_BYTES);
  let frames = 0;
  let sumSquares = 0;
  for (let offset = 0; offset + FRAME_SAMPLES * 2 <= data.length; offset += FRAME_SAMPLES * 2) {
    let frameSquares = 0;
    for (let i = 0; i < FRAME_SAMPLES; i++) frameSquares += data.readInt16LE(offset + 2 * i) ** 2;
    if (Math.sqrt(frameSquares / FRAME_SAMPLES) < 100) continue; // silence (-50 dBFS and below): before and after the call
    frames++;
    sumSquares += frameSquares;
  }
  const rms = frames === 0 ? 0 : Math.sqrt(sumSquares / (frames * FRAME_SAMPLES));
  return { seconds: (frames * FRAME_SAMPLES) / 48_000, dbfs: rms === 0 ? -Infinity : 20 * Math.log10(rms / 32768) };
}

/** With no sub-command: a server and three users on this machine; you call a robot, directly, peer to peer. */
async function runDemo(): Promise<void> {
  console.log('Stage 08 demo: a call between two users, peer to peer. A server and three users on this machine:');
  console.log(`you (in room ${DEFAULT_ROOM}) call "${CALLEE.name}" (in room ${CALLEE.room}), which answers at once. The server only introduces you:`);
  console.log('it tells each of you the other\'s UDP address and a token for the call; both clients send probes first, and once');
  console.log('each has heard the other the voice goes directly between the two (or through the server after 3 s without).');
  console.log(`While you talk, ${THIRD.name} tries to call ${CALLEE.name} too. The demo hangs up for you after ${HANGUP_AFTER_SECONDS} s.`);
  const devices = probeAudioDevices();
  const hasMic = devices.some((device) => device.maxInputChannels > 0);
  const hasSpeaker = devices.some((device) => device.maxOutputChannels > 0);
  const work = mkdtempSync(join(tmpdir(), 'stage-08-demo-'));
  const yourRecording = join(work, 'you-heard.wav');
  const robotRecording = join(work, `${CALLEE.name}-heard.wav`);
  const input = hasMic ? 'mic' : `tone:${YOUR_TONE_HZ}`;
  const output = hasSpeaker ? 'speaker' : yourRecording;
  console.log(hasMic ? 'input: your microphone' : `input: no microphone found, so your voice is a ${YOUR_TONE_HZ} Hz tone`);
  console.log(hasSpeaker ? 'output: your speaker' : `output: no speaker found, so what you hear is written to ${yourRecording} and measured at the end`);
  console.log(`Type /stats for the path's numbers, /hangup to end the call sooner (or press Ctrl+C).`);
  console.log('');

  const user = userInfo().username;
  const name = nameProblem(user) === null && user !== CALLEE.name && user !== THIRD.name ? user : 'student';
  const server = await startServer('127.0.0.1', 0);
  const port = server.address.port;
  const common = { host: '127.0.0.1', port, downloads: join(work, 'downloads'), noFiles: true };
  try {
    const robot = runClient({
      ...common,
      name: CALLEE.name,
      room: CALLEE.room,
      input: `tone:${CALLEE.toneHz}`,
      output: robotRecording,
      autoAccept: true,
      commands: false,
      display: robotDisplay(CALLEE.name),
      durationSeconds: DEMO_SECONDS + 0.5,
    });
    await sleep(300); // the robot is online before you look it up (--call would also retry once a second)
    const you = runClient({
      ...common,
      name,
      input,
      output,
      callName: CALLEE.name,
      durationSeconds: DEMO_SECONDS,
      scriptedCommands: [{ afterSeconds: HANGUP_AFTER_SECONDS, command: '/hangup' }],
    });
    const third = sleep(THIRD.callAfterMs).then(() =>
      runClient({ ...common, name: THIRD.name, room: THIRD.room, input: 'silence', output: 'null', callName: CALLEE.name, commands: false, display: robotDisplay(THIRD.name), durationSeconds: 1 }),
    );
    await Promise.all([you, robot, third]);
  } finally {
    await server.close();
  }
  console.log('');
  // A sine of amplitude A has an RMS of A / sqrt(2): what the tone generator sends, in dBFS.
  const toneDbfs = (20 * Math.log10(DEFAULT_TONE_AMPLITUDE / Math.SQRT2)).toFixed(1);
  const heard = measureRecording(robotRecording);
  console.log(`${CALLEE.name} recorded your voice: ${heard.seconds.toFixed(1)} s at ${heard.dbfs.toFixed(1)} dBFS${hasMic ? '' : ` (the ${YOUR_TONE_HZ} Hz tone you sent: ${toneDbfs} dBFS)`}`);
  if (!hasSpeaker) {
    const yours = measureRecording(yourRecording);
    console.log(`you recorded ${CALLEE.name}'s voice: ${yours.seconds.toFixed(1)} s at ${yours.dbfs.toFixed(1)} dBFS (its ${CALLEE.toneHz} Hz tone: ${toneDbfs} dBFS)`);
  }
  rmSync(work, { recursive: true, force: true });
  console.log('\nTry it yourself in three terminals (or on three machines: use the server\'s address as --host):');
  console.log('  npx voice-chat 08 server');
  // Options that work on THIS machine: without a microphone or speaker, mic and speaker would fail.
  const audioHere = `${hasMic ? '' : ' --input tone:500'}${hasSpeaker ? '' : ' --output bob.wav'}`;
  console.log(`  npx voice-chat 08 client --name Bob --auto-accept${audioHere}`);
  console.log(`  npx voice-chat 08 client --name Ada --call Bob${hasMic ? '' : ' --input tone:300'}${hasSpeaker ? '' : ' --output ada.wav'}      # or type /call Bob`);
}

await stageCommandLine('npm run stage:08 --', 'Stage 08: direct calls between two users, peer to peer (relayed by the server when no direct path opens), beside rooms, chat and files.')
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
    'join a room with your name: talk (Opus, decoded and mixed by your client), chat, send and receive files, and call anyone on the server (/call NAME)',
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
  .command('$0', 'run a local demo (a server, your client calling a robot directly, and a third user who finds it busy)', (y) => y, () => runMain(runDemo))
  .parseAsync();
