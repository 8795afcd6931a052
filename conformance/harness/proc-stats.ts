// What the kernel knows about the server: CPU time, resident memory and context switches, read
// from /proc (Linux). The server is measured from the OUTSIDE, so the numbers cost it nothing and
// need no cooperation. Everything is summed over the server's PROCESS GROUP (the benchmark starts
// it in a group of its own), so a server started through a wrapper (sh -c, a launcher script) is
// measured whole, not just the wrapper.
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/PID/stat times (USER_HZ): 100 on every usual Linux build. */
const USER_HZ = 100;

/** The fields of /proc/PID/stat after the command name (field 3 is at index 0). */
function statFields(pid: number): string[] | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null; // it ended while we looked
  }
  // The command name (field 2) may contain spaces and parentheses: count fields after the LAST ')'.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Every live process in process group `pgid`. */
export function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    if (fields !== null && Number(fields[2]) === pgid) members.push(Number(entry)); // field 5: pgrp
  }
  return members;
}

/** User + system CPU time (all threads: JavaScript, GC, libuv), summed over `pids`, in microseconds. */
export function cpuMicros(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const fields = statFields(pid);
    if (fields !== null) ticks += Number(fields[11]) + Number(fields[12]); // fields 14 and 15: utime, stime
  }
  return (ticks * 1_000_000) / USER_HZ;
}

function statusNumber(pid: number, field: string): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  } catch {
    return 0; // it ended while we looked
  }
}

/** Resident set size (VmRSS), summed over `pids`, in bytes. */
export function rssBytes(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + statusNumber(pid, 'VmRSS') * 1024, 0);
}

/**
 * Involuntary context switches of the main threads of `pids` (for Node: the event loop): times
 * the kernel took the core away while the process could run, because another process needed it.
 * Many of them = competing for a core. (Voluntary switches, waiting for sockets or timers, are not counted.)
 */
export function preemptions(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + statusNumber(pid, 'nonvoluntary_ctxt_switches'), 0);
}
