// npm run bench -- --clients N --room-size K [--talking FRACTION] --seconds S [--stage 04] [--json]
// npm run bench -- --sweep        (finds the capacity, writes BENCHMARKS.md and bench/sweep.svg)
// npm run bench -- --server "CMD {port}" ...   (any server that speaks stage 04, in any language)
// npm run bench -- --compare [--murmur-harness DIR]   (stage 04, Node floor, C floor, murmur: ratios)
// How many talking users one server core carries, and the latency it adds. See BENCHMARKS.md.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { shellQuote } from '../conformance/harness/run-command.ts';
import { runComparison } from './compare.ts';
import { forwardingTable, runForwardingBenchmark, type ForwardingResult } from './forwarding-bench.ts';
import { runForwardingComparison } from './forwarding-compare.ts';
import { runBenchmark, type BenchResult } from './measure.ts';
import { medianResult } from './median.ts';
import { resultJson, resultTable } from './report.ts';
import { runSweep, SWEEP_CLIENTS, SWEEP_SECONDS } from './sweep.ts';
import { stopIfNpmSwallowedOptions } from '../shared/cli.ts';
import { MAX_USERS } from '../04-rooms/protocol.ts';

/** The probe room's two users count against the server's MAX_USERS too. */
const MAX_LOAD_CLIENTS = MAX_USERS - 2;
const SAFETY_MARGIN_SECONDS = 60;

const args = await yargs(hideBin(process.argv))
  .scriptName('npm run bench --')
  .usage('$0 --clients N --room-size K [--talking F] --seconds S [--json]\n$0 --sweep')
  .option('clients', { type: 'number', default: 200, describe: `load users (at most ${MAX_LOAD_CLIENTS}: the probe room takes 2 of the server's ${MAX_USERS})` })
  .option('room-size', { type: 'number', default: 8, describe: 'users per room' })
  .option('talking', { type: 'number', default: 1, describe: 'fraction of the users that talk (0..1)' })
  .option('seconds', { type: 'number', default: 10, describe: 'measured seconds (after the warm-up)' })
  .option('warmup', { type: 'number', default: 2, describe: 'seconds of load before measuring' })
  .option('stage', { type: 'string', default: '04', describe: 'the stage whose server is measured (04 mixes; 05 forwards Opus, measured on murmur\'s load shape: 60-byte packets); "floor": a server that reads and writes the same frames without mixing' })
  .option('server', { type: 'string', describe: 'measure this server instead, as a shell command (any language); {port} becomes 0 and the port is read from its "listening on" line' })
  .option('json', { type: 'boolean', default: false, describe: 'end with ONE JSON object on the last line' })
  .option('sweep', { type: 'boolean', default: false, describe: 'increase the clients until ticks are late (> 0.1%) or p99 > 45 ms at two points in a row; write BENCHMARKS.md and bench/sweep.svg' })
  .option('compare', { type: 'boolean', default: false, describe: 'the same load against stage 04, the Node floor, the C floor (built with cc) and murmur (with --murmur-harness), interleaved; prints CPU-per-frame ratios' })
  .option('capacity', { type: 'string', describe: 'with --compare --stage 05: also one interleaved round at each of these user counts, e.g. 200,400,800 (where each server keeps up)' })
  .option('murmur-harness', { type: 'string', describe: 'with --compare: the folder of the Mumble peer harness (its run.sh); it is not part of this project' })
  .option('repeat', { type: 'number', default: 1, describe: 'runs per measurement; the report shows medians (this machine is shared: noisy)' })
  .option('pin', { type: 'boolean', default: true, describe: 'server on one CPU, load and probe on the others (taskset; on by default where it exists, the output says); --no-pin: share all CPUs' })
  .option('node-flags', { type: 'string', describe: 'extra node flags for the stage\'s own server, e.g. "--max-semi-space-size=1"' })
  .option('cpu-prof', { type: 'string', describe: 'write a V8 CPU profile of the server into this folder (node --cpu-prof)' })
  .middleware(stopIfNpmSwallowedOptions(hideBin(process.argv), 0), true)
  .check((a) => {
    if (a.stage === '05') {
      if (!Number.isInteger(a.clients) || a.clients < 2 || a.clients > MAX_USERS) throw new Error(`--clients must be 2..${MAX_USERS} for stage 05`);
      if (a.sweep || a.server !== undefined || a.talking !== 1 || a.nodeFlags !== undefined) throw new Error('--stage 05 takes --clients, --room-size, --seconds, --warmup, --repeat, --no-pin, --json, --cpu-prof, --compare (--murmur-harness, --capacity); everyone talks');
      if (a.cpuProf !== undefined && a.compare) throw new Error('--cpu-prof profiles one server: use it without --compare');
    }
    if (a.capacity !== undefined && !(a.compare && a.stage === '05')) throw new Error('--capacity goes with --compare --stage 05');
    if (a.capacity !== undefined && !/^\d+(,\d+)*$/.test(a.capacity)) throw new Error('--capacity takes user counts separated by commas, e.g. 200,400,800');
    if (a.stage !== '05' && (!Number.isInteger(a.clients) || a.clients < 1 || a.clients > MAX_LOAD_CLIENTS)) throw new Error(`--clients must be 1..${MAX_LOAD_CLIENTS}`);
    if (!Number.isInteger(a['room-size']) || a['room-size'] < 2) throw new Error('--room-size must be a whole number >= 2');
    if (!(a.talking >= 0 && a.talking <= 1)) throw new Error('--talking must be between 0 and 1');
    if (!(a.seconds > 0) || !(a.warmup >= 0)) throw new Error('--seconds must be > 0 and --warmup >= 0');
    if (!Number.isInteger(a.repeat) || a.repeat < 1) throw new Error('--repeat must be a whole number >= 1');
    if (a.server !== undefined && a.sweep) throw new Error('--sweep measures the stage 04 server and rewrites BENCHMARKS.md; measure --server with --clients (and --repeat)');
    if (a.compare && (a.sweep || a.server !== undefined)) throw new Error('--compare runs its own servers; it cannot be combined with --sweep or --server');
    if (a.murmurHarness !== undefined && !a.compare) throw new Error('--murmur-harness goes with --compare');
    if (a.server !== undefined && a.nodeFlags !== undefined) throw new Error('--node-flags are for the stage\'s own Node server; put flags into the --server command itself');
    if (a.server !== undefined && a.cpuProf !== undefined) throw new Error('--cpu-prof profiles the Node server; it cannot profile a --server command');
    return true;
  })
  .strict()
  .parseAsync();

// As typed, so it can be pasted back: arguments with spaces or shell characters are quoted.
const command = `npm run bench -- ${process.argv.slice(2).map(shellQuote).join(' ')}`.trim();

if (args.stage === '05' && args.compare) {
  const capacity = (args.capacity ?? '').split(',').filter((n) => n !== '').map(Number);
  stopAfter((args.repeat + capacity.length) * 2 * (args.warmup + args.seconds + 40) + SAFETY_MARGIN_SECONDS);
  console.log(
    await runForwardingComparison(
      { clients: args.clients, roomSize: args.roomSize, seconds: args.seconds, warmupSeconds: args.warmup, repeat: args.repeat, pin: args.pin, murmurHarness: args.murmurHarness, capacity },
      command,
    ),
  );
} else if (args.stage === '05') {
  stopAfter(args.repeat * (args.warmup + args.seconds + 30) + SAFETY_MARGIN_SECONDS);
  const runs: ForwardingResult[] = [];
  for (let i = 0; i < args.repeat; i++) {
    const result = await runForwardingBenchmark(
      { clients: args.clients, roomSize: args.roomSize, seconds: args.seconds, warmupSeconds: args.warmup, pin: args.pin, serverNodeFlags: profileFlags(args.cpuProf) },
      command,
    );
    if (args.repeat > 1) console.log(`run ${i + 1}/${args.repeat}:`);
    console.log(forwardingTable(result));
    runs.push(result);
  }
  // Numbers are medians; kept up only if every run kept up.
  const medians = Object.entries(medianResult(runs as never)).map(([key, value]) => [key, typeof value === 'number' ? Math.round(value * 100) / 100 : value]);
  const result = { ...(Object.fromEntries(medians) as ForwardingResult), kept_up: runs.every((r) => r.kept_up) };
  if (args.repeat > 1) console.log(`median of ${args.repeat} runs:\n${forwardingTable(result)}`);
  if (args.json) console.log(JSON.stringify(result));
} else if (args.compare) {
  stopAfter(args.repeat * 4 * (args.warmup + args.seconds + 30) + SAFETY_MARGIN_SECONDS);
  const { rows, table } = await runComparison(
    { clients: args.clients, roomSize: args.roomSize, seconds: args.seconds, warmupSeconds: args.warmup, repeat: args.repeat, pin: args.pin, murmurHarness: args.murmurHarness },
    command,
  );
  console.log(table);
  if (args.json) console.log(JSON.stringify({ command, rows }));
} else if (args.sweep) {
  stopAfter(SWEEP_CLIENTS.length * args.repeat * (SWEEP_SECONDS + 2 + 20) + SAFETY_MARGIN_SECONDS);
  await runSweep({ stage: args.stage, maxClients: MAX_LOAD_CLIENTS, repeat: args.repeat, pin: args.pin });
} else {
  stopAfter(args.repeat * (args.warmup + args.seconds + 20) + SAFETY_MARGIN_SECONDS);
  const runs: BenchResult[] = [];
  for (let i = 0; i < args.repeat; i++) {
    const result = await runBenchmark(
      {
        stage: args.stage,
        clients: args.clients,
        roomSize: args.roomSize,
        talking: args.talking,
        seconds: args.seconds,
        warmupSeconds: args.warmup,
        serverCommand: args.server,
        pin: args.pin,
        serverNodeFlags: [
          ...(args.nodeFlags?.split(' ').filter((flag) => flag !== '') ?? []),
          ...profileFlags(args.cpuProf),
        ],
      },
      command,
    );
    if (args.repeat > 1) console.log(`run ${i + 1}/${args.repeat}:`);
    console.log(resultTable(result));
    runs.push(result);
  }
  const result = medianResult(runs);
  if (args.repeat > 1) {
    console.log(`median of ${args.repeat} runs:`);
    console.log(resultTable(result));
  }
  if (args.json) console.log(resultJson(result));
}

/** Node flags that make the server write a V8 CPU profile into `dir` when it is stopped (none without a dir). */
function profileFlags(dir: string | undefined): string[] {
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--import', './bench/exit-on-sigterm.ts'] : [];
}

/** The benchmark stops by itself: past this, something is stuck, so clean up and fail. */
function stopAfter(seconds: number): void {
  setTimeout(() => {
    console.error(`bench: still running after ${seconds} s; giving up`);
    process.exit(2); // the 'exit' handlers kill the server's process group and the load
  }, seconds * 1000).unref();
}
