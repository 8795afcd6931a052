// The stage 04 reference server with the benchmark's counters: what `npm run bench` starts.
//   node --import tsx bench/counted-server.ts HOST PORT
// The stage folder has no benchmark code: this file starts the same server through its
// ServerObserver hook and counts what the hook reports. With the environment variable
// VOICE_STATS_FILE set, it appends one JSON line of the counters (and its pid, the process to
// signal) to that file at start and each time it receives SIGUSR2 (bench/server-process.ts reads
// them). Any other server measured with `npm run bench -- --server CMD` may do the same, or not.
import { appendFileSync } from 'node:fs';
import { runMain } from '#shared/user-error.ts';
import { type ServerObserver, startServer } from '../04-rooms/server.ts';
import { ServerDiagnostics } from './server-diagnostics.ts';
import type { ServerCounters } from './server-process.ts';

/** A tick that runs more than this many milliseconds after its due time is late. */
export const LATE_TICK_MS = 5;

const counters = {
  ticks: 0,
  /** Ticks that ran more than LATE_TICK_MS after their due time. */
  late_ticks: 0,
  /** Ticks the clock skipped after the event loop was blocked for too long. */
  skipped_ticks: 0,
  /** Milliseconds spent mixing and sending, summed over all ticks: the server's own work per tick. */
  tick_work_ms: 0,
  /** The longest tick's work since the last report (reset by each report). */
  tick_work_ms_max: 0,
  /** AUDIO frames received from talkers. */
  frames_received: 0,
  frames_dropped: {
    /** Incoming frames dropped because a talker's jitter buffer was full. */
    jitter_overflow: 0,
    /** Incoming frames dropped to cut a talker's standing backlog (JITTER_TRIM_AFTER_TICKS). */
    jitter_trim: 0,
    /** Mixes not sent because the listener's send buffer was full. */
    slow_reader: 0,
  },
} satisfies ServerCounters;

// A tick can be late because the ticks before it were long (the server is busy) or because the
// process was not running (the machine is busy); the work time tells which.
let tickStartedAt = 0;
const diagnostics = new ServerDiagnostics(LATE_TICK_MS);
const countingObserver: ServerObserver = {
  tickStarted(latenessMs) {
    counters.ticks++;
    if (latenessMs > LATE_TICK_MS) counters.late_ticks++;
    tickStartedAt = performance.now();
    diagnostics.tickStarted(latenessMs);
  },
  tickEnded() {
    const workMs = performance.now() - tickStartedAt;
    counters.tick_work_ms += workMs;
    if (workMs > counters.tick_work_ms_max) counters.tick_work_ms_max = workMs;
    diagnostics.tickEnded();
  },
  ticksSkipped(count) {
    counters.skipped_ticks += count;
  },
  frameReceived() {
    counters.frames_received++;
    diagnostics.frameReceived();
  },
  frameDropped(reason) {
    if (reason === 'overflow') counters.frames_dropped.jitter_overflow++;
    else counters.frames_dropped.jitter_trim++;
  },
  mixSkipped() {
    counters.frames_dropped.slow_reader++;
  },
};

/** With VOICE_STATS_FILE set: write the counters now and on every SIGUSR2. */
function reportCountersOnSignal(): void {
  const file = process.env.VOICE_STATS_FILE;
  if (!file) return;
  const write = () => {
    // The diagnostics cover the time since the previous report (each report starts a new window).
    appendFileSync(file, JSON.stringify({ pid: process.pid, ...counters, diagnostics: diagnostics.report() }) + '\n');
    counters.tick_work_ms_max = 0;
  };
  process.on('SIGUSR2', write);
  write(); // before the ready line: whoever sees that line can already signal
}

const [host = '127.0.0.1', port = '0'] = process.argv.slice(2);
reportCountersOnSignal();
await runMain(async () => void (await startServer(host, Number(port), countingObserver)));
