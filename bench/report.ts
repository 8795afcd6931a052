// A benchmark result for people (a small table) and for machines (one JSON line).
import type { BenchResult } from './measure.ts';

const show = (value: number | null, unit = '') => (value === null || Number.isNaN(value) ? 'n/a' : `${value}${unit}`);

export function resultTable(r: BenchResult): string {
  const dropped = r.frames_dropped_by_reason
    ? Object.entries(r.frames_dropped_by_reason).map(([reason, n]) => `${reason} ${n}`).join(', ')
    : 'n/a (the server reports no counters)';
  const rows: [string, string][] = [
    ['load', `${r.clients} clients in rooms of ${r.room_size}, ${r.talkers} talking, + probe room; ${r.seconds} s measured`],
    ['pinning', `${r.pinning} (allowed: server ${r.server_cpus}, load ${r.load_cpus})`],
    ['server CPU', `${r.server_cpu_pct}% of one core; ${r.cpu_us_per_client_frame} µs per client frame`],
    ['ticks', `${show(r.ticks)}, late (> 5 ms) ${show(r.late_ticks)} (${show(r.late_tick_pct, '%')}), skipped ${show(r.skipped_ticks)}`],
    ['tick work', `mean ${show(r.tick_work_ms_mean, ' ms')}, max ${show(r.tick_work_ms_max, ' ms')}; server preempted ${r.server_preemptions_per_s} times/s`],
    ...diagnosticRows(r),
    ['latency added', `p50 ${show(r.latency_ms_p50)} ms, p99 ${show(r.latency_ms_p99)} ms, max ${show(r.latency_ms_max)} ms (${r.latency_samples} impulses, ${r.probe_impulses_lost} lost)`],
    ['frames', `in ${r.frames_in_per_s}/s, mixes out ${r.mixes_out_per_s}/s; dropped ${show(r.frames_dropped)}: ${dropped}`],
    ['bytes', `in ${(r.bytes_in_per_s / 1e6).toFixed(2)} MB/s, out ${(r.bytes_out_per_s / 1e6).toFixed(2)} MB/s`],
    ['server RSS', `max ${r.server_rss_mb} MB (start ${r.server_rss_mb_start}, end ${r.server_rss_mb_end}); idle ${r.server_rss_mb_idle} MB before anyone connected: ${r.server_rss_kb_per_user_above_idle} KB per user above idle`],
    ['load generator', `${r.load_cpu_pct}% of one core, ${r.load_late_sends} late sends; machine load average ${r.machine_load_average}`],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join('\n');
}

export function resultJson(r: BenchResult): string {
  return JSON.stringify(r);
}

/** What the server saw inside (only servers started through bench/counted-server.ts report it). */
function diagnosticRows(r: BenchResult): [string, string][] {
  const d = r.diagnostics;
  if (d === null) return [];
  return [
    ['event loop', `busy ${Math.round(100 * d.event_loop_utilization!)}%; delay p50 ${d.event_loop_delay_ms_p50} ms, p99 ${d.event_loop_delay_ms_p99} ms, max ${d.event_loop_delay_ms_max} ms; tick lateness p50 ${d.tick_lateness_ms_p50} ms, p99 ${d.tick_lateness_ms_p99} ms, max ${d.tick_lateness_ms_max} ms`],
    ['GC', `${d.gc_pauses} pauses (${d.gc_minor} minor, ${d.gc_major} major), ${d.gc_ms} ms in all, longest ${d.gc_ms_max} ms`],
    ['late ticks waited', `behind the previous tick's work ${d.late_ticks_behind_own_work}, during GC ${d.late_ticks_with_gc}, while reading frames ${d.late_ticks_reading_frames} (${d.frames_read_per_late_tick} per late tick), none of these ${d.late_ticks_unexplained}; late by ${d.late_ticks_lateness_ms} ms in all, of which ${d.late_ticks_run_queue_wait_ms} ms waiting for a CPU`],
    ['waiting for a CPU', `${d.run_queue_wait_ms} ms in the window (the event loop was ready, another thread had the CPU), ${d.run_queue_wait_ms_in_ticks} ms of it inside ticks`],
    ['server memory', `heap ${d.heap_used_mb} of ${d.heap_total_mb} MB (young generation ${d.new_space_mb} MB), Buffers ${d.array_buffers_mb} MB, external ${d.external_mb} MB`],
  ];
}
