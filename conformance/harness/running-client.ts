// A client under test, run through its command line: kept running with its standard input open
// (as a terminal's would be), so a check can type commands and watch what it prints.
import { spawn } from 'node:child_process';
import { CheckFailure } from './check-failure.ts';
import { shellQuote, type CommandResult } from './run-command.ts';

/** What a client run did, in one line for failure reports. */
export function describeRun(result: CommandResult): string {
  return `exit ${result.exitCode}${result.timedOut ? ' (killed: timed out)' : ''}; stdout ${JSON.stringify(result.stdout.slice(-400))}; stderr ${JSON.stringify(result.stderr.slice(-300))}`;
}

/** The client under test, running, with its standard input open (as a terminal's) so a check can type commands. */
export class RunningClient {
  private out = '';
  private err = '';
  private timedOut = false;
  private wakeOnOutput: (() => void)[] = [];
  private readonly child;
  readonly done: Promise<CommandResult>;

  /** @param limitMs kills the client if it is still running after this long, whatever happens */
  constructor(commandPrefix: string, args: string[], limitMs: number) {
    const command = [commandPrefix, ...args.map(shellQuote)].join(' ');
    // detached: the client gets its own process group, so a kill also ends what the shell started.
    this.child = spawn(command, { shell: true, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (chunk: Buffer) => {
      this.out += chunk.toString();
      for (const wake of this.wakeOnOutput.splice(0)) wake();
    });
    this.child.stderr!.on('data', (chunk: Buffer) => (this.err += chunk.toString()));
    this.child.stdin!.on('error', () => {}); // typing to a client that has exited: its result tells
    const limit = setTimeout(() => this.kill(), limitMs);
    this.done = new Promise((resolve) =>
      this.child.once('close', (exitCode, signal) => {
        clearTimeout(limit);
        for (const wake of this.wakeOnOutput.splice(0)) wake();
        resolve({ command, exitCode, signal, stdout: this.out, stderr: this.err, timedOut: this.timedOut });
      }),
    );
  }

  get stdout(): string {
    return this.out;
  }

  /** Waits until standard output passes `test`; fails after `ms` or if the client exits first. */
  async waitForStdout(test: (stdout: string) => boolean, ms: number, what: string, hint: string): Promise<void> {
    const deadline = Date.now() + ms;
    let exited = false;
    void this.done.then(() => (exited = true));
    while (!test(this.out)) {
      const left = deadline - Date.now();
      if (left <= 0 || exited) {
        throw new CheckFailure(`${exited ? 'the client exited' : 'timed out'} while waiting for ${what}`, {
          expected: what,
          actual: `standard output so far: ${JSON.stringify(this.out.slice(-400))}; standard error: ${JSON.stringify(this.err.slice(-200))}`,
          hint,
        });
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wakeOnOutput.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }

  /** Writes to the client's standard input, as a user typing (end lines with "\n"). */
  type(text: string): void {
    this.child.stdin!.write(text);
  }

  /** Closes the client's standard input (end of file), as a script that gives it no input does. */
  closeInput(): void {
    this.child.stdin!.end();
  }

  /** Waits for the client to exit, killing it (timedOut: true) after `ms`. */
  async exit(ms: number): Promise<CommandResult> {
    const timer = setTimeout(() => this.kill(), ms);
    try {
      return await this.done;
    } finally {
      clearTimeout(timer);
    }
  }

  kill(): void {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.timedOut = true;
    try {
      process.kill(-this.child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
