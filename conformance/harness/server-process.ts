// Starts the server under test from a command line and waits for its ready line.
// The command is any shell command with a {port} placeholder, so the same checks grade a
// server written in any language: e.g. SERVER_CMD="python3 my_server.py --port {port}".
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { CheckFailure } from './check-failure.ts';

export const READY_TIMEOUT_MS = 20_000;
const READY_LINE = /listening on (\S+):(\d+)/;

export interface ServerUnderTest {
  command: string;
  /** Where to connect: always loopback, the port is the one the ready line reports. */
  host: string;
  port: number;
  /** Everything the server printed so far (stdout and stderr), for failure reports. */
  output(): string;
  /** True while the process runs. */
  isRunning(): boolean;
  stop(): Promise<void>;
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

export async function startServerProcess(commandTemplate: string, options: { cwd?: string; readyTimeoutMs?: number } = {}): Promise<ServerUnderTest> {
  const port = await freePort();
  const command = commandTemplate.replaceAll('{port}', String(port));
  // detached: the server gets its own process group, so stop() also ends any children of the shell.
  const child = spawn(command, { shell: true, detached: true, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let exited = false;
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exitPromise = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));

  const server: ServerUnderTest = {
    command,
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
    setTimeout(() => resolve({ problem: `no "listening on HOST:PORT" line within ${timeoutMs / 1000} s` }), timeoutMs);
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
