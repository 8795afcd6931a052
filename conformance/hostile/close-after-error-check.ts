// After ERROR (README, "Limits and timing": after ERROR) the server closes its side at once, so
// the client reads the ERROR and then the end of the stream, and cuts the connection 2 s later if
// the client has not closed, so a client that never closes cannot hold a connection for ever.
// Neither half is seen by a client that closes as soon as it reads ERROR, which is why this check
// plays one that does not: its socket stays half-open (allowHalfOpen) and keeps writing a byte every
// 50 ms after the server's FIN. While the server still holds its end, those bytes are taken in
// silently; once it cuts (closes) its end, the next byte is answered with a reset. So the time from
// ERROR to the reset is the server's grace, judged by the timing rule (harness/tolerance.ts).
import { connect, type Socket } from 'node:net';
import { CheckFailure, showBytes } from '../harness/check-failure.ts';
import type { Check } from '../harness/checks.ts';
import { describeWindow, showMs, timingWindow } from '../harness/tolerance.ts';
import { frame } from './frames.ts';
import { ERROR, type StageWire } from './wire-spec.ts';

/** The README's grace after ERROR before the server cuts a connection the client keeps open. */
export const CLOSE_GRACE_MS = 2_000;
/** "Closes its side at once": the end of the stream must follow the ERROR within this. */
const FIN_WITHIN_MS = 500;
const UNKNOWN_TYPE = 0x99;

interface Timeline {
  received: Buffer;
  errorAt?: number;
  finAt?: number;
  cutAt?: number;
  cutBy?: string;
}

export function closeAfterError(wire: StageWire): Check {
  const window = timingWindow(CLOSE_GRACE_MS);
  return {
    name: `hostile ${wire.id}: after ERROR the server closes its side at once, and cuts a connection the client keeps open ${CLOSE_GRACE_MS / 1000} s later`,
    run: async (context) => {
      const sent = frame(UNKNOWN_TYPE);
      const timeline: Timeline = { received: Buffer.alloc(0) };
      const socket: Socket = connect({ host: context.server.host, port: context.server.port, allowHalfOpen: true });
      let ticking: NodeJS.Timeout | undefined;
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once('connect', resolve);
          socket.once('error', reject);
        });
        const cut = new Promise<void>((resolve) => {
          const mark = (by: string) => {
            if (timeline.cutAt === undefined) Object.assign(timeline, { cutAt: performance.now(), cutBy: by });
            resolve();
          };
          socket.on('error', (error: NodeJS.ErrnoException) => mark(error.code ?? error.message));
          socket.on('close', () => mark('close'));
        });
        socket.on('data', (chunk: Buffer) => {
          timeline.received = Buffer.concat([timeline.received, chunk]);
          if (timeline.errorAt === undefined && timeline.received[0] === ERROR) timeline.errorAt = performance.now();
        });
        socket.on('end', () => (timeline.finAt ??= performance.now()));
        socket.write(sent);
        // The client "has not closed": it keeps writing, so the server's cut shows as a reset.
        ticking = setInterval(() => {
          if (timeline.finAt !== undefined && !socket.destroyed) socket.write(Buffer.from([0]));
        }, 50);
        const giveUpAt = performance.now() + 5_000 + window.latestMs;
        await Promise.race([cut, new Promise((resolve) => setTimeout(resolve, giveUpAt - performance.now()))]);
      } finally {
        clearInterval(ticking);
        socket.destroy();
      }
      const shown = { sent, received: timeline.received };
      if (timeline.errorAt === undefined) {
        throw new CheckFailure('a frame of an unknown type got no ERROR', { expected: 'ERROR unknown_type, then the end of the stream', actual: `the first byte received: ${showBytes(timeline.received.subarray(0, 1))}`, ...shown });
      }
      const finAfter = timeline.finAt === undefined ? Infinity : timeline.finAt - timeline.errorAt;
      if (finAfter > FIN_WITHIN_MS) {
        throw new CheckFailure('after ERROR the server did not close its side at once', {
          expected: `the end of the stream (FIN) right after the ERROR, within ${FIN_WITHIN_MS} ms`,
          actual: timeline.finAt === undefined ? `no end of stream; the connection ${timeline.cutAt === undefined ? 'stayed open' : `was cut (${timeline.cutBy}) ${Math.round(timeline.cutAt - timeline.errorAt)} ms after the ERROR`}` : `the end of stream came ${Math.round(finAfter)} ms after the ERROR`,
          hint: 'after sending ERROR, close your sending side (shutdown / end) at once: the client reads the ERROR, then the end of the stream',
          ...shown,
        });
      }
      const cutAfter = timeline.cutAt === undefined ? Infinity : timeline.cutAt - timeline.errorAt;
      if (cutAfter < window.earliestMs || cutAfter > window.latestMs) {
        throw new CheckFailure(`the grace after ERROR is not ${showMs(CLOSE_GRACE_MS)}: a client that kept its side open was cut ${cutAfter === Infinity ? 'never (within ' + showMs(window.latestMs + 5_000) + ')' : `after ${showMs(cutAfter)}`}`, {
          expected: `the server cuts the connection ${showMs(CLOSE_GRACE_MS)} after ERROR when the client has not closed (accepted: ${describeWindow(window)}); seen here as a reset of the bytes the client kept sending`,
          actual: cutAfter === Infinity ? 'the connection was still open' : `cut (${timeline.cutBy}) ${Math.round(cutAfter)} ms after the ERROR`,
          hint: cutAfter < window.earliestMs
            ? `wait ${showMs(CLOSE_GRACE_MS)} before closing a connection the client keeps open: closing at once can throw away the ERROR before the client reads it`
            : `${showMs(CLOSE_GRACE_MS)} after ERROR, close the socket whatever the client does: a client that never closes must not hold a connection`,
          ...shown,
        });
      }
    },
  };
}
