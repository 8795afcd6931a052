// Why does a tick run late? Measured inside the counted server (bench/counted-server.ts), over
// the window between two reports (each report starts a new window):
//   - the event loop's delay (perf_hooks.monitorEventLoopDelay) and utilisation (how much of the
//     time it was running callbacks rather than waiting in epoll),
//   - every GC pause (PerformanceObserver 'gc' entries): count, total and longest, by kind,
//   - each tick's lateness, as a histogram,
//   - for every late tick, what overlapped the time it waited (from its due time to its start):
//     the previous tick's own work, a GC pause, incoming frames being read, or none of these
//     (then the process was not running: another process had the core).
//   - how long the event loop's thread waited for a CPU while it could run (the kernel's run
//     queue, /proc/thread-self/schedstat): during ticks, before late ticks, over the window,
//   - the server's memory as V8 and Node see it (heap, young generation, Buffers outside the heap).
import { constants, createHistogram, monitorEventLoopDelay, performance, PerformanceObserver, type EntryType } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';

const MB = 1024 * 1024;
/** monitorEventLoopDelay's own timer period: its samples include it, and the report subtracts it. */
const LOOP_DELAY_RESOLUTION_MS = 10;
/** Late ticks remembered per window for the attribution (bounded: memory stays flat). */
const MAX_LATE_TICKS_KEPT = 10_000;
const MAX_GC_PAUSES_KEPT = 10_000;
/** Arrival times of the last frames read: at 25 000 frames/s, the last ~300 ms. */
const FRAME_TIMES_KEPT = 8192;

const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

/** Nanoseconds this thread has spent waiting in the run queue (ready, but another thread had the CPU); 0 off Linux. */
function runQueueWaitNs(): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[1]);
  } catch {
    return 0;
  }
}

interface LateTick {
  dueAt: number;
  startedAt: number;
  /** The previous tick's work ended after this tick was due. */
  behindOwnWork: boolean;
  /** AUDIO frames read while this tick waited. */
  framesRead: number;
  /** Run-queue wait (ms) between the previous tick's end and this tick's start. */
  runQueueWaitMs: number;
}

/** Every field a number, so medians over runs are taken field by field (bench/median.ts). */
export interface Diagnostics {
  /** Fraction of the window the event loop spent running callbacks (0..1). */
  event_loop_utilization: number;
  /** How late the event loop ran a timer (beyond the monitor's own 10 ms period). */
  event_loop_delay_ms_p50: number;
  event_loop_delay_ms_p99: number;
  event_loop_delay_ms_max: number;
  tick_lateness_ms_p50: number;
  tick_lateness_ms_p99: number;
  tick_lateness_ms_max: number;
  gc_pauses: number;
  gc_ms: number;
  gc_ms_max: number;
  /** Scavenges of the young generation, and full (mark-compact) collections. */
  gc_minor: number;
  gc_major: number;
  /** Late ticks by what overlapped their wait (a tick may count under several). */
  late_ticks_behind_own_work: number;
  late_ticks_with_gc: number;
  late_ticks_reading_frames: number;
  late_ticks_unexplained: number;
  /** Frames read, on average, while a late tick waited. */
  frames_read_per_late_tick: number;
  /** Ms the event loop's thread was ready to run but had no CPU: in all, during ticks' work, and before late ticks. */
  run_queue_wait_ms: number;
  run_queue_wait_ms_in_ticks: number;
  late_ticks_lateness_ms: number;
  late_ticks_run_queue_wait_ms: number;
  heap_used_mb: number;
  heap_total_mb: number;
  new_space_mb: number;
  /** Memory of Buffers and ArrayBuffers (outside the V8 heap). */
  array_buffers_mb: number;
  external_mb: number;
}

export class ServerDiagnostics {
  private readonly loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
  private readonly lateness = createHistogram();
  private utilizationAtStart = performance.eventLoopUtilization();
  private gcPauses: { start: number; end: number; kind: string }[] = [];
  private lateTicks: LateTick[] = [];
  private lastTickEndedAt = -Infinity;
  /** A ring of the arrival times of recent frames, to count those read while a late tick waited. */
  private readonly frameTimes = new Float64Array(FRAME_TIMES_KEPT);
  private framesRead = 0;
  private runQueueAtWindowStart = runQueueWaitNs();
  private runQueueAtTickStart = 0;
  private runQueueAtTickEnd = 0;
  private runQueueInTicksNs = 0;

  constructor(private readonly lateTickMs: number) {
    this.loopDelay.enable();
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        if (this.gcPauses.length >= MAX_GC_PAUSES_KEPT) this.gcPauses.shift();
        const kind = GC_KINDS[(entry as unknown as { detail?: { kind?: number } }).detail?.kind ?? -1] ?? 'other';
        this.gcPauses.push({ start: entry.startTime, end: entry.startTime + entry.duration, kind });
      }
    }).observe({ entryTypes: ['gc' as EntryType] });
  }

  frameReceived(): void {
    this.frameTimes[this.framesRead++ % FRAME_TIMES_KEPT] = performance.now();
  }

  tickStarted(latenessMs: number): void {
    const now = performance.now();
    const dueAt = now - latenessMs;
    this.runQueueAtTickStart = runQueueWaitNs();
    this.lateness.record(Math.max(1, Math.round(latenessMs * 1000))); // in µs; a histogram takes integers >= 1
    if (latenessMs > this.lateTickMs && this.lateTicks.length < MAX_LATE_TICKS_KEPT) {
      this.lateTicks.push({ dueAt, startedAt: now, behindOwnWork: this.lastTickEndedAt > dueAt, framesRead: this.framesReadSince(dueAt), runQueueWaitMs: (this.runQueueAtTickStart - this.runQueueAtTickEnd) / 1e6 });
    }
  }

  tickEnded(): void {
    this.lastTickEndedAt = performance.now();
    this.runQueueAtTickEnd = runQueueWaitNs();
    this.runQueueInTicksNs += this.runQueueAtTickEnd - this.runQueueAtTickStart;
  }

  /** Frames read after `time` (as far back as the ring reaches). */
  private framesReadSince(time: number): number {
    let count = 0;
    for (let i = this.framesRead - 1; i >= 0 && i >= this.framesRead - FRAME_TIMES_KEPT; i--) {
      if (this.frameTimes[i % FRAME_TIMES_KEPT]! <= time) break;
      count++;
    }
    return count;
  }

  /** The window's numbers; starts a new window. */
  report(): Diagnostics {
    const utilization = performance.eventLoopUtilization(this.utilizationAtStart);
    const delayMs = (nanoseconds: number) => round(Math.max(0, nanoseconds / 1e6 - LOOP_DELAY_RESOLUTION_MS), 2);
    const us = (micros: number) => round(micros / 1000, 2);
    const windowStart = performance.now() - utilization.idle - utilization.active;
    const pauses = this.gcPauses.filter((p) => p.end >= windowStart);
    const byKind: Record<string, number> = {};
    for (const p of pauses) byKind[p.kind] = (byKind[p.kind] ?? 0) + 1;
    let withGc = 0;
    let behind = 0;
    let reading = 0;
    let unexplained = 0;
    let framesWhileWaiting = 0;
    for (const tick of this.lateTicks) {
      const gc = pauses.some((p) => p.start < tick.startedAt && p.end > tick.dueAt);
      if (gc) withGc++;
      if (tick.behindOwnWork) behind++;
      if (tick.framesRead > 0) reading++;
      if (!gc && !tick.behindOwnWork && tick.framesRead === 0) unexplained++;
      framesWhileWaiting += tick.framesRead;
    }
    const runQueueNow = runQueueWaitNs();
    const memory = process.memoryUsage();
    const newSpace = getHeapSpaceStatistics().find((space) => space.space_name === 'new_space');
    const result: Diagnostics = {
      event_loop_utilization: round(utilization.utilization, 3),
      event_loop_delay_ms_p50: delayMs(this.loopDelay.percentile(50)),
      event_loop_delay_ms_p99: delayMs(this.loopDelay.percentile(99)),
      event_loop_delay_ms_max: delayMs(this.loopDelay.max),
      tick_lateness_ms_p50: us(this.lateness.percentile(50)),
      tick_lateness_ms_p99: us(this.lateness.percentile(99)),
      tick_lateness_ms_max: us(this.lateness.max),
      gc_pauses: pauses.length,
      gc_ms: round(pauses.reduce((sum, p) => sum + (p.end - p.start), 0), 1),
      gc_ms_max: round(pauses.reduce((max, p) => Math.max(max, p.end - p.start), 0), 2),
      gc_minor: byKind.minor ?? 0,
      gc_major: byKind.major ?? 0,
      late_ticks_behind_own_work: behind,
      late_ticks_with_gc: withGc,
      late_ticks_reading_frames: reading,
      late_ticks_unexplained: unexplained,
      frames_read_per_late_tick: this.lateTicks.length > 0 ? round(framesWhileWaiting / this.lateTicks.length, 1) : 0,
      run_queue_wait_ms: round((runQueueNow - this.runQueueAtWindowStart) / 1e6, 1),
      run_queue_wait_ms_in_ticks: round(this.runQueueInTicksNs / 1e6, 1),
      late_ticks_lateness_ms: round(this.lateTicks.reduce((sum, t) => sum + (t.startedAt - t.dueAt), 0), 1),
      late_ticks_run_queue_wait_ms: round(this.lateTicks.reduce((sum, t) => sum + t.runQueueWaitMs, 0), 1),
      heap_used_mb: round(memory.heapUsed / MB, 1),
      heap_total_mb: round(memory.heapTotal / MB, 1),
      new_space_mb: round((newSpace?.space_size ?? 0) / MB, 1),
      array_buffers_mb: round(memory.arrayBuffers / MB, 1),
      external_mb: round(memory.external / MB, 1),
    };
    this.loopDelay.reset();
    this.lateness.reset();
    this.utilizationAtStart = performance.eventLoopUtilization();
    this.runQueueAtWindowStart = runQueueNow;
    this.runQueueInTicksNs = 0;
    this.gcPauses = [];
    this.lateTicks = [];
    return result;
  }
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
