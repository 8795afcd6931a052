// One benchmark run: server process, load process, latency probe; warm up, then measure a window.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { LatencyProbe, percentile } from './latency-probe.ts';
import type { FromLoad, LoadCounters, ToLoad } from './load-generator.ts';
import type { LoadPlan } from './load-plan.ts';
import { loadAverage } from './machine.ts';
import { allowedCpus, pinThisProcess, planPinning, unpinThisProcess, type Pinning } from './pinning.ts';
import { ServerProcess, type ServerCounters } from './server-process.ts';

const RSS_SAMPLE_MS = 250;
const LOAD_TIMEOUT_MS = 60_000;

export interface BenchOptions extends LoadPlan {
  stage: string;
  seconds: number;
  warmupSeconds: number;
  /** Node flags for the server process (e.g. --cpu-prof). */
  serverNodeFlags?: string[];
  /** Measure this server command instead of the stage's own (bench --server). */
  serverCommand?: string;
  /** Pin the server to one CPU and the load and probe to the others, where taskset exists (default true). */
  pin?: boolean;
}

export interface BenchResult {
  command: string;
  server_command: string;
  stage: string;
  clients: number;
  room_size: number;
  talkers: number;
  seconds: number;
  /** Whether the server had a CPU to itself (see bench/pinning.ts), and what was done or why not. */
  pinned: boolean;
  pinning: string;
  /** The CPUs the server's processes and the load generator were allowed, read from /proc during the run. */
  server_cpus: string;
  load_cpus: string;
  ticks: number | null;
  late_ticks: number | null;
  late_tick_pct: number | null;
  skipped_ticks: number | null;
  /** The server's own work per tick (mixing and writing), mean and max over the window, in ms. */
  tick_work_ms_mean: number | null;
  tick_work_ms_max: number | null;
  /** Times per second the kernel took the core from the server's event loop while it could run. */
  server_preemptions_per_s: number;
  /** Inside the server, over the window: event loop delay and use, GC, why late ticks waited, heap (bench/server-diagnostics.ts). */
  diagnostics: Record<string, number> | null;
  frames_received: number | null;
  frames_dropped: number | null;
  frames_dropped_by_reason: Record<string, number> | null;
  server_cpu_pct: number;
  cpu_us_per_client_frame: number;
  latency_ms_p50: number;
  latency_ms_p99: number;
  latency_ms_max: number;
  latency_samples: number;
  probe_impulses_lost: number;
  server_rss_mb: number;
  server_rss_mb_start: number;
  server_rss_mb_end: number;
  /** RSS after start-up, before any user connected. */
  server_rss_mb_idle: number;
  server_rss_kb_per_user_above_idle: number;
  bytes_in_per_s: number;
  bytes_out_per_s: number;
  frames_in_per_s: number;
  mixes_out_per_s: number;
  load_cpu_pct: number;
  load_late_sends: number;
  machine_load_average: number;
}

/** The load generator in its own process, spoken to over IPC. */
class LoadProcess {
  private readonly child: ChildProcess;
  private waiting: ((message: FromLoad) => void) | null = null;

  constructor(pinning: Pinning) {
    // Pinned, the child is started as `taskset -c CPUS node ...`: every thread it ever has inherits the CPUs.
    const pin = pinning.pinned ? { execPath: pinning.taskset, execArgv: ['-c', pinning.loadCpus.join(','), process.execPath, '--import', 'tsx'] } : { execArgv: ['--import', 'tsx'] };
    this.child = fork(fileURLToPath(new URL('./load-generator.ts', import.meta.url)), [], {
      ...pin,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (message: FromLoad) => this.waiting?.(message));
  }

  ask(message: ToLoad): Promise<FromLoad> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the load generator did not answer "${message.type}" in time`)), LOAD_TIMEOUT_MS);
      this.waiting = (answer) => {
        clearTimeout(timer);
        this.waiting = null;
        if (answer.type === 'failed') reject(new Error(`load generator: ${answer.message}`));
        else resolve(answer);
      };
      this.child.send(message);
    });
  }

  async snapshot(): Promise<LoadCounters> {
    const answer = await this.ask({ type: 'snapshot' });
    if (answer.type !== 'snapshot') throw new Error(`load generator answered ${answer.type} to snapshot`);
    return answer.counters;
  }

  get pid(): number {
    return this.child.pid!;
  }

  stop(): void {
    if (this.child.exitCode === null) this.child.send({ type: 'stop' });
    setTimeout(() => this.child.kill('SIGKILL'), 1_000).unref();
  }

  killNow(): void {
    this.child.kill('SIGKILL');
  }
}

/** Everything measured at one instant; the window's numbers are end minus start. */
interface Snapshot {
  at: number;
  serverCpuMicros: number;
  serverPreemptions: number;
  server: ServerCounters | null;
  load: LoadCounters;
}

export async function runBenchmark(options: BenchOptions, command: string): Promise<BenchResult> {
  const pinning = planPinning(options.pin ?? true);
  const { server, port } = await ServerProcess.start({ stage: options.stage, nodeFlags: options.serverNodeFlags, command: options.serverCommand, pinning });
  const rssIdle = server.rssBytes(); // before anyone connects
  const load = new LoadProcess(pinning);
  pinThisProcess(pinning); // the probe runs here: it must not compete with the server either
  const probe = new LatencyProbe();
  // Whatever happens, neither the server nor the load outlives us.
  const killAll = () => {
    server.killNow();
    load.killNow();
  };
  process.once('exit', killAll);
  try {
    const ready = await load.ask({ type: 'start', host: '127.0.0.1', port, plan: options });
    if (ready.type !== 'ready') throw new Error(`load generator answered ${ready.type} to start`);
    await probe.start('127.0.0.1', port);

    await sleep(options.warmupSeconds * 1000);
    const snapshot = async (): Promise<Snapshot> => {
      const [serverCounters, loadCounters] = await Promise.all([server.stats(), load.snapshot()]);
      return {
        at: performance.now(),
        serverCpuMicros: server.cpuMicros(),
        serverPreemptions: server.preemptions(),
        server: serverCounters,
        load: loadCounters,
      };
    };
    const rssStart = server.rssBytes();
    let rssMax = rssStart;
    const start = await snapshot();
    probe.record(true);
    const rssSampler = setInterval(() => (rssMax = Math.max(rssMax, server.rssBytes())), RSS_SAMPLE_MS);
    await sleep(options.seconds * 1000);
    clearInterval(rssSampler);
    probe.record(false);
    const end = await snapshot();
    const rssEnd = server.rssBytes();
    rssMax = Math.max(rssMax, rssEnd);
    await sleep(200); // impulses still in flight
    const cpus = { server: cpuListOf(server.members()), load: cpuListOf([load.pid]) };
    return summarize(options, command, server.command, ready.talkers, start, end, probe, { idle: rssIdle, start: rssStart, end: rssEnd, max: rssMax }, pinning, cpus);
  } finally {
    unpinThisProcess(pinning);
    probe.stop();
    load.stop();
    await server.stop();
    process.off('exit', killAll);
  }
}

function summarize(
  options: BenchOptions,
  command: string,
  serverCommand: string,
  talkers: number,
  start: Snapshot,
  end: Snapshot,
  probe: LatencyProbe,
  rss: { idle: number; start: number; end: number; max: number },
  pinning: Pinning,
  cpus: { server: string; load: string },
): BenchResult {
  const seconds = (end.at - start.at) / 1000;
  const perSecond = (value: number) => Math.round(value / seconds);
  const serverCpu = end.serverCpuMicros - start.serverCpuMicros;
  const counters = start.server && end.server ? diffCounters(start.server, end.server) : null;
  const dropped = counters ? Object.values(counters.frames_dropped).reduce((a, b) => a + b, 0) : null;
  const mb = (bytes: number) => round(bytes / (1024 * 1024), 1);
  const latencies = probe.latenciesMs;
  return {
    command,
    server_command: serverCommand,
    stage: options.stage,
    clients: options.clients,
    room_size: options.roomSize,
    talkers,
    seconds: round(seconds, 2),
    pinned: pinning.pinned,
    pinning: pinning.description,
    server_cpus: cpus.server,
    load_cpus: cpus.load,
    ticks: counters?.ticks ?? null,
    late_ticks: counters?.late_ticks ?? null,
    late_tick_pct: counters && counters.ticks > 0 ? round((100 * counters.late_ticks) / counters.ticks, 3) : null,
    skipped_ticks: counters?.skipped_ticks ?? null,
    tick_work_ms_mean: counters?.tick_work_ms !== undefined && counters.ticks > 0 ? round(counters.tick_work_ms / counters.ticks, 2) : null,
    tick_work_ms_max: counters?.tick_work_ms_max !== undefined ? round(counters.tick_work_ms_max, 2) : null,
    server_preemptions_per_s: perSecond(end.serverPreemptions - start.serverPreemptions),
    diagnostics: counters?.diagnostics ? { ...counters.diagnostics } : null,
    frames_received: counters?.frames_received ?? null,
    frames_dropped: dropped,
    frames_dropped_by_reason: counters?.frames_dropped ?? null,
    server_cpu_pct: round((100 * serverCpu) / (seconds * 1e6), 1),
    // Per frame the server RECEIVED (its own count; without server stats, what the load sent).
    cpu_us_per_client_frame: round(serverCpu / Math.max(1, counters?.frames_received ?? end.load.framesSent - start.load.framesSent), 2),
    latency_ms_p50: round(percentile(latencies, 50), 2),
    latency_ms_p99: round(percentile(latencies, 99), 2),
    latency_ms_max: round(percentile(latencies, 100), 2),
    latency_samples: latencies.length,
    probe_impulses_lost: probe.impulsesSent - latencies.length,
    server_rss_mb: mb(rss.max),
    server_rss_mb_start: mb(rss.start),
    server_rss_mb_end: mb(rss.end),
    server_rss_mb_idle: mb(rss.idle),
    // Every user, the probe's two included: (most RSS in the window - RSS before anyone connected) / users.
    server_rss_kb_per_user_above_idle: Math.round((rss.max - rss.idle) / 1024 / (options.clients + 2)),
    bytes_in_per_s: perSecond(end.load.bytesSent - start.load.bytesSent),
    bytes_out_per_s: perSecond(end.load.bytesReceived - start.load.bytesReceived),
    frames_in_per_s: perSecond(end.load.framesSent - start.load.framesSent),
    mixes_out_per_s: perSecond(end.load.audioFramesReceived - start.load.audioFramesReceived),
    load_cpu_pct: round((100 * (end.load.cpuMicros - start.load.cpuMicros)) / (seconds * 1e6), 1),
    load_late_sends: end.load.lateSends - start.load.lateSends,
    machine_load_average: round(loadAverage(), 2),
  };
}

/** The CPUs any of `pids` may run on, as a list like "0" or "0-1" ("?" where /proc cannot say). */
function cpuListOf(pids: number[]): string {
  const cpus = new Set<number>();
  for (const pid of pids) for (const cpu of allowedCpus(pid) ?? []) cpus.add(cpu);
  if (cpus.size === 0) return '?';
  const sorted = [...cpus].sort((a, b) => a - b);
  const ranges: string[] = [];
  for (let i = 0; i < sorted.length; i++) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    ranges.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j;
  }
  return ranges.join(',');
}

function diffCounters(start: ServerCounters, end: ServerCounters): ServerCounters {
  const dropped: Record<string, number> = {};
  for (const reason of Object.keys(end.frames_dropped)) dropped[reason] = end.frames_dropped[reason]! - (start.frames_dropped[reason] ?? 0);
  return {
    ticks: end.ticks - start.ticks,
    late_ticks: end.late_ticks - start.late_ticks,
    skipped_ticks: end.skipped_ticks - start.skipped_ticks,
    tick_work_ms: end.tick_work_ms !== undefined && start.tick_work_ms !== undefined ? end.tick_work_ms - start.tick_work_ms : undefined,
    // The server resets its max at every report: the end report's max is the window's.
    tick_work_ms_max: end.tick_work_ms_max,
    frames_received: end.frames_received - start.frames_received,
    frames_dropped: dropped,
    // Each report starts a new window: the end report's diagnostics are the window's.
    diagnostics: end.diagnostics,
  };
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
