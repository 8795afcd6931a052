// A well-behaved conversation kept running while a hostile case plays, to show that the others
// are not disturbed: in stages 03 and 04 a talker sends one frame every 20 ms and a listener
// counts the mixes it gets (about one per tick); in stage 02 one user counts its echoes.
// Afterwards: at least MIN_SHARE (80%) of the expected frames, and no silence longer than
// MAX_GAP_MS (400 ms; generous: the machines running the tests are shared and noisy, and a
// stalled tick shows as a long gap).
import type { CheckContext } from '../harness/checks.ts';
import { CheckFailure, CheckSkipped } from '../harness/check-failure.ts';
import { ListeningUser } from './listening-user.ts';
import { AUDIO, TICK_MS, type StageWire } from './wire-spec.ts';

/**
 * The longest a well-behaved listener may go without a mix. A server that stalls on a hostile
 * client stops its clock for far longer; a full parallel CI run on a shared 2-core machine gave
 * the reference a 229 ms gap once (while a flood was parsed), so 200 ms was too tight.
 */
export const MAX_GAP_MS = 400;
export const MIN_SHARE = 0.8;
/** The first frames are not counted: the jitter buffer fills, the connection warms up. */
const SETTLE_MS = 200;
/**
 * The least time judged after SETTLE_MS: 50 frames, so one or two late at either end of the window
 * do not make a share. (A flood dealt with in 0.1 s judged 5 expected frames: 4 was "under 80%".)
 */
const MIN_JUDGED_MS = 1_000;
/**
 * A talker frame sent later than this against its schedule: this process, not the server, was
 * busy, and what the listener heard cannot be blamed on the server (a stall of this process shows
 * as a gap in what it reads, too).
 */
export const OWN_LATENESS_MS = 3 * TICK_MS;
/** The talker's samples: small, and odd, so mixes holding the talker are recognisable. */
export const TALKER_SAMPLE = 1;

export interface PairReport {
  seconds: number;
  expected: number;
  received: number;
  maxGapMs: number;
}

/** The talker (03/04) or echo user (02) and the listener, talking until stop(). */
export class SteadyPair {
  private timer: NodeJS.Timeout | undefined;
  private started = 0;
  private stopped = 0;
  private sent = 0;
  /** The latest the talker sent a frame, against its schedule (ms): this process was busy, not the server. */
  worstSendLateMs = 0;

  private constructor(
    private readonly wire: StageWire,
    readonly talker: ListeningUser,
    /** The same user as the talker in stage 02 (it hears its echo). */
    readonly listener: ListeningUser,
  ) {}

  /** Names end in `tag`, so several checks never collide; `room` matters in stage 04 only. */
  static async start(context: CheckContext, wire: StageWire, tag: string, room: string): Promise<SteadyPair> {
    const talker = await ListeningUser.join(context, wire, `talker-${tag}`, room);
    const listener = wire.mixes ? await ListeningUser.join(context, wire, `listener-${tag}`, room) : talker;
    const pair = new SteadyPair(wire, talker, listener);
    pair.talk();
    return pair;
  }

  /** The names of the pair (for user lists). */
  get names(): string[] {
    return this.talker === this.listener ? [this.talker.name] : [this.talker.name, this.listener.name];
  }

  /** Index of the listener's next frame: pass to methods that look only at later frames. */
  mark(): number {
    return this.listener.frames.length;
  }

  /** One frame every 20 ms against a fixed schedule (late timers do not add up). */
  private talk(): void {
    this.started = performance.now();
    const step = () => {
      const due = this.started + (this.sent + 1) * TICK_MS;
      this.worstSendLateMs = Math.max(this.worstSendLateMs, performance.now() - (due - TICK_MS));
      this.talker.send(this.wire.talkerFrame());
      this.sent++;
      this.timer = setTimeout(step, Math.max(0, due - performance.now()));
    };
    step();
  }

  /** Waits until the pair has talked long enough for its share to mean something (MIN_JUDGED_MS past the settling). */
  async untilJudgeable(): Promise<void> {
    const wait = this.started + SETTLE_MS + MIN_JUDGED_MS - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }

  /** Stops talking and says how the listener fared. */
  stop(): PairReport {
    clearTimeout(this.timer);
    this.stopped = performance.now();
    const from = this.started + SETTLE_MS;
    const arrivals = this.listener.frames.filter((f) => f.type === AUDIO && f.at >= from && f.at <= this.stopped).map((f) => f.at);
    let maxGap = 0;
    let previous = from;
    for (const at of [...arrivals, this.stopped]) {
      maxGap = Math.max(maxGap, at - previous);
      previous = at;
    }
    const seconds = (this.stopped - from) / 1000;
    return { seconds, expected: Math.floor((this.stopped - from) / TICK_MS), received: arrivals.length, maxGapMs: Math.round(maxGap) };
  }

  /**
   * Stops, then fails the check unless the listener heard steadily throughout `what`; SKIPs
   * instead when it did not but this process itself sent a frame more than OWN_LATENESS_MS late.
   */
  expectSteady(what: string): PairReport {
    const report = this.stop();
    const kind = this.talker === this.listener ? 'echoes' : 'mixes';
    const heard = `${report.received} ${kind} of ${report.expected} expected in ${report.seconds.toFixed(1)} s; longest silence ${report.maxGapMs} ms`;
    if (this.listener.problem === undefined && report.received >= MIN_SHARE * report.expected && report.maxGapMs <= MAX_GAP_MS) return report;
    if (this.listener.problem === undefined && this.worstSendLateMs > OWN_LATENESS_MS) {
      throw new CheckSkipped(`the machine running the check was too busy during ${what} to judge whether the others were disturbed: the talker's frame went out ${Math.round(this.worstSendLateMs)} ms late (the limit is ${OWN_LATENESS_MS} ms); ${heard}; run the check again on a quieter machine`);
    }
    throw new CheckFailure(`the other users were disturbed by ${what}`, {
      expected: `a well-behaved user keeps getting ${kind}: about one per 20 ms (at least ${Math.round(MIN_SHARE * 100)}%), never ${MAX_GAP_MS} ms without one`,
      actual: this.listener.problem ?? heard,
      hint: 'one connection must never hold up the others: no blocking writes, no unbounded work per byte received, the tick keeps its pace',
    });
  }

  leave(): void {
    clearTimeout(this.timer);
    this.talker.leave();
    if (this.listener !== this.talker) this.listener.leave();
  }
}
