// What the kernel knows about a server under test: CPU time, resident memory, context switches
// and open file descriptors, read from /proc (Linux). The server is measured from the OUTSIDE, so
// the numbers cost it nothing and need no cooperation, whatever language it is written in.
// The benchmark sums over the server's PROCESS GROUP (it starts it in a group of its own), so a
// server started through a wrapper (sh -c, a launcher script) is measured whole; the hostile
// checks find the one process that listens on the server's port.
// Elsewhere (no /proc, a server in a container) nothing is found, and callers say they skipped.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export const MB = 1024 * 1024;

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

/** Open file descriptors (sockets included) of `pid`. */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** The process that holds a listening socket. */
export interface ServerResources {
  pid: number;
  /** Resident memory in bytes. */
  rss(): number;
  /** Open file descriptors (sockets included). */
  openFds(): number;
}

const LISTEN = '0A';

/** The text of /proc/net/tcp and tcp6 (the tables of this machine's TCP sockets; '' where there are none). */
export function tcpTablesText(): string {
  let text = '';
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    try {
      text += readFileSync(table, 'utf8');
    } catch {
      // not on Linux, or no IPv6: nothing to read there
    }
  }
  return text;
}

/** The inode of the socket listening on `port`, from /proc/net/tcp and tcp6. */
function listeningInode(port: number): string | undefined {
  for (const line of tcpTablesText().split('\n')) {
    const fields = line.trim().split(/\s+/);
    const localPort = fields[1]?.split(':')[1];
    if (localPort !== undefined && parseInt(localPort, 16) === port && fields[3] === LISTEN) return fields[9];
  }
  return undefined;
}

/**
 * The process listening on `port` (found by the socket's inode, then the process holding it), so
 * it works for a server in any language started by any shell command; undefined when it cannot be
 * seen from here.
 */
export function findServerProcess(port: number): ServerResources | undefined {
  const inode = listeningInode(port);
  if (inode === undefined) return undefined;
  const target = `socket:[${inode}]`;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue; // not ours to look at, or gone
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${entry}/fd/${fd}`) === target) {
          const pid = Number(entry);
          // rss() throws once the process is gone (a dead server must not read as 0 bytes).
          const rss = () => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
          return { pid, rss, openFds: () => openFds(pid) };
        }
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}
