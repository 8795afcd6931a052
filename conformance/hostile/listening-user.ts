// One connection to the server under test that keeps every frame it receives, with its arrival
// time, and checks that each is well formed (server-frames.ts). Used for the well-behaved users
// and for the offenders alike.
import { connect, type Socket } from 'node:net';
import type { CheckContext } from '../harness/checks.ts';
import { CheckFailure } from '../harness/check-failure.ts';
import { jsonFrame } from './frames.ts';
import { ServerFrameReader, type ServerFrame } from './server-frames.ts';
import { bye } from './well-behaved.ts';
import { AUDIO, HELLO, USERS, WELCOME, type StageWire } from './wire-spec.ts';

/** A connection of a well-behaved user that keeps every frame it receives, with its arrival time. */
export class ListeningUser {
  readonly frames: (ServerFrame & { at: number })[] = [];
  private readonly reader: ServerFrameReader;
  closed = false;
  private waiters: (() => void)[] = [];

  private constructor(readonly name: string, readonly socket: Socket, wire: StageWire) {
    this.reader = new ServerFrameReader(wire);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      const before = this.reader.frames.length;
      this.reader.push(chunk);
      const now = performance.now();
      for (const frame of this.reader.frames.slice(before)) this.frames.push({ ...frame, at: now });
      this.wake();
    });
    socket.on('close', () => ((this.closed = true), this.wake()));
  }

  /** Connects without sending anything (`name` is only for failure messages). */
  static async connect(context: CheckContext, wire: StageWire, name: string): Promise<ListeningUser> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ host: context.server.host, port: context.server.port }, () => resolve(s));
      s.once('error', (error) => reject(new CheckFailure(`could not connect: ${error.message}`, { expected: 'the server accepts a connection' })));
    });
    return new ListeningUser(name, socket, wire);
  }

  /** Connects and joins; fails the check unless WELCOME comes (and USERS, in 03/04). */
  static async join(context: CheckContext, wire: StageWire, name: string, room: string): Promise<ListeningUser> {
    const user = await ListeningUser.connect(context, wire, name);
    user.send(jsonFrame(HELLO, wire.hello(name, room)));
    await user.waitFor(`WELCOME for ${name}`, (f) => f.type === WELCOME);
    if (wire.mixes) await user.waitFor(`USERS for ${name}`, (f) => f.type === USERS);
    return user;
  }

  /** Waits until the server closes this connection; fails the check after timeoutMs. */
  async waitForClose(what: string, timeoutMs = 3_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!this.closed) {
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new CheckFailure(`the connection of ${this.name} is still open: expected ${what}`, {
          expected: what,
          actual: `still open after ${timeoutMs} ms; ${this.name} received: ${this.describe()}`,
          hint: 'after ERROR, close the connection',
        });
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }

  /** Everything sent to this user as frames so far (problems: see `problem`). */
  get problem(): string | undefined {
    return this.reader.problem;
  }

  send(bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Waits for a frame matching `matches` (from index `since`); fails the check after timeoutMs. */
  async waitFor(what: string, matches: (frame: ServerFrame) => boolean, timeoutMs = 5_000, since = 0): Promise<ServerFrame> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const found = this.frames.slice(since).find(matches);
      if (found) return found;
      const left = deadline - performance.now();
      if (left <= 0 || this.closed) {
        throw new CheckFailure(`${this.name} ${this.closed ? 'was disconnected' : 'timed out'} waiting for ${what}`, {
          expected: what,
          actual: `${this.name} received: ${this.describe(since)}`,
        });
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }

  describe(since = 0): string {
    const parts: string[] = [];
    let audio = 0;
    for (const frame of this.frames.slice(since)) {
      if (frame.type === AUDIO) {
        audio++;
        continue;
      }
      if (audio > 0) parts.push(`AUDIO x${audio}`);
      audio = 0;
      parts.push(`0x${frame.type.toString(16).padStart(2, '0')} ${frame.payload.toString('utf8').slice(0, 100)}`);
    }
    if (audio > 0) parts.push(`AUDIO x${audio}`);
    return parts.slice(-20).join(', ') || '(nothing)';
  }

  /** Leaves with BYE and closes. */
  leave(): void {
    if (!this.socket.destroyed) this.socket.end(bye());
    setTimeout(() => this.socket.destroy(), 1_000).unref();
  }

  private wake(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }
}
