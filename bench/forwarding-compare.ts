// npm run bench -- --compare --stage 05 [--murmur-harness DIR] [--capacity 200,400,800]: stage 05
// (Opus forwarding) and murmur on murmur's own load shape, interleaved round by round so the
// machine's speed cancels out of the ratio: N users in rooms of K, everyone talking, 60-byte
// packets every 20 ms, every client reads everything. Both are measured the same way: server CPU
// over the packets it forwarded (copies / (K - 1)), send -> receive time per copy, and "kept up"
// = every client got 98% of its copies in the window with p99 under 100 ms. --capacity adds one
// interleaved round per user count, to find where each stops keeping up.
import { median, spread } from './median.ts';
import { loadAverage } from './machine.ts';
import { planPinning } from './pinning.ts';
import { murmurProblem, runMurmurHarness } from './compare.ts';
import { runForwardingBenchmark } from './forwarding-bench.ts';

export interface ForwardingCompareOptions {
  clients: number;
  roomSize: number;
  seconds: number;
  warmupSeconds: number;
  repeat: number;
  pin: boolean;
  murmurHarness?: string;
  capacity: number[];
}

/** One server, one run, in the fields both measure. */
interface Run {
  us_per_packet: number;
  us_per_copy: number;
  cpu_pct: number;
  p50: number;
  p99: number;
  worst_client_share: number;
  rss_mb_idle: number;
  rss_mb: number;
  kept_up: boolean;
  /** The load generator's event-loop delay p99 (stage 05 only: murmur's harness does not report it). */
  load_loop_p99: number | null;
}

const BAR_CPU_RATIO = 1 / 5;
const BAR_P99_MS = 5;

export async function runForwardingComparison(o: ForwardingCompareOptions, command: string): Promise<string> {
  const murmurAbsent = murmurProblem(o.murmurHarness);
  const measure = async (clients: number): Promise<{ stage05: Run; murmur: Run | null }> => {
    const shape = { clients, roomSize: o.roomSize, seconds: o.seconds, warmupSeconds: o.warmupSeconds, pin: o.pin };
    console.error(`compare 05: ${clients} users, stage 05 ...`);
    const f = await runForwardingBenchmark(shape, command);
    const stage05: Run = {
      us_per_packet: f.cpu_us_per_received_packet,
      us_per_copy: f.cpu_us_per_forwarded_copy,
      cpu_pct: f.server_cpu_pct,
      p50: f.latency_ms_p50,
      p99: f.latency_ms_p99,
      worst_client_share: f.worst_client_share,
      rss_mb_idle: f.server_rss_mb_idle,
      rss_mb: f.server_rss_mb,
      kept_up: f.kept_up,
      load_loop_p99: f.load_event_loop_delay_ms_p99,
    };
    console.error(`  ${stage05.us_per_packet} µs per received packet, p99 ${stage05.p99} ms (load generator's event loop late by p99 ${stage05.load_loop_p99} ms)`);
    if (murmurAbsent !== null) return { stage05, murmur: null };
    console.error(`compare 05: ${clients} users, murmur ...`);
    const m = await runMurmurHarness(o.murmurHarness!, shape);
    const murmur: Run = {
      us_per_packet: m.server.us_per_packet,
      us_per_copy: m.server.us_per_delivered_copy,
      cpu_pct: m.server.cpu_pct_of_one_core,
      p50: m.latency_ms.p50,
      p99: m.latency_ms.p99,
      worst_client_share: m.per_client_ratio.min,
      rss_mb_idle: m.server.rss_idle_mb,
      rss_mb: m.server.rss_mb,
      kept_up: m.server_kept_up,
      load_loop_p99: null,
    };
    console.error(`  ${murmur.us_per_packet} µs per received packet, p99 ${murmur.p99} ms`);
    return { stage05, murmur };
  };

  const loadBefore = loadAverage();
  const rounds: { stage05: Run; murmur: Run | null }[] = [];
  for (let i = 0; i < o.repeat; i++) rounds.push(await measure(o.clients));
  const sweep: { clients: number; stage05: Run; murmur: Run | null }[] = [];
  for (const clients of o.capacity) sweep.push({ clients, ...(await measure(clients)) });
  const loadAfter = loadAverage();

  const ratios = rounds.filter((r) => r.murmur !== null).map((r) => r.stage05.us_per_packet / r.murmur!.us_per_packet);
  const ratio = ratios.length ? median(ratios) : null;
  const p99 = median(rounds.map((r) => r.stage05.p99));
  const lines = [
    `\`${command}\`: ${o.clients} users in rooms of ${o.roomSize}, everyone talking, 60-byte packets every 20 ms, every client reads everything; ` +
      `${o.warmupSeconds} s warm-up, ${o.seconds} s measured, ${o.repeat} round${o.repeat > 1 ? 's' : ''} (stage 05 then murmur in each); medians (min–max); ` +
      `${planPinning(o.pin).description} (murmur: its harness pins it to CPU 0, its load to CPU 1); load average ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after.`,
    '',
    '| server | µs CPU per received packet | µs per forwarded copy | server CPU | latency p50 / p99 | worst client | RSS idle → end | kept up |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
    row('stage 05 (Node, plain TCP, forwards 7 copies)', rounds.map((r) => r.stage05)),
    murmurAbsent === null
      ? row('murmur 1.3.4 (TLS, forwards 7 copies)', rounds.map((r) => r.murmur!))
      : `| murmur | not measured: ${murmurAbsent} | | | | | | |`,
    '',
    `Bars (issue 21, item 5), same rounds: stage 05 ÷ murmur CPU per received packet = ${ratio === null ? 'n/a (murmur not measured)' : `${ratio.toFixed(3)} (per round: ${ratios.map((v) => v.toFixed(3)).join(', ')})`}, ` +
      `bar ≤ ${BAR_CPU_RATIO.toFixed(2)}: ${ratio === null ? 'not judged' : ratio <= BAR_CPU_RATIO ? 'MET' : 'NOT MET'}; ` +
      `stage 05 p99 added latency ${p99.toFixed(2)} ms (the load generator's own event loop ran late by p99 ${median(rounds.map((r) => r.stage05.load_loop_p99!)).toFixed(2)} ms: part of it), bar ≤ ${BAR_P99_MS} ms: ${p99 <= BAR_P99_MS ? 'MET' : 'NOT MET'}.`,
  ];
  if (sweep.length) {
    lines.push('', '| users | stage 05: µs/packet, CPU, p99, kept up | murmur: µs/packet, CPU, p99, kept up |', '|---:|---|---|');
    const cell = (r: Run | null) => (r === null ? 'not measured' : `${r.us_per_packet} µs, ${r.cpu_pct}%, ${r.p99} ms, ${r.kept_up ? 'yes' : `no (worst client ${(r.worst_client_share * 100).toFixed(0)}%)`}`);
    for (const s of sweep) lines.push(`| ${s.clients} | ${cell(s.stage05)} | ${cell(s.murmur)} |`);
    // The main rounds count too: a server kept up at --clients if it did in every round.
    const tried = [{ clients: o.clients, stage05: rounds.every((r) => r.stage05.kept_up), murmur: rounds.every((r) => r.murmur?.kept_up) }];
    for (const s of sweep) tried.push({ clients: s.clients, stage05: s.stage05.kept_up, murmur: s.murmur?.kept_up === true });
    const capacity = (server: 'stage05' | 'murmur') => {
      const ok = tried.filter((t) => t[server]).map((t) => t.clients);
      return ok.length ? `${Math.max(...ok)} users` : 'none of these';
    };
    const counts = [...new Set(tried.map((t) => t.clients))].sort((a, b) => a - b);
    lines.push('', `Kept up at most (of ${counts.join(', ')}): stage 05 ${capacity('stage05')}; murmur ${murmurAbsent === null ? capacity('murmur') : 'not measured'}.`);
  }
  return lines.join('\n');
}

function row(name: string, runs: Run[]): string {
  const s = (f: (r: Run) => number, digits = 1) => spread(runs.map(f), digits);
  const keptUp = runs.filter((r) => r.kept_up).length;
  return (
    `| ${name} | ${s((r) => r.us_per_packet)} | ${s((r) => r.us_per_copy, 2)} | ${s((r) => r.cpu_pct, 0)}% | ${s((r) => r.p50, 2)} / ${s((r) => r.p99, 2)} ms | ` +
    `${(median(runs.map((r) => r.worst_client_share)) * 100).toFixed(1)}% | ${s((r) => r.rss_mb_idle, 0)} → ${s((r) => r.rss_mb, 0)} MB | ${keptUp} of ${runs.length} |`
  );
}
