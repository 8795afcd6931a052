// The server under test, as a SEPARATE process with its own process group: started from the
// stage's real command line, measured from outside through /proc, and killed (with anything it
// started) at the end. Optional counters come from the server itself: with VOICE_STATS_FILE set,
// a server that supports it appends one JSON line of counters at start and on each SIGUSR2
// (the stage 04 reference server does, when started through bench/counted-server.ts).
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { CheckFailure } from '../conformance/harness/check-failure.ts';
import { cpuMicros, groupMembers, preemptions, rssBytes } from '../conformance/harness/proc-stats.ts';
import { shellQuote } from '../conformance/harness/run-command.ts';
import { startServerProcess, type ServerUnderTest } from '../conformance/harness/server-process.ts';
import type { Diagnostics } from './server-diagnostics.ts';
import { pinnedServerCommand, pinToServerCpu, type Pinning } from './pinning.ts';

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const STATS_TIMEOUT_MS = 2_000;

/** The counters a cooperating server reports (see bench/counted-server.ts). */
export interface ServerCounters {
  ticks: number;
  late_ticks: number;
  skipped_ticks: number;
  /** Milliseconds of mixing and sending, summed over ticks (older servers: absent). */
  tick_work_ms?: number;
  /** The longest tick's work since the previous report. */
  tick_work_ms_max?: number;
  frames_received: number;
  frames_dropped: Record<string, number>;
  /** Why ticks run late, over the time since the previous report (bench/server-diagnostics.ts; older servers: absent). */
  diagnostics?: Diagnostics;
}

export interface ServerOptions {
  stage: string;
  /** Extra node flags for the server, e.g. ['--cpu-prof', '--cpu-prof-dir=DIR']. */
  nodeFlags?: string[];
  /**
   * Any other server, as a shell command (bench --server): `{port}` becomes 0, and the real port
   * is read from its ready line. It must speak the stage's protocol; counters are optional.
   */
  command?: string;
  /** Where the server may run (bench/pinning.ts); default: anywhere. */
  pinning?: Pinning;
}

/**
 * Node flags the stage's own command uses (package.json "stage:04"): a young generation of at most
 * 1 MB per semi-space. Left to itself V8 grows it to 16 MB under the allocation rate of hundreds of
 * talkers, and the garbage Buffers it holds between scavenges: ~70 KB of RSS per talking user
 * (see BENCHMARKS.md, "Memory"). The benchmark runs the server as that command does.
 */
export const STAGE_NODE_FLAGS: Record<string, string[]> = { '04': ['--max-semi-space-size=1'] };

/** The command that starts the stage's reference server, with its counters, on loopback, any free port. */
export function serverCommand(stage: string): string[] {
  if (stage === 'floor') return [join(REPO_ROOT, 'bench', 'io-floor-server.ts'), '127.0.0.1', '0'];
  if (stage === '04') return [join(REPO_ROOT, 'bench', 'counted-server.ts'), '127.0.0.1', '0'];
  // Stage 05 forwards Opus packets as they come (no tick): bench/forwarding-bench.ts measures it.
  if (stage === '05') return [join(REPO_ROOT, 'bench', 'forwarding-server.ts'), '127.0.0.1', '0'];
  throw new Error(`stage ${stage}: only stages 04 (rooms) and 05 (Opus forwarding) have a benchmark (and "floor", the I/O floor server in bench/)`);
}

export class ServerProcess {
  private constructor(
    private readonly launched: ServerUnderTest,
    private readonly statsDir: string,
    readonly command: string,
  ) {}

  static async start(options: ServerOptions): Promise<{ server: ServerProcess; port: number }> {
    const statsDir = mkdtempSync(join(tmpdir(), 'voice-bench-'));
    const reference = [process.execPath, ...(STAGE_NODE_FLAGS[options.stage] ?? []), '--import', 'tsx', ...(options.nodeFlags ?? []), ...serverCommand(options.stage)];
    // The checks' launcher: a process group of its own, so stop() ends the server and anything it
    // started, and /proc measures the whole group. {port} becomes 0: the ready line says the port.
    let launched: ServerUnderTest;
    try {
      const command = options.command ?? reference.map(shellQuote).join(' ');
      launched = await startServerProcess(options.pinning ? pinnedServerCommand(options.pinning, command) : command, {
        cwd: REPO_ROOT,
        port: 0,
        env: { ...process.env, VOICE_STATS_FILE: join(statsDir, 'stats.jsonl') },
      });
    } catch (error) {
      rmSync(statsDir, { recursive: true, force: true });
      if (error instanceof CheckFailure) throw new Error(`${error.summary}; ${error.details.actual ?? ''}`);
      throw error;
    }
    // The launching shell too, so every process of the group reports the server's CPU alone.
    if (options.pinning) pinToServerCpu(options.pinning, groupMembers(launched.pid));
    const shown = options.command ?? ['node', ...reference.slice(1)].join(' ').replaceAll(REPO_ROOT, '');
    return { server: new ServerProcess(launched, statsDir, shown), port: launched.port };
  }

  get pid(): number {
    return this.launched.pid;
  }

  /** CPU time of the server's process group, in microseconds. */
  cpuMicros(): number {
    return cpuMicros(groupMembers(this.pid));
  }

  /** The server's processes (its process group). */
  members(): number[] {
    return groupMembers(this.pid);
  }

  rssBytes(): number {
    return rssBytes(groupMembers(this.pid));
  }

  preemptions(): number {
    return preemptions(groupMembers(this.pid));
  }

  /** Whether the server wrote its start-up counters line (it supports VOICE_STATS_FILE). */
  get reportsStats(): boolean {
    return this.readStatsLines().length > 0;
  }

  /** Asks for the counters (SIGUSR2) and waits for the new line; null if the server has no stats. */
  async stats(): Promise<ServerCounters | null> {
    // Never signal a server that did not say it handles SIGUSR2: by default the signal kills.
    const before = this.readStatsLines();
    if (before.length === 0) return null;
    // Signal the process that wrote the counters: under a wrapper (sh -c "... | tee") that is
    // not the group leader, and SIGUSR2 would kill the wrapper.
    const writer = (JSON.parse(before[0]!) as { pid?: number }).pid ?? this.pid;
    process.kill(writer, 'SIGUSR2');
    const deadline = performance.now() + STATS_TIMEOUT_MS;
    while (performance.now() < deadline) {
      const lines = this.readStatsLines();
      if (lines.length > before.length) return JSON.parse(lines[lines.length - 1]!) as ServerCounters;
      await sleep(5);
    }
    throw new Error(`the server did not write its counters within ${STATS_TIMEOUT_MS} ms of SIGUSR2`);
  }

  /** The last lines the server printed, for error messages. */
  tail(): string {
    return this.launched.output().slice(-1500);
  }

  async stop(): Promise<void> {
    await this.launched.stop();
    rmSync(this.statsDir, { recursive: true, force: true });
  }

  /** Synchronous last resort (process 'exit' handler): kill the whole group now. */
  killNow(): void {
    this.launched.killNow();
  }

  private readStatsLines(): string[] {
    const file = join(this.statsDir, 'stats.jsonl');
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8').split('\n').filter((line) => line.trim() !== '');
  }
}
