// What the kernel knows about a process: CPU time and resident memory, read from /proc (Linux).
// The server is measured from the OUTSIDE, so the numbers cost it nothing and need no cooperation.
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/PID/stat times (USER_HZ): 100 on every usual Linux build. */
const USER_HZ = 100;

/** User + system CPU time of process `pid` (all its threads: JavaScript, GC, libuv), in microseconds. */
export function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces and parentheses: count fields after the LAST ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]); // field 14 of the whole line
  const stime = Number(fields[12]); // field 15
  return ((utime + stime) * 1_000_000) / USER_HZ;
}

/**
 * How often the main thread of process `pid` (its event loop) was switched out: `voluntary` when
 * it waited (for sockets or timers), `involuntary` when the kernel took the core away while it
 * could run because another process needed it. Many involuntary switches = competing for a core.
 */
export function contextSwitches(pid: number): { voluntary: number; involuntary: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const count = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)$`, 'm').exec(status)?.[1] ?? NaN);
  return { voluntary: count('voluntary_ctxt_switches'), involuntary: count('nonvoluntary_ctxt_switches') };
}

/** Resident set size of process `pid` (VmRSS), in bytes. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!match) throw new Error(`no VmRSS line in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}
