// Runs a program (a client under test) to completion and captures what it printed.
import { spawn } from 'node:child_process';

export interface CommandResult {
  command: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Runs `commandPrefix` (a shell command, e.g. the reference client or "python3 client.py")
 * with `args` appended (each shell-quoted). Kills it after `timeoutMs`.
 */
export function runCommand(commandPrefix: string, args: string[], options: { timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv; stdin?: string } = {}): Promise<CommandResult> {
  const command = [commandPrefix, ...args.map(shellQuote)].join(' ');
  return new Promise((resolve) => {
    const child = spawn(command, { shell: true, detached: true, cwd: options.cwd, env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    if (options.stdin !== undefined) child.stdin!.end(options.stdin);
    else child.stdin!.end();
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, options.timeoutMs ?? 30_000);
    child.once('close', (exitCode, signal) => {
      clearTimeout(timer);
      resolve({ command, exitCode, signal, stdout, stderr, timedOut });
    });
  });
}

/** `text` as one shell word: unchanged when it is plainly safe, else in single quotes. */
export function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}
