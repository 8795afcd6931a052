// The assertions the hostile checks share: an offender gets ERROR with the right code and is closed,
// nobody else hears of a bad name, the server still takes newcomers and lists no ghosts, memory stays bounded.
import { processNotFound, type Unmeasured } from '../harness/unmeasured.ts';
import { CheckFailure } from '../harness/check-failure.ts';
import type { CheckContext } from '../harness/checks.ts';
import type { ListeningUser } from './listening-user.ts';
import type { ServerFrame } from './server-frames.ts';
import { probeServer } from './probe-user.ts';
import { MB, type ServerResources } from '../harness/proc-stats.ts';
import { FORBIDDEN_IN_NAMES } from '#shared/user-name.ts';
import { AUDIO, ERROR, type StageWire } from './wire-spec.ts';

const ERROR_DEADLINE_MS = 5_000;
const CLOSE_AFTER_ERROR_MS = 3_000;

/** Requires ERROR `code` (after any frames `allowBefore` accepts), then a close. */
export async function expectErrorAndClose(user: ListeningUser, code: string, what: string, options: { allowBefore?: (type: number) => boolean; timeoutMs?: number } = {}): Promise<void> {
  const allowBefore = options.allowBefore ?? (() => false);
  const frame = await user.waitFor(`ERROR "${code}" for ${what}`, (f) => f.type === ERROR || !allowBefore(f.type), options.timeoutMs ?? ERROR_DEADLINE_MS);
  if (frame.type !== ERROR || frame.json?.code !== code) {
    throw new CheckFailure(`${what}: expected ERROR "${code}"`, {
      expected: `ERROR (0x05) {"code": "${code}", "message": ...}, then a close`,
      actual: `${user.name} received: ${user.describe()}`,
      hint: 'a bad frame gets ERROR with the stable code the README lists, then that connection (only) is closed',
    });
  }
  await user.waitForClose(`the server to close the connection after ERROR ${code} (${what})`, CLOSE_AFTER_ERROR_MS);
}

/**
 * A user who stopped reading was cut: the others were told LEFT "error" (when `left` is given), and
 * once it reads again it finds what was queued for it, then ERROR slow_consumer or just the close.
 */
export async function expectCutAsSlowConsumer(user: ListeningUser, left?: ServerFrame): Promise<void> {
  if (left !== undefined && left.json?.reason !== 'error') {
    throw new CheckFailure(`the user who never read, ${user.name}, left with the wrong reason`, {
      expected: `LEFT {"name":"${user.name}","reason":"error"}: the server disconnected them (slow_consumer)`,
      actual: `LEFT ${left.payload.toString('utf8').slice(0, 200)}`,
      hint: 'a user the server disconnects, for slow_consumer too, leaves with the reason "error"',
    });
  }
  user.socket.resume(); // whatever was queued, then (perhaps) ERROR slow_consumer, then the close
  await user.waitForClose('the server to close the slow consumer', 10_000);
  const error = user.frames.find((f) => f.type === ERROR);
  if (error !== undefined && error.json?.code !== 'slow_consumer') {
    throw new CheckFailure('the slow consumer got the wrong ERROR', { expected: 'ERROR slow_consumer (or just a close)', actual: JSON.stringify(error.json) });
  }
}

/** Requires that no control message sent to `user` holds a string with a control or bidi character. */
export function expectNoHostileText(user: ListeningUser): void {
  for (const frame of user.frames) {
    if (frame.type === AUDIO || frame.json === undefined) continue;
    const text = JSON.stringify(frame.json);
    const strings: string[] = [];
    JSON.parse(text, (_key, value: unknown) => (typeof value === 'string' && strings.push(value), value));
    const bad = strings.find((s) => FORBIDDEN_IN_NAMES.test(s));
    if (bad !== undefined) {
      throw new CheckFailure(`a name with control characters reached ${user.name}`, {
        expected: 'names that break the name rule are refused with bad_name and never sent to anyone',
        actual: `${user.name} received ${text.slice(0, 200)}`,
        hint: 'check the name rule before adding the user or announcing them',
      });
    }
  }
}

/** Requires that a newcomer can join, and in 03/04 is told exactly `present` plus themselves. */
export async function expectServerServes(context: CheckContext, wire: StageWire, name: string, room: string, present: string[], after: string, deadlineMs?: number): Promise<void> {
  const probe = await probeServer(context.server.host, context.server.port, wire, name, room, present, deadlineMs);
  if (probe.problem !== null) {
    throw new CheckFailure(`after ${after}, the server does not serve a newcomer correctly`, {
      expected: wire.mixes ? `"${name}" joins and USERS lists ${JSON.stringify([...present, name])}` : `"${name}" joins (WELCOME)`,
      actual: probe.problem,
      hint: 'free every user and slot on every way a connection ends (BYE, FIN, reset, error, timeout)',
    });
  }
}

/** Samples the server's memory every 50 ms while `body` runs; returns the largest growth in bytes. */
export async function peakGrowthDuring(server: ServerResources | undefined, body: () => Promise<void>): Promise<number | undefined> {
  if (server === undefined) {
    await body();
    return undefined;
  }
  const before = server.rss();
  let peak = before;
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, server.rss());
    } catch {
      // the process is gone: the check fails on that anyway
    }
  }, 50);
  try {
    await body();
  } finally {
    clearInterval(timer);
  }
  return peak - before;
}

/** Fails the check if memory grew by `limit` bytes or more (undefined: not observable, nothing to check). */
export function expectBoundedGrowth(growth: number | undefined, limit: number, during: string, unmeasured: Unmeasured): void {
  if (growth === undefined) return unmeasured.note(processNotFound(`memory during ${during}`));
  if (growth < limit) return;
  throw new CheckFailure(`the server's memory grew by ${Math.round(growth / MB)} MB during ${during}`, {
    expected: `growth under ${Math.round(limit / MB)} MB: every buffer a client can fill is bounded`,
    actual: `resident memory grew by ${Math.round(growth / MB)} MB`,
    hint: 'check declared lengths before buffering, keep a bounded queue per talker, and skip (do not queue) audio for slow readers',
  });
}
