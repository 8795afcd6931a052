// npm run bench -- --sweep: more and more talking users in rooms of 8, until the server stops
// keeping time (late ticks > 0.1%) or the added latency passes 45 ms at p99. Writes the result
// into BENCHMARKS.md (between the sweep markers; the rest of the file is written by people)
// and the plot bench/sweep.svg.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeMachine, loadAverage } from './machine.ts';
import { runBenchmark, type BenchResult } from './measure.ts';
import { medianResult, spread } from './median.ts';
import { mixerBenchmark, type MixerBenchResult } from './mixer-bench.ts';
import { REPO_ROOT } from './server-process.ts';
import { panelsSvg } from './svg-plot.ts';

export const SWEEP_CLIENTS = [50, 100, 200, 400, 600, 800, 1000];
export const SWEEP_ROOM_SIZE = 8;
export const SWEEP_SECONDS = 8;
export const MAX_LATE_TICK_PCT = 0.1;
export const MAX_P99_MS = 45;
const BEGIN = '<!-- sweep:begin (written by npm run bench -- --sweep; edits here are overwritten) -->';
const END = '<!-- sweep:end -->';

export interface SweepOptions {
  stage: string;
  maxClients: number;
  /** Runs per point; the table shows medians. */
  repeat: number;
  /** Pin the server to a CPU of its own (default true; see bench/pinning.ts). */
  pin?: boolean;
  /** Where to write the report; default BENCHMARKS.md and bench/sweep.svg in the repository. */
  markdownFile?: string;
  svgFile?: string;
  clients?: number[];
  seconds?: number;
}

export interface SweepPoint {
  result: BenchResult;
  runs: BenchResult[];
  ok: boolean;
}

/** Why a point fails the bars, or null when it passes. */
export function failedBar(r: BenchResult): string | null {
  if (r.late_tick_pct !== null && r.late_tick_pct > MAX_LATE_TICK_PCT) return `${r.late_tick_pct}% late ticks`;
  if ((r.skipped_ticks ?? 0) > 0) return `${r.skipped_ticks} skipped ticks`;
  if (!(r.latency_ms_p99 <= MAX_P99_MS)) return `p99 latency ${r.latency_ms_p99} ms`;
  return null;
}

export async function runSweep(options: SweepOptions): Promise<SweepPoint[]> {
  const machine = describeMachine();
  const loadBefore = loadAverage();
  console.log('mixer micro-benchmark (no sockets)...');
  const mixer = [2, SWEEP_ROOM_SIZE, 32].map((k) => mixerBenchmark(k));
  for (const m of mixer) console.log(`  K=${m.room_size}: mixer ${(m.mixer_samples_per_s / 1e6).toFixed(0)} M samples/s, copy ${(m.copy_samples_per_s / 1e6).toFixed(0)} M samples/s`);
  const seconds = options.seconds ?? SWEEP_SECONDS;
  const points: SweepPoint[] = [];
  for (const wanted of options.clients ?? SWEEP_CLIENTS) {
    const clients = Math.min(wanted, options.maxClients);
    const runs: BenchResult[] = [];
    for (let i = 0; i < options.repeat; i++) {
      const command = `npm run bench -- --clients ${clients} --room-size ${SWEEP_ROOM_SIZE} --seconds ${seconds}${options.pin === false ? ' --no-pin' : ''}`;
      runs.push(await runBenchmark({ stage: options.stage, clients, roomSize: SWEEP_ROOM_SIZE, talking: 1, seconds, warmupSeconds: 2, pin: options.pin ?? true }, command));
    }
    const result = medianResult(runs);
    const problem = failedBar(result);
    points.push({ result, runs, ok: problem === null });
    console.log(
      `N=${clients}: ${result.cpu_us_per_client_frame.toFixed(1)} µs/client-frame, server ${result.server_cpu_pct.toFixed(0)}% CPU, ` +
        `late ticks ${result.late_tick_pct?.toFixed(2) ?? 'n/a'}%, p99 ${result.latency_ms_p99.toFixed(1)} ms${problem ? `: FAILS (${problem})` : ''}`,
    );
    // Two failing points in a row end the sweep: one alone may be this shared machine's noise,
    // and the point after it still shows the trend on the plot.
    const previousFailed = points.length >= 2 && !points[points.length - 2]!.ok;
    if ((problem && previousFailed) || clients === options.maxClients) break;
  }
  const markdownFile = options.markdownFile ?? join(REPO_ROOT, 'BENCHMARKS.md');
  const svgFile = options.svgFile ?? join(REPO_ROOT, 'bench', 'sweep.svg');
  writeFileSync(svgFile, sweepSvg(points));
  writeSection(markdownFile, sweepMarkdown(points, mixer, machine, loadBefore, options));
  console.log(`wrote ${markdownFile} and ${svgFile}`);
  return points;
}

function sweepSvg(points: SweepPoint[]): string {
  const xy = (y: (r: BenchResult) => number) => points.map((p) => ({ x: p.result.clients, y: y(p.result) }));
  return panelsSvg([
    { title: 'Server CPU per client frame', xLabel: 'talking users (rooms of 8)', yLabel: 'µs of server CPU per received frame', points: xy((r) => r.cpu_us_per_client_frame) },
    { title: 'Latency the server adds (p99)', xLabel: 'talking users (rooms of 8)', yLabel: 'ms, probe impulse send → mix arrival', points: xy((r) => r.latency_ms_p99), limit: { y: MAX_P99_MS, label: `bar: ${MAX_P99_MS} ms` } },
  ]);
}

function sweepMarkdown(
  points: SweepPoint[],
  mixer: MixerBenchResult[],
  machine: ReturnType<typeof describeMachine>,
  loadBefore: number,
  options: SweepOptions,
): string {
  // The capacity is the last point before the FIRST failure, even if a later point passed.
  const firstFailure = points.findIndex((p) => !p.ok);
  const passing = firstFailure === -1 ? points : points.slice(0, firstFailure);
  const capacity = passing.length > 0 ? passing[passing.length - 1]!.result.clients : 0;
  const failing = firstFailure === -1 ? undefined : points[firstFailure];
  const lines = [
    BEGIN,
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC with \`npm run bench -- --sweep${options.repeat > 1 ? ` --repeat ${options.repeat}` : ''}${options.pin === false ? ' --no-pin' : ''}\``,
    `on ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${machine.kernel}; load average before: ${loadBefore.toFixed(2)}.`,
    `Each point: rooms of ${SWEEP_ROOM_SIZE}, everyone talking, 2 s warm-up, ${points[0]?.result.seconds.toFixed(0) ?? SWEEP_SECONDS} s measured` +
      (options.repeat > 1 ? `, ${options.repeat} runs: median (min–max)` : '') + '.',
    `CPUs: ${points[0]?.result.pinning ?? 'n/a'}.`,
    '',
    `**Capacity: ${capacity} talking users** with every bar met` +
      (failing ? `; at ${failing.result.clients} ${failedBar(failing.result)}.` : ` (the largest load tried; the server takes at most ${options.maxClients + 2} users, 2 of them the probe).`),
    '',
    '| users | server CPU | µs / client frame | late ticks | tick work, mean | tick work, max | server preempted | server waited for a CPU | latency p50 | latency p99 | frames dropped | server RSS start → end (max) | load generator CPU |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const { result: r, runs } of points) {
    const col = (f: (x: BenchResult) => number | null, digits = 1) => spread(runs.map((x) => f(x) ?? NaN), digits);
    lines.push(
      `| ${r.clients} | ${col((x) => x.server_cpu_pct, 0)}% | ${col((x) => x.cpu_us_per_client_frame)} | ${col((x) => x.late_tick_pct, 2)}% | ` +
        `${col((x) => x.tick_work_ms_mean)} ms | ${col((x) => x.tick_work_ms_max)} ms | ${col((x) => x.server_preemptions_per_s, 0)}/s | ${col((x) => (x.diagnostics ? x.diagnostics.run_queue_wait_ms! / (10 * x.seconds) : null), 0)}% | ` +
        `${col((x) => x.latency_ms_p50)} ms | ${col((x) => x.latency_ms_p99)} ms | ${col((x) => x.frames_dropped, 0)} | ` +
        `${r.server_rss_mb_start.toFixed(1)} → ${r.server_rss_mb_end.toFixed(1)} (${r.server_rss_mb.toFixed(1)}) MB | ${col((x) => x.load_cpu_pct, 0)}% |`,
    );
  }
  lines.push(
    '',
    '![CPU per client frame and p99 latency against the number of talking users](bench/sweep.svg)',
    '',
    'Mixer micro-benchmark (`RoomMixer` `add` + `mixFor` for a room of K talkers, no sockets) against',
    'a plain `Buffer.copy` of the same bytes (each input read once, each mix written once), the memory bound:',
    '',
    '| K | mixer, samples/s | Buffer.copy, samples/s | mixer is slower by | listeners one core could mix |',
    '|---:|---:|---:|---:|---:|',
    ...mixer.map((m) => `| ${m.room_size} | ${(m.mixer_samples_per_s / 1e6).toFixed(0)} M | ${(m.copy_samples_per_s / 1e6).toFixed(0)} M | ${m.mixer_vs_copy}× | ${m.mixer_listeners_per_core} |`),
    END,
  );
  return lines.join('\n');
}

/** Replaces the text between the markers (or appends it), leaving the rest of the file alone. */
function writeSection(file: string, section: string): void {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n\n';
  const begin = text.indexOf(BEGIN.slice(0, 20));
  const end = text.indexOf(END);
  const updated = begin >= 0 && end > begin ? text.slice(0, begin) + section + text.slice(end + END.length) : `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(file, updated);
}
