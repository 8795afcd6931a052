// A raw TCP client for checks: sends exact bytes, waits for exact replies, and keeps a
// transcript of everything sent and received so a failure can show the bytes.
import { connect, type Socket } from 'node:net';
import { CheckFailure } from './check-failure.ts';

export const DEFAULT_WAIT_MS = 5_000;

export class WireClient {
  private readonly socket: Socket;
  /** Received bytes not yet consumed by a read. */
  private pending: Buffer = Buffer.alloc(0);
  private readonly sentChunks: Buffer[] = [];
  private readonly receivedChunks: Buffer[] = [];
  private closed = false;
  private waiters: (() => void)[] = [];

  /** Wraps an already connected socket (for example one accepted by a fake server in a client test). */
  constructor(socket: Socket) {
    this.socket = socket;
    // Every write leaves at once, as the stages' own clients and servers send (TCP_NODELAY): with
    // Nagle's algorithm a small write waits while the one before awaits the peer's (possibly
    // delayed) ACK, so a real-time frame could reach the server after its tick, and a correct
    // server would be judged on the grader's delay (found by the backlog check, issue 20).
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.receivedChunks.push(chunk);
      this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
      this.wake();
    });
    socket.on('error', () => {}); // a reset shows up as 'close'; checks look at what they expected
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  /** Connects; a refused connection fails the check (it never passes silently). */
  static connect(host: string, port: number): Promise<WireClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      socket.once('connect', () => resolve(new WireClient(socket)));
      socket.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          new CheckFailure(`could not connect to ${host}:${port}: ${error.code ?? error.message}`, {
            expected: 'the server accepts a TCP connection',
            actual: error.message,
            hint: 'connection refused: is the server listening on the port it was given, and still running?',
          }),
        ),
      );
    });
  }

  get sent(): Buffer {
    return Buffer.concat(this.sentChunks);
  }
  get received(): Buffer {
    return Buffer.concat(this.receivedChunks);
  }
  get isClosed(): boolean {
    return this.closed;
  }

  send(bytes: Buffer | string): void {
    const buffer = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
    this.sentChunks.push(buffer);
    if (!this.socket.destroyed) this.socket.write(buffer);
  }

  /** Half-closes: we send FIN (a clean goodbye) but keep reading. */
  end(): void {
    this.socket.end();
  }
  /** Drops the connection abruptly, as a crashed client or a pulled cable would (RST). */
  reset(): void {
    this.socket.resetAndDestroy();
  }
  destroy(): void {
    this.socket.destroy();
  }
  /** Stops reading from the socket (to play a client that never reads). */
  pauseReading(): void {
    this.socket.pause();
  }
  /** Reads again after pauseReading (what the server queued meanwhile arrives). */
  resumeReading(): void {
    this.socket.resume();
  }

  /** Wakes this client's waiters to look again: for a wait whose `ready()` also reads another socket (a UDP one). */
  nudge(): void {
    this.wake();
  }

  /** Waits until `ready()` returns a value, the connection closes, or the time runs out. */
  async waitFor<T>(ready: () => T | undefined, timeoutMs: number, what: string, hint?: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = ready();
      if (value !== undefined) return value;
      const left = deadline - Date.now();
      if (this.closed || left <= 0) {
        throw new CheckFailure(`${this.closed ? 'connection closed' : 'timed out'} while waiting for ${what}`, {
          expected: what,
          actual: this.closed ? 'the server closed the connection' : `nothing matching within ${timeoutMs} ms`,
          sent: this.sent,
          received: this.received,
          hint,
        });
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Takes exactly n bytes from the stream. */
  async readBytes(n: number, timeoutMs = DEFAULT_WAIT_MS, what = `${n} bytes`, hint?: string): Promise<Buffer> {
    return this.waitFor(() => (this.pending.length >= n ? this.take(n) : undefined), timeoutMs, what, hint);
  }

  /** Takes one line ending in "\n" (returned without it, and without a final "\r"). */
  async readLine(timeoutMs = DEFAULT_WAIT_MS, what = 'a line ending in "\\n"', hint?: string): Promise<string> {
    return this.waitFor(
      () => {
        const newline = this.pending.indexOf(0x0a);
        return newline === -1 ? undefined : this.take(newline + 1).toString('utf8').replace(/\r?\n$/, '');
      },
      timeoutMs,
      what,
      hint,
    );
  }

  /** Waits for the server to close the connection; returns any bytes that came before. */
  async waitForClose(timeoutMs = DEFAULT_WAIT_MS, what = 'the server to close the connection', hint?: string): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new CheckFailure(`the connection is still open: expected ${what}`, {
          expected: what,
          actual: `still open after ${timeoutMs} ms`,
          sent: this.sent,
          received: this.received,
          hint,
        });
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.take(this.pending.length);
  }

  private take(n: number): Buffer {
    const taken = this.pending.subarray(0, n);
    this.pending = this.pending.subarray(n);
    return taken;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
