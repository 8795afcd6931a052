// A joined user for checks of the multi-user stages (03 on), over a raw socket: it sends HELLO,
// requires WELCOME, then reads every later frame in the background and keeps it, so a check can
// let several users talk at once and then ask "which AUDIO frames did Ada get since then?" or
// "wait until Bob is told that Carol left". Only the framing and the HELLO/WELCOME types, which
// every framed stage shares, are known here: each stage's checks name their own other types.
import { CheckFailure } from './check-failure.ts';
import { hexType, jsonFrameBytes, jsonObjectOf, readFrame, type WireFrame } from './frame-wire.ts';
import { WireClient } from './wire-client.ts';

const HELLO = 0x01;
const WELCOME = 0x02;
const AUDIO = 0x03;

/** Long enough to never end while a check runs; a closed connection ends the wait at once. */
const BACKGROUND_READ_MS = 10 * 60_000;

export interface ReceivedFrame extends WireFrame {
  /** performance.now() when the frame was complete. */
  at: number;
}

export class FramedUser {
  /** Every frame after WELCOME, in order of arrival. */
  readonly frames: ReceivedFrame[] = [];
  private waiters: (() => void)[] = [];
  private readingDone = false;

  private constructor(
    readonly name: string,
    readonly wire: WireClient,
    /** WELCOME's JSON payload (its fields beyond "name" are each stage's: "id", "token", "udp_port" ...). */
    readonly welcome: Record<string, unknown>,
    /** Names of the stage's message types, for failure messages: {0x06: 'USERS', ...}. */
    private readonly typeNames: Record<number, string>,
  ) {
    void this.readInBackground();
  }

  /**
   * Connects and sends HELLO with `hello` as its JSON payload ({"name": ...}, plus whatever a
   * stage adds); fails the check unless the first answer is WELCOME naming the same user.
   */
  static async join(
    host: string,
    port: number,
    hello: { name: string } & Record<string, unknown>,
    options: { typeNames?: Record<number, string>; hint?: string } = {},
  ): Promise<FramedUser> {
    const hint = options.hint ?? 'answer a valid HELLO with WELCOME {"name", "sample_rate", "frame_samples"}';
    const wire = await WireClient.connect(host, port);
    wire.send(jsonFrameBytes(HELLO, hello));
    const first = await readFrame(wire, `WELCOME for "${hello.name}"`, { hint });
    const parsed = jsonObjectOf(first.payload);
    if (first.type !== WELCOME || !('object' in parsed) || parsed.object.name !== hello.name) {
      wire.destroy();
      throw new CheckFailure(`"${hello.name}" could not join`, {
        expected: `WELCOME (0x02) with "name": ${JSON.stringify(hello.name)}`,
        actual: `a frame of type ${hexType(first.type)}: ${JSON.stringify(first.payload.toString('utf8').slice(0, 200))}`,
        sent: wire.sent,
        received: wire.received,
        hint,
      });
    }
    return new FramedUser(hello.name, wire, parsed.object, options.typeNames ?? {});
  }

  get isClosed(): boolean {
    return this.wire.isClosed;
  }

  /** The number of frames received so far: pass it as `since` to look only at later frames. */
  mark(): number {
    return this.frames.length;
  }

  /** Frames of one type received since `since` (a mark()). */
  framesOfType(type: number, since = 0): ReceivedFrame[] {
    return this.frames.slice(since).filter((frame) => frame.type === type);
  }

  /** Waits for the first frame since `since` that `matches`; fails the check after timeoutMs. */
  async waitForFrame(what: string, matches: (frame: ReceivedFrame) => boolean, options: { since?: number; timeoutMs?: number; hint?: string } = {}): Promise<ReceivedFrame> {
    const timeoutMs = options.timeoutMs ?? 5_000;
    const deadline = performance.now() + timeoutMs;
    let index = options.since ?? 0;
    for (;;) {
      for (; index < this.frames.length; index++) {
        if (matches(this.frames[index]!)) return this.frames[index]!;
      }
      const left = deadline - performance.now();
      if (left <= 0 || this.readingDone) {
        throw new CheckFailure(`${this.name} ${this.readingDone ? 'was disconnected' : 'timed out'} while waiting for ${what}`, {
          expected: what,
          actual: `${this.readingDone ? 'the connection closed' : `nothing matching within ${timeoutMs} ms`}; ${this.name} received: ${this.describeFrames(options.since ?? 0)}`,
          hint: options.hint,
        });
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }

  /** What arrived since `since`, in short: "USERS {...}, AUDIO x37, LEFT {...}". */
  describeFrames(since = 0): string {
    const parts: string[] = [];
    let audioRun = 0;
    const flushAudio = () => {
      if (audioRun > 0) parts.push(`AUDIO x${audioRun}`);
      audioRun = 0;
    };
    for (const frame of this.frames.slice(since)) {
      if (frame.type === AUDIO) {
        audioRun++;
        continue;
      }
      flushAudio();
      parts.push(`${this.typeNames[frame.type] ?? hexType(frame.type)} ${frame.payload.toString('utf8').slice(0, 120)}`);
    }
    flushAudio();
    return parts.length === 0 ? '(nothing)' : parts.slice(-30).join(', ');
  }

  send(bytes: Buffer): void {
    this.wire.send(bytes);
  }
  /** Stops reading, like a client that hangs: the server's data piles up in its send buffer. */
  pauseReading(): void {
    this.wire.pauseReading();
  }
  resumeReading(): void {
    this.wire.resumeReading();
  }
  /** Sends FIN after what was sent: a clean close at the TCP level (no BYE unless sent first). */
  end(): void {
    this.wire.end();
  }
  /** A crash or a pulled cable: the connection is reset. */
  reset(): void {
    this.wire.reset();
  }
  destroy(): void {
    this.wire.destroy();
  }

  /** Waits for the server to close this connection (fails the check after timeoutMs). */
  async waitForClose(timeoutMs: number, what: string, hint?: string): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!this.readingDone) {
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new CheckFailure(`the connection of ${this.name} is still open: expected ${what}`, {
          expected: what,
          actual: `still open after ${timeoutMs} ms; ${this.name} received: ${this.describeFrames()}`,
          hint,
        });
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }

  private async readInBackground(): Promise<void> {
    try {
      for (;;) {
        const frame = await readFrame(this.wire, 'the next frame', { timeoutMs: BACKGROUND_READ_MS });
        this.frames.push({ ...frame, at: performance.now() });
        this.wake();
      }
    } catch {
      // The connection closed (or sent a garbled header): checks see it through isClosed and waits.
    } finally {
      this.readingDone = true;
      this.wake();
    }
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
