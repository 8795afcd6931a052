// Measures the latency the server adds: a probe room, apart from the load, with one talker and
// one listener in THIS process, so send and arrival are read from the same monotonic clock.
// The talker sends silence, except every PROBE_EVERY_FRAMES frames an impulse: first sample
// IMPULSE, second sample a sequence number. The listener is the only other member, so its mix is
// exactly the talker's frame: the impulse comes back unchanged and says which send it belongs to.
// Latency = arrival - send: loopback, the jitter buffer wait, the tick, the mix and the write.
import { FrameClock } from '#shared/audio/frame-clock.ts';
import { FRAME_BYTES, FRAME_MS } from '#shared/audio/format.ts';
import { audioFrame } from '../04-rooms/protocol.ts';
import { BenchClient, joinAll } from './bench-client.ts';

export const PROBE_ROOM = 'bench-probe';
/** One impulse every 5 frames (100 ms): far apart enough to never be confused, often enough for a p99. */
export const PROBE_EVERY_FRAMES = 5;
/** The probe talks 3% slower than real time: see the clock below. */
export const PROBE_SLOWDOWN = 1.03;
const IMPULSE = 30_000;
const SEQUENCE_LIMIT = 30_000; // sequence numbers wrap below the int16 maximum

export class LatencyProbe {
  private readonly talker = new BenchClient('probe-talker', PROBE_ROOM);
  private readonly listener = new BenchClient('probe-listener', PROBE_ROOM, (payload, receivedAt) => this.onMix(payload, receivedAt));
  private readonly silence = audioFrame(Buffer.alloc(FRAME_BYTES));
  private readonly sentAt = new Map<number, number>();
  // A little slower than real time (PROBE_SLOWDOWN): the probe's phase against the server's
  // tick slides through all of 0..20 ms about every 0.7 s (as a real sound card's clock drifts),
  // so the numbers cover every phase, not one lucky or unlucky one; and when a stall of this
  // process lets frames pile up in the server's jitter buffer, the queue drains within a second.
  private readonly clock = new FrameClock((tick) => this.sendFrame(tick), { periodMs: FRAME_MS * PROBE_SLOWDOWN });
  private sequence = 0;
  private recording = false;
  /** Latencies (ms) of the impulses sent while recording. */
  readonly latenciesMs: number[] = [];
  /** Impulses sent while recording. */
  impulsesSent = 0;

  async start(host: string, port: number): Promise<void> {
    await joinAll([this.talker, this.listener], host, port);
    this.clock.start();
  }

  /** From now on, impulses count (call after the warm-up). */
  record(on: boolean): void {
    this.recording = on;
  }

  stop(): void {
    this.clock.stop();
    this.talker.leave();
    this.listener.leave();
  }

  private sendFrame(tick: number): void {
    if (tick % PROBE_EVERY_FRAMES !== 0) {
      this.talker.send(this.silence);
      return;
    }
    const pcm = Buffer.alloc(FRAME_BYTES);
    const sequence = this.sequence++ % SEQUENCE_LIMIT;
    pcm.writeInt16LE(IMPULSE, 0);
    pcm.writeInt16LE(sequence, 2);
    const frame = audioFrame(pcm);
    // Only impulses sent while recording are timed; older entries are simply overwritten.
    if (this.recording) {
      this.sentAt.set(sequence, performance.now());
      this.impulsesSent++;
    } else {
      this.sentAt.delete(sequence);
    }
    this.talker.send(frame);
  }

  private onMix(payload: Buffer, receivedAt: number): void {
    if (payload.readInt16LE(0) !== IMPULSE) return;
    const sequence = payload.readInt16LE(2);
    const sentAt = this.sentAt.get(sequence);
    if (sentAt === undefined) return; // sent before recording started
    this.sentAt.delete(sequence);
    this.latenciesMs.push(receivedAt - sentAt);
  }
}

/** The p-th percentile (0..100) by the nearest-rank method; NaN for no samples. */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}
