// npm run stage:02 -- server | client | (nothing: a local demo)
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { probeAudioDevices } from '#shared/audio/device-probe.ts';
import { clientOptions, parseDuration, serverOptions, stageCommandLine } from '#shared/cli.ts';
import { runMain } from '#shared/user-error.ts';
import { nameProblem } from '#shared/user-name.ts';
import { runClient } from './client.ts';
import { startServer } from './server.ts';

const DEMO_SECONDS_WITHOUT_SPEAKER = 5;

/** With no sub-command: a server and a client on this machine, with whatever audio devices exist. */
async function runDemo(): Promise<void> {
  console.log('Stage 02 demo: voice echo. A server and a client on this machine; the server sends');
  console.log('every 20 ms audio frame straight back, so you hear yourself.');
  const devices = probeAudioDevices();
  const hasMic = devices.some((device) => device.maxInputChannels > 0);
  const hasSpeaker = devices.some((device) => device.maxOutputChannels > 0);
  const input = hasMic ? 'mic' : 'tone:440';
  const output = hasSpeaker ? 'speaker' : join(tmpdir(), 'stage-02-echo-demo.wav');
  console.log(hasMic ? 'input: your microphone' : 'input: no microphone found, so the client sends a 440 Hz tone');
  console.log(
    hasSpeaker
      ? `output: your speaker${hasMic ? ' (wear headphones, or the echo feeds back into the microphone)' : ''}`
      : `output: no speaker found, so the echo is recorded to ${output} for ${DEMO_SECONDS_WITHOUT_SPEAKER} seconds`,
  );

  const user = userInfo().username;
  const name = nameProblem(user) === null ? user : 'student';
  const server = await startServer('127.0.0.1', 0);
  try {
    await runClient({
      name,
      host: '127.0.0.1',
      port: server.address.port,
      input,
      output,
      durationSeconds: hasSpeaker ? undefined : DEMO_SECONDS_WITHOUT_SPEAKER,
    });
  } finally {
    await server.close();
  }
  if (!hasSpeaker) console.log(`\nThe echo is in ${output}: play it with any audio player.`);
  console.log('\nTry it yourself in two terminals (or on two machines: use the server\'s address as --host):');
  console.log('  npx voice-chat 02 server');
  // Options that work on THIS machine: without a microphone or speaker, mic and speaker would fail.
  const audioHere = `${hasMic ? '' : ' --input tone:440'}${hasSpeaker ? '' : ' --output ada.wav'}`;
  console.log(`  npx voice-chat 02 client --name Ada${audioHere}`);
  console.log('  npx voice-chat 02 client --name Ada --input tone:440 --output echo.wav --duration 3');
}

await stageCommandLine('npm run stage:02 --', 'Stage 02: voice echo over framed TCP messages.')
  .command(
    'server',
    'run the echo server: one user at a time, every audio frame goes straight back',
    (y) => serverOptions(y),
    (args) => runMain(async () => void (await startServer(args.host, args.port))),
  )
  .command(
    'client',
    'join the echo server with your name, send your voice and play what comes back',
    (y) =>
      clientOptions(y)
        .option('input', {
          type: 'string',
          default: 'mic',
          describe: 'what to send: mic, tone:HZ, silence or FILE.wav',
        })
        .option('output', {
          type: 'string',
          default: 'speaker',
          describe: 'where the echo goes: speaker, null or FILE.wav',
        })
        .option('duration', {
          type: 'string', // parsed by parseDuration: yargs' number type would turn "abc" into NaN
          coerce: parseDuration,
          describe: 'leave cleanly after this many seconds (default: until exit or Ctrl+C, or the end of a FILE input)',
        }),
    (args) =>
      runMain(() =>
        runClient({
          name: args.name,
          host: args.host,
          port: args.port,
          input: args.input,
          output: args.output,
          durationSeconds: args.duration,
        }),
      ),
  )
  .command('$0', 'run a local demo (a server and a client, with a tone if there is no microphone)', (y) => y, () => runMain(runDemo))
  .parseAsync();
