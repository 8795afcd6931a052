// What loss costs a listener of stage 06, measured with the real programs: the reference server,
// a talker (a 440 Hz tone for 6 s) and a listener recording to a WAV file, whose datagrams (both
// ways) pass a seeded lossy relay (shared/net/lossy-relay.ts). Prints one table row per loss rate:
//   npx tsx tools/udp-loss.ts [--loss 1,5,10] [--seed 6]
// For each 20 ms of the listener's WAV while the talker talks: silent frames (a gap heard, below
// -30 dBFS), the longest run of them, the level against the talker's tone, and what the listener's
// client says it rebuilt from FEC and concealed. `--blocked` also runs a conversation whose UDP
// goes to a closed port (blocked): it must work over TCP. tests/06-udp-loss.test.ts asserts the
// issue's "done when" with the same function.
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FRAME_SAMPLES } from '#shared/audio/format.ts';
import { DEFAULT_TONE_AMPLITUDE } from '#shared/audio/tone-source.ts';
import { readWavPcm } from '#shared/audio/wav-source.ts';
import { startLossyRelay } from '#shared/net/lossy-relay.ts';
import { repoRoot } from '../conformance/harness/checks.ts';
import { levelDb, samplesOf } from '../conformance/harness/opus-voice.ts';
import { runCommand } from '../conformance/harness/run-command.ts';
import { startServerProcess } from '../conformance/harness/server-process.ts';

const REFERENCE = `cd "${repoRoot}" && "${process.execPath}" --import tsx 06-udp/main.ts`;
const TALK_SECONDS = 6;
/** A 20 ms frame quieter than this while the talker talks is a gap heard (the tone is about -15 dBFS). */
const SILENT_DB = -30;
/** The talker's level: a sine of DEFAULT_TONE_AMPLITUDE has an RMS of amplitude / sqrt(2). */
export const TONE_DB = 20 * Math.log10(DEFAULT_TONE_AMPLITUDE / Math.SQRT2);

export interface LossRun {
  lossPercent: number;
  /** How the listener's datagrams went: through the lossy relay, or to a closed port (UDP blocked, both clients). */
  path: 'relay' | 'blocked';
  /** 20 ms frames from the first to the last loud one in the listener's WAV. */
  talkFrames: number;
  /** Of those, frames below SILENT_DB (gaps heard), and the longest run of them. */
  silentFrames: number;
  longestGapFrames: number;
  /** The listener's level over the talk, and the talker's. */
  levelDb: number;
  toneDb: number;
  /** From the listener's exit line: frames rebuilt from FEC and concealed. */
  fecRebuilt: number;
  concealed: number;
  /** Datagrams the relay dropped, both ways, of those it got (0 of 0 when blocked). */
  relayDropped: number;
  relayReceived: number;
  /** The listener's and the talker's output, for a failure report. */
  listenerOutput: string;
  talkerOutput: string;
}

/** A UDP port nobody listens on: datagrams sent there vanish (an ICMP "unreachable" at most), as on a network that blocks UDP. */
async function closedUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(resolve));
  return port;
}

/** Runs one conversation (talker -> listener in one room) and measures the listener's WAV. */
export async function runThroughLoss(lossPercent: number, options: { seed?: number; path?: 'relay' | 'blocked' } = {}): Promise<LossRun> {
  const path = options.path ?? 'relay';
  const folder = mkdtempSync(join(tmpdir(), 'udp-loss-'));
  const server = await startServerProcess(`${REFERENCE} server --host 127.0.0.1 --port {port}`);
  const relay = path === 'relay' ? await startLossyRelay({ target: { host: '127.0.0.1', port: server.port }, lossPercent, seed: options.seed ?? 6 }) : null;
  const via = relay !== null ? `127.0.0.1:${relay.port}` : `127.0.0.1:${await closedUdpPort()}`;
  try {
    const wav = join(folder, 'listener.wav');
    const room = ['--host', '127.0.0.1', '--port', String(server.port), '--room', 'loss'];
    const listener = runCommand(REFERENCE, ['client', '--name', 'Lis', ...room, '--input', 'silence', '--output', wav, '--duration', String(TALK_SECONDS + 3), '--udp-via', via], { timeoutMs: 60_000 });
    // The talker starts once the server has the listener (its log says so): nothing is missed.
    const deadline = performance.now() + 20_000;
    while (!/Lis \(id \d+\) joined/.test(server.output()) && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    const talkerVia = path === 'blocked' ? ['--udp-via', via] : [];
    const talker = await runCommand(REFERENCE, ['client', '--name', 'Tal', ...room, '--input', 'tone:440', '--output', 'null', '--duration', String(TALK_SECONDS), ...talkerVia], { timeoutMs: 60_000 });
    const heard = await listener;
    const samples = samplesOf(readWavPcm(wav));
    const frames = Math.floor(samples.length / FRAME_SAMPLES);
    const levels = Array.from({ length: frames }, (_, i) => levelDb(samples, i * FRAME_SAMPLES, FRAME_SAMPLES));
    const first = levels.findIndex((db) => db > SILENT_DB);
    let last = levels.length - 1;
    while (last >= 0 && levels[last]! <= SILENT_DB) last--;
    let silentFrames = 0;
    let longestGapFrames = 0;
    let run = 0;
    for (let i = Math.max(first, 0); i <= last; i++) {
      if (levels[i]! <= SILENT_DB) {
        silentFrames++;
        longestGapFrames = Math.max(longestGapFrames, ++run);
      } else {
        run = 0;
      }
    }
    const talkFrames = first < 0 ? 0 : last - first + 1;
    const exitLine = heard.stdout.match(/(\d+) frames rebuilt from FEC, (\d+) concealed/);
    const counters = relay?.counters;
    return {
      lossPercent,
      path,
      talkFrames,
      silentFrames,
      longestGapFrames,
      levelDb: first < 0 ? -Infinity : levelDb(samples, first * FRAME_SAMPLES, talkFrames * FRAME_SAMPLES),
      toneDb: TONE_DB,
      fecRebuilt: Number(exitLine?.[1] ?? NaN),
      concealed: Number(exitLine?.[2] ?? NaN),
      relayDropped: counters ? counters.toServer.dropped + counters.toClient.dropped : 0,
      relayReceived: counters ? counters.toServer.received + counters.toClient.received : 0,
      listenerOutput: heard.stdout + heard.stderr,
      talkerOutput: talker.stdout + talker.stderr,
    };
  } finally {
    await relay?.close();
    await server.stop();
    rmSync(folder, { recursive: true, force: true });
  }
}

function row(run: LossRun): string {
  const where = run.path === 'blocked' ? 'UDP blocked (TCP)' : `${run.lossPercent} %`;
  const lost = run.path === 'blocked' ? 'all' : `${run.relayDropped} of ${run.relayReceived}`;
  return `| ${where} | ${lost} | ${run.talkFrames} | ${run.fecRebuilt} | ${run.concealed} | ${run.silentFrames} | ${run.longestGapFrames} | ${run.levelDb.toFixed(1)} dB (talker ${run.toneDb.toFixed(1)}) |`;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, '/'))) {
  const args = process.argv.slice(2);
  const option = (name: string, fallback: string) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] ?? fallback : fallback);
  const losses = option('loss', '1,5,10').split(',').map(Number);
  const seed = Number(option('seed', '6'));
  console.log(`talker: a 440 Hz tone for ${TALK_SECONDS} s; the listener's datagrams pass a lossy relay (seed ${seed}), both ways; no added delay`);
  console.log('');
  console.log('| loss each way | datagrams lost (relay) | 20 ms frames of talk heard | rebuilt from FEC | concealed (PLC) | silent frames (gaps) | longest gap (frames) | level heard |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const loss of losses) console.log(row(await runThroughLoss(loss, { seed })));
  if (args.includes('--blocked')) console.log(row(await runThroughLoss(0, { path: 'blocked' })));
}
