// The machine a benchmark ran on: numbers mean little without it.
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface Machine {
  cpu: string;
  cores: number;
  node: string;
  kernel: string;
}

export function describeMachine(): Machine {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpu;
  } catch {
    // not Linux: os.cpus() is the best we have
  }
  return { cpu, cores: os.cpus().length, node: process.version, kernel: `${os.type()} ${os.release()}` };
}

/** The 1-minute load average: how busy the machine was with OTHER work while we measured. */
export function loadAverage(): number {
  return os.loadavg()[0]!;
}
