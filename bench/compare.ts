// npm run bench -- --compare [--clients N] [--murmur-harness DIR]: the same load shape (N users in
// rooms of K, everyone talking, one frame per 20 ms each, every client reads everything) against
// several servers in ONE run, interleaved round by round, so the machine's speed cancels out of
// the ratios: stage 04, the Node I/O floor, the C I/O floor (bench/io-floor-server.c, built here
// when a C compiler exists) and, when asked, Mumble's server through a peer harness that lives
// OUTSIDE this project (its own load generator, its own JSON; see BENCHMARKS.md). A server that
// cannot be measured here is listed with the reason, never silently left out.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { runBenchmark, type BenchResult } from './measure.ts';
import { loadAverage } from './machine.ts';
import { median } from './median.ts';
import { planPinning } from './pinning.ts';
import { REPO_ROOT } from './server-process.ts';

export interface CompareOptions {
  clients: number;
  roomSize: number;
  seconds: number;
  warmupSeconds: number;
  repeat: number;
  pin: boolean;
  /** The Mumble peer harness's folder (it holds run.sh); not part of this project. */
  murmurHarness?: string;
}

/** One server's numbers in one round. */
interface Measured {
  us_per_frame: number;
  cpu_pct: number;
  late_tick_pct: number | null;
  latency_ms_p99: number | null;
  rss_mb_idle: number | null;
  rss_mb: number;
  kept_up: boolean | null;
}

interface Contender {
  name: string;
  /** Why it cannot be measured here, or null. */
  absent: string | null;
  measure?: (round: number) => Promise<Measured>;
  rounds: Measured[];
}

export interface ComparisonRow {
  server: string;
  absent: string | null;
  runs: number;
  us_per_frame: number | null;
  us_per_frame_min: number | null;
  us_per_frame_max: number | null;
  /** Medians, over rounds, of this server's CPU per frame divided by the other's in the SAME round. */
  vs_c_floor: number | null;
  vs_murmur: number | null;
  cpu_pct: number | null;
  late_tick_pct: number | null;
  latency_ms_p99: number | null;
  rss_mb_idle: number | null;
  rss_mb: number | null;
  kept_up: string;
}

export async function runComparison(options: CompareOptions, command: string): Promise<{ rows: ComparisonRow[]; table: string }> {
  const benchmark = (stage: string, serverCommand?: string) => async (): Promise<Measured> => {
    const r = await runBenchmark(
      { stage, serverCommand, clients: options.clients, roomSize: options.roomSize, talking: 1, seconds: options.seconds, warmupSeconds: options.warmupSeconds, pin: options.pin },
      command,
    );
    return fromBench(r);
  };
  const loadBefore = loadAverage();
  const cFloor = buildCFloor();
  const murmur = murmurProblem(options.murmurHarness);
  const contenders: Contender[] = [
    { name: 'stage 04 (mixing, 1920-byte PCM)', absent: null, measure: benchmark('04'), rounds: [] },
    { name: 'Node I/O floor (bench/io-floor-server.ts)', absent: null, measure: benchmark('floor'), rounds: [] },
    typeof cFloor === 'string'
      ? { name: 'C I/O floor (bench/io-floor-server.c)', absent: cFloor, rounds: [] }
      : { name: 'C I/O floor (bench/io-floor-server.c)', absent: null, measure: benchmark('04', `${cFloor.binary} {port}`), rounds: [] },
    murmur === null
      ? { name: 'murmur (Mumble server; TLS, 60-byte Opus-sized packets, forwards 7 copies)', absent: null, measure: () => measureMurmur(options), rounds: [] }
      : { name: 'murmur (Mumble server)', absent: murmur, rounds: [] },
  ];
  try {
    for (let round = 0; round < options.repeat; round++) {
      for (const contender of contenders) {
        if (contender.measure === undefined) continue;
        console.error(`compare: round ${round + 1}/${options.repeat}, ${contender.name} ...`);
        const measured = await contender.measure(round);
        contender.rounds.push(measured);
        console.error(`  ${measured.us_per_frame} µs per client frame, ${measured.cpu_pct}% CPU`);
      }
    }
  } finally {
    if (typeof cFloor !== 'string') rmSync(dirname(cFloor.binary), { recursive: true, force: true });
  }
  const [, , cContender, murmurContender] = contenders;
  const rows = contenders.map((c) => row(c, cContender!, murmurContender!));
  return { rows, table: comparisonTable(rows, options, command, [loadBefore, loadAverage()]) };
}

function fromBench(r: BenchResult): Measured {
  return {
    us_per_frame: r.cpu_us_per_client_frame,
    cpu_pct: r.server_cpu_pct,
    late_tick_pct: r.late_tick_pct,
    latency_ms_p99: Number.isNaN(r.latency_ms_p99) ? null : r.latency_ms_p99,
    rss_mb_idle: r.server_rss_mb_idle,
    rss_mb: r.server_rss_mb,
    // A server with tick counters kept up when no tick was skipped and none of its frames were dropped.
    kept_up: r.ticks === null ? null : r.skipped_ticks === 0 && r.frames_dropped === 0,
  };
}

/** The ratio of `c`'s CPU per frame to `other`'s, round by round (the same quarter of an hour), then the median. */
function ratio(c: Contender, other: Contender): number | null {
  if (c.rounds.length === 0 || other.rounds.length === 0) return null;
  const ratios = c.rounds.map((m, i) => (other.rounds[i] ? m.us_per_frame / other.rounds[i]!.us_per_frame : NaN));
  const value = median(ratios);
  return Number.isNaN(value) ? null : Math.round(value * 100) / 100;
}

function row(c: Contender, cFloor: Contender, murmur: Contender): ComparisonRow {
  const pick = (f: (m: Measured) => number | null) => {
    const values = c.rounds.map(f).filter((v): v is number => v !== null);
    return values.length === 0 ? null : median(values);
  };
  const perFrame = c.rounds.map((m) => m.us_per_frame);
  const keptUp = c.rounds.map((m) => m.kept_up).filter((v): v is boolean => v !== null);
  return {
    server: c.name,
    absent: c.absent,
    runs: c.rounds.length,
    us_per_frame: pick((m) => m.us_per_frame),
    us_per_frame_min: perFrame.length ? Math.min(...perFrame) : null,
    us_per_frame_max: perFrame.length ? Math.max(...perFrame) : null,
    vs_c_floor: ratio(c, cFloor),
    vs_murmur: ratio(c, murmur),
    cpu_pct: pick((m) => m.cpu_pct),
    late_tick_pct: pick((m) => m.late_tick_pct),
    latency_ms_p99: pick((m) => m.latency_ms_p99),
    rss_mb_idle: pick((m) => m.rss_mb_idle),
    rss_mb: pick((m) => m.rss_mb),
    kept_up: keptUp.length === 0 ? 'n/a' : `${keptUp.filter(Boolean).length} of ${keptUp.length}`,
  };
}

function comparisonTable(rows: ComparisonRow[], options: CompareOptions, command: string, load: [number, number]): string {
  const pinning = planPinning(options.pin).description;
  const f = (v: number | null, digits = 1, unit = '') => (v === null ? 'n/a' : `${v.toFixed(digits)}${unit}`);
  const lines = [
    `\`${command}\`: ${options.clients} users in rooms of ${options.roomSize}, everyone talking, ${options.warmupSeconds} s warm-up, ${options.seconds} s measured, ` +
      `${options.repeat} round${options.repeat > 1 ? 's' : ''} (servers interleaved in each); medians (min–max); ${pinning}; ` +
      `load average ${load[0].toFixed(1)} before, ${load[1].toFixed(1)} after.`,
    '',
    '| server | µs CPU per client frame | × C floor | × murmur | server CPU | late ticks | p99 added latency | RSS idle → max | kept up |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    if (r.absent !== null) {
      lines.push(`| ${r.server} | not measured: ${r.absent} | | | | | | | |`);
      continue;
    }
    lines.push(
      `| ${r.server} | ${f(r.us_per_frame)} (${f(r.us_per_frame_min)}–${f(r.us_per_frame_max)}) | ${f(r.vs_c_floor, 2, '×')} | ${f(r.vs_murmur, 2, '×')} | ` +
        `${f(r.cpu_pct, 0, '%')} | ${f(r.late_tick_pct, 2, '%')} | ${f(r.latency_ms_p99, 1, ' ms')} | ${f(r.rss_mb_idle, 0)} → ${f(r.rss_mb, 0)} MB | ${r.kept_up} |`,
    );
  }
  return lines.join('\n');
}

function onPath(program: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) if (dir !== '' && existsSync(join(dir, program))) return join(dir, program);
  return null;
}

/** Compiles the C floor into a temporary folder; a string says why it cannot be. */
function buildCFloor(): { binary: string } | string {
  const cc = onPath('cc');
  if (cc === null) return 'no C compiler (cc) on PATH';
  const binary = join(mkdtempSync(join(tmpdir(), 'io-floor-')), 'io-floor-server');
  try {
    execFileSync(cc, ['-O2', '-o', binary, join(REPO_ROOT, 'bench', 'io-floor-server.c')], { stdio: 'pipe' });
  } catch (error) {
    return `cc could not build bench/io-floor-server.c: ${(error as { stderr?: Buffer }).stderr?.toString().trim().slice(0, 200) ?? error}`;
  }
  return { binary };
}

function murmurd(): string | null {
  if (process.env.MURMURD) return existsSync(process.env.MURMURD) ? process.env.MURMURD : null;
  return onPath('murmurd') ?? (existsSync('/usr/sbin/murmurd') ? '/usr/sbin/murmurd' : null);
}

export function murmurProblem(harness: string | undefined): string | null {
  if (harness === undefined) return 'no --murmur-harness DIR given (the Mumble peer harness is not part of this project)';
  if (!existsSync(join(harness, 'run.sh'))) return `no run.sh in ${harness} (--murmur-harness must be the harness's folder)`;
  if (murmurd() === null) return 'murmurd is not installed (apt-get install -y mumble-server)';
  return null;
}

/** What the harness prints (its last line is one JSON object); the fields this benchmark reads. */
export interface MurmurRun {
  server: { us_per_packet: number; us_per_delivered_copy: number; cpu_pct_of_one_core: number; rss_idle_mb: number; rss_mb: number };
  latency_ms: { p50: number; p99: number };
  per_client_ratio: { min: number };
  server_kept_up: boolean;
}

/** One run of the harness: `run.sh N --group K --warmup W --measure S`, from its own folder. */
export async function runMurmurHarness(harnessFolder: string, o: { clients: number; roomSize: number; warmupSeconds: number; seconds: number; pin: boolean }): Promise<MurmurRun> {
  const harness = resolve(harnessFolder);
  const args = [join(harness, 'run.sh'), String(o.clients), '--group', String(o.roomSize), '--warmup', String(o.warmupSeconds), '--measure', String(o.seconds)];
  // The harness pins murmur to CPU 0 and its generator to CPU 1 itself; PIN=0 when we do not pin.
  const env = { ...process.env, PIN: o.pin ? '1' : '0', MURMURD: murmurd()! };
  const output = await new Promise<string>((done, fail) => {
    const child = spawn('bash', args, { cwd: harness, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
    child.on('error', fail);
    child.on('close', (code) => (code === 0 ? done(stdout) : fail(new Error(`murmur harness exited ${code}: ${stderr.slice(-600)}`))));
  });
  return JSON.parse(output.trim().split('\n').pop() ?? '') as MurmurRun;
}

async function measureMurmur(options: CompareOptions): Promise<Measured> {
  const r = await runMurmurHarness(options.murmurHarness!, options);
  return {
    us_per_frame: r.server.us_per_packet,
    cpu_pct: r.server.cpu_pct_of_one_core,
    late_tick_pct: null, // murmur forwards as packets come: it has no tick
    latency_ms_p99: r.latency_ms.p99,
    rss_mb_idle: r.server.rss_idle_mb,
    rss_mb: r.server.rss_mb,
    kept_up: r.server_kept_up,
  };
}
