// What the operating system says about the server under test, when it runs on this machine (Linux):
// its resident memory (VmRSS in /proc/PID/status) and its open file descriptors (/proc/PID/fd).
// The process is found by its listening port (the socket's inode in /proc/net/tcp*, then the process
// holding that inode), so it works for a server in any language started by any shell command.
// Elsewhere (no /proc, a server in a container) it finds nothing, and the checks say they skipped it.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface ServerResources {
  pid: number;
  /** Resident memory in bytes. */
  rss(): number;
  /** Open file descriptors (sockets included). */
  openFds(): number;
}

const LISTEN = '0A';

function listeningInode(port: number): string | undefined {
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const localPort = fields[1]?.split(':')[1];
      if (localPort !== undefined && parseInt(localPort, 16) === port && fields[3] === LISTEN) return fields[9];
    }
  }
  return undefined;
}

/** The process listening on `port`, or undefined when it cannot be seen from here. */
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
        if (readlinkSync(`/proc/${entry}/fd/${fd}`) === target) return resourcesOf(Number(entry));
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}

function resourcesOf(pid: number): ServerResources {
  return {
    pid,
    rss: () => {
      const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return match ? Number(match[1]) * 1024 : 0;
    },
    openFds: () => readdirSync(`/proc/${pid}/fd`).length,
  };
}

export const MB = 1024 * 1024;
