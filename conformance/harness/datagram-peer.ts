// The UDP side of a fake server (stage 06 on): one socket on 127.0.0.1 that records every datagram
// it gets, with its source, and can answer. Checks wait on it with deadlines, never fixed sleeps.
import { createSocket, type Socket } from 'node:dgram';
import { FRAME_MS } from '#shared/audio/format.ts';
import { FrameClock } from '#shared/audio/frame-clock.ts';
import { CheckFailure } from './check-failure.ts';

export interface ReceivedDatagram {
  data: Buffer;
  address: string;
  port: number;
  /** performance.now() when it arrived. */
  at: number;
}

export class DatagramPeer {
  readonly received: ReceivedDatagram[] = [];
  /** Called for each datagram as it comes (after it is recorded), e.g. to answer PINGs. */
  onDatagram: ((datagram: ReceivedDatagram) => void) | undefined;
  private waiters: (() => void)[] = [];
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    readonly port: number,
  ) {
    socket.on('message', (data, from) => {
      const datagram = { data, address: from.address, port: from.port, at: performance.now() };
      this.received.push(datagram);
      this.onDatagram?.(datagram);
      for (const wake of this.waiters.splice(0)) wake();
    });
    socket.on('error', () => {});
  }

  static start(): Promise<DatagramPeer> {
    return new Promise((resolve, reject) => {
      const socket = createSocket('udp4');
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => resolve(new DatagramPeer(socket, socket.address().port)));
    });
  }

  send(data: Buffer, to: { address: string; port: number }): void {
    if (!this.closed) this.socket.send(data, to.port, to.address);
  }

  /**
   * Sends each of `datagrams` and resolves once the kernel has taken them all: a check that sends
   * from two sockets in turn awaits the first's, so the client's socket queues them in that order.
   */
  sendAll(datagrams: Buffer[], to: { address: string; port: number }): Promise<void> {
    if (this.closed) return Promise.resolve();
    return Promise.all(datagrams.map((data) => new Promise<void>((resolve) => this.socket.send(data, to.port, to.address, () => resolve())))).then(() => {});
  }

  /** Wakes this peer's waiters to look again: for a wait whose `found()` also reads another socket's datagrams. */
  nudge(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Waits until `found()` returns a value; fails the check with `what` and `hint` after `timeoutMs`. */
  async waitFor<T>(found: () => T | undefined, timeoutMs: number, what: string, hint: string, actual: () => string): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const value = found();
      if (value !== undefined) return value;
      const left = deadline - performance.now();
      if (left <= 0) throw new CheckFailure(`no ${what} within ${timeoutMs / 1000} s`, { expected: what, actual: actual(), hint });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }

  /**
   * Sends `steps[i]` (the datagrams of one 20 ms step) at real time on a drift-free clock; the
   * first `burst` steps at once, so the client's jitter buffer holds some slack against the
   * test's own timer jitter. An empty step is a time slot whose packets were lost.
   */
  sendPaced(steps: Buffer[][], to: { address: string; port: number }, burst: number): Promise<void> {
    for (const step of steps.slice(0, burst)) for (const datagram of step) this.send(datagram, to);
    let next = burst;
    return new Promise((resolve) => {
      if (next >= steps.length) return resolve();
      const clock = new FrameClock(
        (tick) => {
          if (tick === 0) return;
          for (const datagram of steps[next]!) this.send(datagram, to);
          next++;
          if (next >= steps.length) {
            clock.stop();
            resolve();
          }
        },
        { periodMs: FRAME_MS },
      );
      clock.start();
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
  }
}
