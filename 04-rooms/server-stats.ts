// Counters for the benchmark (bench/), off unless asked for: with the environment variable
// VOICE_STATS_FILE set, the server appends one JSON line of these counters (and its pid, the
// process to signal) to that file when it starts and each time it receives SIGUSR2. Without it,
// counting costs a few additions and nothing is written. Not part of the protocol: a student's
// server need not have it.
import { appendFileSync } from 'node:fs';

/** A tick that runs more than this many milliseconds after its due time is late. */
export const LATE_TICK_MS = 5;

export const serverStats = {
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
};

/**
 * Counts one tick, whether it was late (FrameClock tells each tick its lateness) and how long its
 * work took: a tick can be late because the ticks before it were long (the server is busy) or
 * because the process was not running (the machine is busy); the work time tells which.
 */
export function countTick(latenessMs: number, workMs: number): void {
  serverStats.ticks++;
  if (latenessMs > LATE_TICK_MS) serverStats.late_ticks++;
  serverStats.tick_work_ms += workMs;
  if (workMs > serverStats.tick_work_ms_max) serverStats.tick_work_ms_max = workMs;
}

let reporting = false;

/** With VOICE_STATS_FILE set: write the counters now and on every SIGUSR2. */
export function reportStatsOnSignal(): void {
  const file = process.env.VOICE_STATS_FILE;
  if (!file || reporting) return;
  reporting = true;
  const write = () => {
    appendFileSync(file, JSON.stringify({ pid: process.pid, ...serverStats }) + '\n');
    serverStats.tick_work_ms_max = 0;
  };
  process.on('SIGUSR2', write);
  write();
}
