// CPU pinning: the server on one CPU, the load generator and the latency probe on the others, so
// a late tick measures the server, not the load competing with it for the same core. Done with
// `taskset` (util-linux) where it exists; elsewhere the benchmark runs unpinned and says why.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export type Pinning =
  | { pinned: true; taskset: string; serverCpu: number; loadCpus: number[]; allCpus: number[]; description: string }
  | { pinned: false; description: string };

/** "0-3,8" -> [0, 1, 2, 3, 8] (the kernel's CPU list format, as in Cpus_allowed_list). */
export function parseCpuList(list: string): number[] {
  const cpus: number[] = [];
  for (const part of list.trim().split(',')) {
    if (part === '') continue;
    const [from, to = from] = part.split('-').map(Number);
    for (let cpu = from!; cpu <= to!; cpu++) cpus.push(cpu);
  }
  return cpus;
}

/** The CPUs process `pid` may run on (Linux), or null where that cannot be read. */
export function allowedCpus(pid: number | 'self' = 'self'): number[] | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const list = /^Cpus_allowed_list:\s*(\S+)/m.exec(status)?.[1];
    return list === undefined ? null : parseCpuList(list);
  } catch {
    return null;
  }
}

function findOnPath(program: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, program);
    if (dir !== '' && existsSync(candidate)) return candidate;
  }
  return null;
}

/** Decides the pinning: `wanted` false (--no-pin) turns it off; otherwise on where it can be done. */
export function planPinning(wanted: boolean): Pinning {
  if (!wanted) return { pinned: false, description: 'not pinned (--no-pin): server, load and probe share all CPUs' };
  const taskset = findOnPath('taskset');
  if (taskset === null) return { pinned: false, description: 'not pinned: taskset not found (install util-linux); server, load and probe share all CPUs' };
  const cpus = allowedCpus();
  if (cpus === null) return { pinned: false, description: 'not pinned: cannot read this process\'s allowed CPUs (/proc/self/status)' };
  if (cpus.length < 2) return { pinned: false, description: `not pinned: only CPU ${cpus.join(',')} is available, so the server cannot have one to itself` };
  const [serverCpu, ...loadCpus] = cpus as [number, ...number[]];
  return {
    pinned: true,
    taskset,
    serverCpu,
    loadCpus,
    allCpus: cpus,
    description: `pinned (taskset): server on CPU ${serverCpu}, load generator and probe on CPU${loadCpus.length > 1 ? 's' : ''} ${loadCpus.join(',')}`,
  };
}

/** The shell command that runs `command` (itself a shell command) on the server's CPU. */
export function pinnedServerCommand(pinning: Pinning, command: string): string {
  if (!pinning.pinned) return command;
  // Through sh -c, so a command with pipes or redirections is pinned whole; children inherit it.
  return `${pinning.taskset} -c ${pinning.serverCpu} sh -c ${singleQuote(command)}`;
}

/** Moves processes that already run (every thread) onto the server's CPU: e.g. the shell that launched it. */
export function pinToServerCpu(pinning: Pinning, pids: number[]): void {
  if (!pinning.pinned) return;
  for (const pid of pids) {
    try {
      execFileSync(pinning.taskset, ['-a', '-p', '-c', String(pinning.serverCpu), String(pid)], { stdio: 'ignore' });
    } catch {
      // it ended meanwhile
    }
  }
}

/** Runs THIS process (the probe and the benchmark's bookkeeping) on the load CPUs, every thread. */
export function pinThisProcess(pinning: Pinning): void {
  if (pinning.pinned) execFileSync(pinning.taskset, ['-a', '-p', '-c', pinning.loadCpus.join(','), String(process.pid)], { stdio: 'ignore' });
}

/** Gives this process all its CPUs back after a pinned run. */
export function unpinThisProcess(pinning: Pinning): void {
  if (pinning.pinned) execFileSync(pinning.taskset, ['-a', '-p', '-c', pinning.allCpus.join(','), String(process.pid)], { stdio: 'ignore' });
}

function singleQuote(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}
