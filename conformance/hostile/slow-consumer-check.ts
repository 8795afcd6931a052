// A client that never reads: the server must keep its memory bounded (skip, do not queue, audio for
// it), keep the tick on time for everyone else, and in the end really disconnect it (ERROR
// slow_consumer, or at least a close), even when no control message comes along to notice it.
import { CheckFailure, CheckSkipped } from '../harness/check-failure.ts';
import type { Check } from '../harness/checks.ts';
import { floodFrame, memoryLimitFor, withSteadyPair } from './check-helpers.ts';
import { Unmeasured } from '../harness/unmeasured.ts';
import { expectBoundedGrowth, expectCutAsSlowConsumer, expectServerServes, peakGrowthDuring } from './expectations.ts';
import { ListeningUser } from './listening-user.ts';
import { findServerProcess, MB } from '../harness/proc-stats.ts';
import { showMs, timingWindow } from '../harness/tolerance.ts';
import { StallWatch } from '../harness/stall-watch.ts';
import { KernelQueueWatch } from './kernel-queue-watch.ts';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { frame } from './frames.ts';
import { AUDIO, LEFT, type StageWire } from './wire-spec.ts';

/**
 * Stage 05 forwards small Opus packets (the steady talker's VOICE is 10 bytes): at that rate the
 * kernels' 4 MB would take hours to fill. So LOUD_TALKERS more talkers send the largest VOICE
 * (1275-byte packets) every 20 ms: ~256 KB/s for the hog, the kernels full in ~16 s.
 */
const LOUD_TALKERS = 4;
/** The most short-lived garbage V8 keeps before a minor collection under heavy allocation. */
const YOUNG_GENERATION = 16 * MB;
function loudVoice(sequence: number): Buffer {
  const payload = Buffer.alloc(2 + 1275, 0x33);
  payload.writeUInt16BE(sequence & 0xffff, 0);
  return frame(AUDIO, payload);
}

/**
 * The longest the server may take to notice, on any machine. Before the server's own send buffer
 * fills, the kernels hold what it sends: on Linux loopback about 4 MB (the sender's buffer grows to
 * tcp_wmem's 4 MB), which is 42 s of mixes at one 1925-byte frame per 20 ms. Then SLOW_CONSUMER_MS
 * (5 s) of skipped mixes. Stage 02's hog sends ten times faster than real time, so its echoes fill
 * the buffers sooner. The check's own deadline is tighter: see slowConsumerDeadline.
 */
export const SLOW_CONSUMER_DEADLINE_MS = 80_000;
/** What Linux loopback buffers (both kernels) before the server sees anything waiting. */
const KERNEL_BUFFERS = 4 * 1024 * 1024;

/**
 * How many bytes this machine's kernels hold for a loopback peer that never reads (both ends):
 * measured here in a few milliseconds on a socket pair of our own, because it decides when ANY
 * server can first see something waiting (a server cannot make its kernel hold more than the
 * autotuned maximum this measures; one that sets SO_SNDBUF gets less).
 */
export async function loopbackBuffering(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const reader = connect(port, '127.0.0.1');
  reader.pause();
  try {
    const writer = await new Promise<Socket>((resolve) => server.once('connection', resolve));
    const chunk = Buffer.alloc(64 * 1024);
    let written = 0;
    const giveUpAt = performance.now() + 5_000;
    while (writer.writableLength === 0 && performance.now() < giveUpAt) {
      for (let i = 0; i < 16; i++) {
        writer.write(chunk);
        written += chunk.length;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    writer.destroy();
    return written - writer.writableLength;
  } finally {
    reader.destroy();
    server.close();
  }
}

/**
 * When a correct server must have disconnected a hog that receives `bytesPerSecond`: the kernels'
 * buffering at that rate (measured, or the README's 4 MB if more; 20% more, as the measure varies
 * by a tenth from run to run and a server's timers run late), then the README's SLOW_CONSUMER_MS
 * judged by the timing rule (conformance/harness/tolerance.ts), never past SLOW_CONSUMER_DEADLINE_MS.
 */
export function slowConsumerDeadline(kernelBytes: number, bytesPerSecond: number, slowConsumerMs: number): { deadlineMs: number; fillMs: number } {
  const fillMs = (Math.max(kernelBytes, KERNEL_BUFFERS) / bytesPerSecond) * 1000;
  return { fillMs, deadlineMs: Math.min(SLOW_CONSUMER_DEADLINE_MS, 1.2 * fillMs + timingWindow(slowConsumerMs, { noiseMs: 2_000 }).latestMs) };
}

/**
 * Counts the ticks of a 20 ms sender of this process: when they fell behind their schedule, the
 * kernels filled later than the deadline assumes, and that is the machine, not the server.
 */
class PacedSender {
  private readonly startedAt = performance.now();
  ticks = 0;

  /** Why the deadline cannot be judged (this process sent under 90% of its schedule), or null. */
  lateness(what: string): string | null {
    const due = Math.floor((performance.now() - this.startedAt) / 20);
    if (this.ticks >= 0.9 * due) return null;
    return `the machine running the check was too busy to judge the deadline: ${what} went out ${this.ticks} times of the ${due} its 20 ms schedule called for, so the kernels filled later than the deadline assumes; run the check again on a quieter machine`;
  }
}

/** How late the grader's own timers may run before a cut that looks early cannot be judged (the margin is over a second). */
const EARLY_SIDE_STALL_ALLOWANCE_MS = 1_000;

/**
 * The early side of the slow-consumer limit: no server could see anything waiting for the hog
 * before its kernels' buffers for it were full, so one that cut it sooner after that than the
 * timing rule's earliest for SLOW_CONSUMER_MS cut it too soon.
 */
function expectNotCutEarly(queues: KernelQueueWatch, stalls: StallWatch, cutSeenAt: number, wire: StageWire, unmeasured: Unmeasured): void {
  queues.stop();
  stalls.stop();
  const seen = queues.result(cutSeenAt);
  if (seen === undefined) {
    unmeasured.note('the early side of the slow-consumer limit could not be judged: the server\'s end of the never-reading connection is not in this machine\'s /proc/net/tcp (a server elsewhere, or in a container)');
    return;
  }
  const window = timingWindow(wire.slowConsumerMs);
  const afterFull = seen.cutAt - seen.fullAt;
  stalls.judge(() => {
    if (afterFull >= window.earliestMs) return;
    throw new CheckFailure(`the slow-consumer limit is not ${wire.slowConsumerMs / 1000} s: a user who never reads was cut ${showMs(afterFull)} after the kernels' buffers for it were full`, {
      expected: `no disconnection sooner than ${showMs(window.earliestMs)} (the README's ${wire.slowConsumerMs / 1000} s by the timing rule) after the kernels' buffers for it filled (${(seen.mostHeldBytes / MB).toFixed(1)} MB, read from /proc/net/tcp): before that the server could not have seen anything waiting for it`,
      actual: `cut (LEFT, a free slot, or its connection closed) ${Math.round(afterFull)} ms after the buffers were full`,
      hint: `count the ${wire.slowConsumerMs / 1000} s from when the server first has to skip for that client (its socket's own buffer full), not from its connection or its last read`,
    });
  }, EARLY_SIDE_STALL_ALLOWANCE_MS);
}

export function slowConsumer(wire: StageWire): Check {
  const room = 'hostile-d';
  return {
    name: `hostile ${wire.id}: a client that never reads is disconnected (slow_consumer) within ${wire.slowConsumerMs / 1000} s of the server's buffer filling (not sooner than ${showMs(timingWindow(wire.slowConsumerMs).earliestMs)} after its kernels' buffers for it were full), and does not stall the others`,
    timeLimitMs: SLOW_CONSUMER_DEADLINE_MS + 30_000,
    run: async (context) => {
      const server = findServerProcess(context.server.port);
      const unmeasured = new Unmeasured();
      // What reaches the hog each second: a mix per tick (03, 04), the echo of its 10 frames per 20 ms (02),
      // or the loud talkers' VOICE (05 on).
      const echoedPerSecond = wire.opusVoice ? 50 * LOUD_TALKERS * loudVoice(0).length : (wire.mixes ? 50 : 500) * floodFrame(0).length;
      const what = wire.opusVoice ? 'VOICE' : wire.mixes ? 'mix' : 'echo';
      const kernelBytes = await loopbackBuffering();
      const { deadlineMs, fillMs } = slowConsumerDeadline(kernelBytes, echoedPerSecond, wire.slowConsumerMs);
      const why = `the README: after ${wire.slowConsumerMs / 1000} s in which every ${what} for it was skipped, ERROR slow_consumer; `
        + `the kernels of this machine hold ${(kernelBytes / MB).toFixed(1)} MB for a reader that never reads (counted as at least 4 MB), ${(fillMs / 1000).toFixed(0)} s of ${what} traffic, before a server can see anything waiting, `
        + `so a correct server disconnects it within ${(deadlineMs / 1000).toFixed(0)} s`;
      // What a server that never skips would queue for the hog by the deadline, past the kernels' 4 MB.
      // Every stage's hog pushes about 1 MB/s or more through the server (02: its own 10 frames per
      // 20 ms; 05 on: the loud talkers' copies): a garbage-collected server holds up to its young
      // generation of that (V8: 16 MB, BENCHMARKS.md "Memory") before collecting, whatever it skips.
      // Measured on a busy machine: 13 MB of growth for the 02 and 06 references. The deadline, not
      // the memory, is what fails a server that keeps queueing (mutant slow-consumer-never).
      const memoryLimit = memoryLimitFor(Math.max(0, (deadlineMs / 1000) * echoedPerSecond - KERNEL_BUFFERS), YOUNG_GENERATION);
      if (!wire.mixes) {
        // The hog holds the only slot, sends in real time and reads none of its echoes.
        const hog = await ListeningUser.join(context, wire, 'hog', room);
        hog.socket.pause();
        const queues = new KernelQueueWatch(hog.socket.localPort!, context.server.port);
        const stalls = new StallWatch();
        const paced = new PacedSender();
        const talking = setInterval(() => {
          paced.ticks++;
          for (let i = 0; i < 10; i++) hog.send(floodFrame(i));
        }, 20);
        try {
          const growth = await peakGrowthDuring(server, () => expectServerServes(context, wire, 'next-in-line', room, [], '', deadlineMs).catch((error: unknown) => {
            const late = error instanceof CheckFailure ? paced.lateness("the hog's frames") : null;
            if (late !== null) throw new CheckSkipped(late);
            throw error instanceof CheckFailure
              ? new CheckFailure(`the slow-consumer limit is not ${wire.slowConsumerMs / 1000} s: a user who never reads was not disconnected within ${(deadlineMs / 1000).toFixed(0)} s`, {
                expected: `the server drops a user whose echoes have been skipped for ${wire.slowConsumerMs / 1000} s (ERROR slow_consumer), so the slot is free again: ${why}`,
                actual: error.details.actual ?? error.summary,
                hint: 'a client that stops reading must not hold the server (or its only slot) for ever',
              })
              : error;
          }).then(() => expectNotCutEarly(queues, stalls, performance.now(), wire, unmeasured)));
          expectBoundedGrowth(growth, memoryLimit, 'a client that never reads', unmeasured);
        } finally {
          clearInterval(talking);
          queues.stop();
          stalls.stop();
          hog.socket.destroy();
        }
        unmeasured.settle();
        return;
      }
      await withSteadyPair(context, wire, 'sc', room, 'a user who never reads', async (pair) => {
        const hog = await ListeningUser.join(context, wire, 'hog', room);
        hog.socket.pause(); // reads nothing from now on: the talker's mixes pile up for it
        const queues = new KernelQueueWatch(hog.socket.localPort!, context.server.port);
        const stalls = new StallWatch();
        const since = pair.mark();
        const loud = wire.opusVoice ? await Promise.all(Array.from({ length: LOUD_TALKERS }, (_, i) => ListeningUser.join(context, wire, `loud-${i}`, room))) : [];
        const paced = new PacedSender();
        const loudTimer = setInterval(() => {
          paced.ticks++;
          for (const talker of loud) talker.send(loudVoice(paced.ticks));
        }, 20);
        // What fills the hog's kernels is the loud talkers' VOICE (05 on: this process's timer) or
        // the server's mixes (03, 04: the room's listener gets the same ones). Sent or mixed under
        // 90% of the schedule, they filled the buffers later than the deadline assumes: a busy
        // machine (a server that mixes too few fails the tick check for it).
        const mixesFrom = performance.now();
        const ownLateness = (): string | null => {
          if (wire.opusVoice) return paced.lateness("the loud talkers' VOICE");
          const due = Math.floor((performance.now() - mixesFrom) / 20);
          const mixes = pair.listener.frames.slice(since).filter((f) => f.type === AUDIO).length;
          if (mixes >= 0.9 * due) return null;
          return `the machine running the check was too busy to judge the deadline: the room got ${mixes} mixes of the ${due} its 20 ms tick calls for, so the hog's buffers filled later than the deadline assumes; run the check again on a quieter machine`;
        };
        const waitForHogLeft = () =>
          pair.listener.waitFor('LEFT {"name":"hog","reason":"error"} (the hog disconnected as a slow consumer)', (f) => f.type === LEFT && f.json?.name === 'hog', deadlineMs, since).catch((error: unknown) => {
            const late = error instanceof CheckFailure ? ownLateness() : null;
            if (late !== null) throw new CheckSkipped(late);
            throw error instanceof CheckFailure
              ? new CheckFailure(`the slow-consumer limit is not ${wire.slowConsumerMs / 1000} s: a user who never reads was not disconnected within ${(deadlineMs / 1000).toFixed(0)} s`, {
                expected: `the server disconnects a listener whose mixes have been skipped for ${wire.slowConsumerMs / 1000} s (ERROR slow_consumer), and the others get LEFT {"reason":"error"}: ${why}`,
                actual: error.details.actual ?? error.summary,
                hint: 'skipping audio for a slow reader keeps memory bounded, but a client that never reads again must not stay a user for ever',
              })
              : error;
          });
        const growth = await peakGrowthDuring(server, async () => {
          try {
            await waitForHogLeft();
            expectNotCutEarly(queues, stalls, performance.now(), wire, unmeasured);
          } finally {
            clearInterval(loudTimer);
            queues.stop();
            stalls.stop();
            for (const talker of loud) talker.leave();
          }
        });
        expectBoundedGrowth(growth, memoryLimit, 'a client that never reads', unmeasured);
        await expectCutAsSlowConsumer(hog);
      });
      unmeasured.settle();
    },
  };
}
