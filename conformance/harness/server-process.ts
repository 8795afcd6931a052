// Starts the server under test from a command line and waits for its ready line: the one way a
// server is launched, by the checks, the fuzzer and the benchmark (bench/server-process.ts).
// The command is any shell command with a {port} placeholder, so the same checks grade a
// server written in any language: e.g. SERVER_CMD="python3 my_server.py --port {port}".
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { CheckFailure } from './check-failure.ts';

export const READY_TIMEOUT_MS = 20_000;
/** Output kept for failure reports: enough for any tail shown, bounded for long benchmark runs. */
const OUTPUT_KEPT_CHARS = 16_000;
const READY_LINE = /listening on (\S+):(\d+)/;

export interface ServerUnderTest {
  command: string;
  /** The process started (a shell, or what it ran); also the id of its own process group. */
  pid: number;
  /** Where to connect: always loopback, the port is the one the ready line reports. */
  host: string;
  port: number;
  /** Everything the server printed so far (stdout and stderr), for failure reports. */
  output(): string;
  /** True while the process runs. */
  isRunning(): boolean;
  stop(): Promise<void>;
  /** Synchronous last resort (a process 'exit' handler): SIGKILL the whole group now. */
  killNow(): void;
}

export interface StartOptions {
  cwd?: string;
  /** The server's environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
  /** What replaces {port}: default a free port found here; 0 lets the server choose. */
  port?: number;
}

/** Asks the system for a free TCP port (bind port 0, read it, release it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Runs `commandTemplate` through the shell in a process group of its own (so stop() also ends
 * anything it started) and waits for "listening on HOST:PORT"; `port` is the port it printed.
 * Throws a CheckFailure saying what the server printed when it exits or stays silent instead.
 */
export async function startServerProcess(commandTemplate: string, options: StartOptions = {}): Promise<ServerUnderTest> {
  const port = options.port ?? (await freePort());
  const command = commandTemplate.replaceAll('{port}', String(port));
  const child = spawn(command, { shell: true, detached: true, cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let exited = false;
  // Read everything (a full pipe would block the server) but keep only the tail.
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-OUTPUT_KEPT_CHARS));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exitPromise = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));

  const server: ServerUnderTest = {
    command,
    pid: child.pid!,
    host: '127.0.0.1',
    port,
    output: () => output,
    isRunning: () => !exited,
    stop: async () => {
      if (exited) return;
      killGroup(child, 'SIGTERM');
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 3_000);
      await exitPromise;
      clearTimeout(timer);
    },
    killNow: () => {
      if (!exited) killGroup(child, 'SIGKILL');
    },
  };

  const timeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS;
  const ready = await new Promise<{ port: number } | { problem: string }>((resolve) => {
    const check = () => {
      const match = READY_LINE.exec(output);
      if (match) resolve({ port: Number(match[2]) });
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    void exitPromise.then(() => resolve({ problem: `the server exited (code ${child.exitCode}) before printing "listening on HOST:PORT"` }));
    const timer = setTimeout(() => resolve({ problem: `no "listening on HOST:PORT" line within ${timeoutMs / 1000} s` }), timeoutMs);
    timer.unref(); // a server that is ready must not keep this process alive for the timeout
  });
  if ('problem' in ready) {
    await server.stop();
    throw new CheckFailure(`server did not start: ${ready.problem}`, {
      expected: `a line "listening on HOST:${port}" once the server accepts connections`,
      actual: `the server printed: ${JSON.stringify(output.slice(-600)) || '(nothing)'}`,
      hint: `command was: ${command}. Print the ready line (and flush standard output) after listen() succeeds.`,
    });
  }
  server.port = ready.port; // the real port, even if the server was told something else
  return server;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
}
