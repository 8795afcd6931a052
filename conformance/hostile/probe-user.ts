// A well-behaved user that checks the server still works after a hostile case: it joins (retrying
// while the server says busy or full, for a while), and in the multi-user stages reads the USERS
// list it is sent, so a check can require "only the people really connected" (no ghost users).
import { connect, type Socket } from 'node:net';
import { bye } from './well-behaved.ts';
import { jsonFrame } from './frames.ts';
import { ServerFrameReader } from './server-frames.ts';
import { ERROR, HELLO, USERS, WELCOME, type StageWire } from './wire-spec.ts';

export interface ProbeResult {
  /** null when the probe joined; otherwise what went wrong. */
  problem: string | null;
  /** USERS as the probe was told (multi-user stages), the probe included. */
  users?: string[];
}

const ANSWER_MS = 3_000;

/**
 * Joins once, reads WELCOME (and USERS in 03/04), leaves with BYE. `awaitClose`: after the BYE,
 * waits (up to ANSWER_MS) for the server to close the connection, as it must after BYE.
 */
export async function joinOnce(host: string, port: number, wire: StageWire, name: string, room: string, awaitClose = false): Promise<ProbeResult & { refusedWith?: string }> {
  const reader = new ServerFrameReader(wire);
  let closed = false;
  let wake = () => {};
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect({ host, port }, () => resolve(s));
    s.once('error', reject);
  }).catch((error: Error) => error);
  if (socket instanceof Error) return { problem: `a new user could not connect: ${socket.message}` };
  socket.on('error', () => {});
  socket.on('data', (chunk: Buffer) => (reader.push(chunk), wake()));
  socket.on('close', () => ((closed = true), wake()));
  socket.write(jsonFrame(HELLO, wire.hello(name, room)));
  const needed = wire.mixes ? 2 : 1;
  const deadline = performance.now() + ANSWER_MS;
  while (!closed && reader.problem === undefined && performance.now() < deadline && reader.frames.length < needed && reader.frames[0]?.type !== ERROR) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.max(1, deadline - performance.now()));
      wake = () => (clearTimeout(timer), resolve());
    });
  }
  const [first, second] = reader.frames;
  try {
    if (reader.problem !== undefined) return { problem: reader.problem };
    if (first?.type === ERROR) return { problem: `a new user "${name}" got ERROR ${String(first.json?.code)}`, refusedWith: String(first.json?.code) };
    if (first?.type !== WELCOME) return { problem: `a new user "${name}" got ${first ? wire.typeNames[first.type] : closed ? 'a close' : `nothing within ${ANSWER_MS} ms`} instead of WELCOME` };
    if (!wire.mixes) return { problem: null };
    const users = second?.type === USERS ? second.json?.users : undefined;
    if (!Array.isArray(users)) return { problem: `after WELCOME, a new user got ${second ? wire.typeNames[second.type] : 'nothing'} instead of USERS` };
    // Stage 05 lists users as {"id", "name"}: the names are what the probe compares.
    return { problem: null, users: users.map((user: unknown) => (typeof user === 'object' && user !== null ? (user as { name?: unknown }).name : user)) as string[] };
  } finally {
    if (!closed) socket.end(bye());
    if (awaitClose) {
      const until = performance.now() + ANSWER_MS;
      while (!closed && performance.now() < until) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(1, until - performance.now()));
          wake = () => (clearTimeout(timer), resolve());
        });
      }
      socket.destroy();
    } else {
      setTimeout(() => socket.destroy(), 1_000).unref();
    }
  }
}

/**
 * Joins as `name` until it works or `deadlineMs` passes (busy, server_full and a list that still
 * holds someone who left are retried: the server may still be cleaning up).
 * `present`: in 03/04, the users that must be listed before the probe, in any order (the probe's room).
 */
export async function probeServer(host: string, port: number, wire: StageWire, name: string, room: string, present: string[], deadlineMs = 5_000): Promise<ProbeResult> {
  const deadline = performance.now() + deadlineMs;
  const expected = [...present, name].sort();
  for (;;) {
    const result = await joinOnce(host, port, wire, name, room);
    let problem = result.problem;
    if (problem === null && result.users !== undefined && JSON.stringify([...result.users].sort()) !== JSON.stringify(expected)) {
      problem = `a new user "${name}" was told USERS ${JSON.stringify(result.users)}; only ${JSON.stringify(expected)} are connected (ghost users?)`;
    }
    if (problem === null || performance.now() > deadline) return { ...result, problem };
    // Joining again right away would be refused: the old probe's BYE may still be on its way.
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
