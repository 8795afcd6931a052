// Pieces the hostile checks share: a steady conversation around each case, offenders playing
// violations, and numbered audio frames whose place in a mix can be read back.
import type { CheckContext } from '../harness/checks.ts';
import { expectErrorAndClose } from './expectations.ts';
import { frame } from './frames.ts';
import { ListeningUser } from './listening-user.ts';
import { MB } from '../harness/proc-stats.ts';
import { SteadyPair } from './steady-pair.ts';
import type { Violation } from './violations.ts';
import { AUDIO, ERROR, type StageWire } from './wire-spec.ts';

/**
 * The most a server's memory may grow while a check feeds it `guardedBytes` that a bounded server
 * never keeps (a flood it must drop, mixes it must skip): half of them (a server that kept them all
 * fails), plus the garbage a bounded server in a garbage-collected runtime may hold before its
 * collector runs: `burstBytes`, what it parsed in one go (measured: the reference's resident
 * memory grows 14-20 MB while it drops a 19 MB flood), and at least RUNTIME_NOISE.
 */
export function memoryLimitFor(guardedBytes: number, burstBytes = 0): number {
  return guardedBytes / 2 + Math.max(RUNTIME_NOISE, burstBytes);
}
const RUNTIME_NOISE = 8 * MB;

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `body` with a steady pair in room `room`; afterwards the pair must have heard steadily. */
export async function withSteadyPair(context: CheckContext, wire: StageWire, tag: string, room: string, during: string, body: (pair: SteadyPair) => Promise<void>): Promise<void> {
  const pair = await SteadyPair.start(context, wire, tag, room);
  try {
    await body(pair);
    await pair.untilJudgeable();
    pair.expectSteady(during);
  } finally {
    pair.leave();
  }
}

/** Plays each violation on its own connection, all at once; each must get its ERROR and a close. */
export async function playViolations(context: CheckContext, wire: StageWire, violations: Violation[], joinAs?: (i: number) => string, room = ''): Promise<ListeningUser[]> {
  const offenders = await Promise.all(
    violations.map(async (violation, i) => {
      const name = joinAs?.(i);
      const user = name === undefined ? await ListeningUser.connect(context, wire, `offender ${i}`) : await ListeningUser.join(context, wire, name, room);
      user.send(violation.bytes);
      return user;
    }),
  );
  // After joining, news about the others (USERS, JOINED, ...) and audio may come before the ERROR.
  const allowBefore = (type: number) => joinAs !== undefined && type !== ERROR;
  await Promise.all(offenders.map((user, i) => expectErrorAndClose(user, violations[i]!.code, violations[i]!.what, { allowBefore })));
  return offenders;
}

/** Frame i of the flood: every sample is 2 + 2i (even), so it can be told from the talker's odd 1. */
export const floodSample = (i: number) => 2 + 2 * i;
export function floodFrame(i: number): Buffer {
  const pcm = Buffer.alloc(1920);
  for (let s = 0; s < 960; s++) pcm.writeInt16LE(floodSample(i), s * 2);
  return frame(AUDIO, pcm);
}

/** Sends frames 0..count-1 in writes of 100 frames, waiting for each write to be taken by the kernel. */
export async function sendAll(user: ListeningUser, count: number): Promise<void> {
  for (let first = 0; first < count; first += 100) {
    const batch = Buffer.concat(Array.from({ length: Math.min(100, count - first) }, (_, i) => floodFrame(first + i)));
    await new Promise<void>((resolve) => user.socket.write(batch, () => resolve()));
  }
}

