// The limit on anything waiting to be sent to a client (README 03/04: 256 KiB; 04: "answers to JOIN
// and LIST_ROOMS count toward the 256 KiB send limit"): a client that sends requests and never reads
// their answers gets ERROR slow_consumer once more than that waits, when the next answer comes.
// Stage 04 only: its LIST_ROOMS makes answers on demand, so the kernels' buffering (measured, about
// 4 MB) fills in a second, where stage 03's news would take a thousand joins per 60 kB.
//
// How: a hog in a room with a watcher stops reading and sends, in one write, as many LIST_ROOMS as
// make answers to fill twice the kernels' buffering plus 4 × 256 KiB. Twice, because the buffering
// measured on a probe connection is not what the kernels give the hog's connection: with 1 MB over
// the measure, a correct server was once not yet past 256 KiB (CI, Node 24). A server that holds at
// most 256 KiB disconnects the hog as soon as that much waits (the rest of the requests are never
// answered), and the watcher gets LEFT "error"; a server without the limit keeps queueing answers
// for ever.
import { CheckFailure } from '../harness/check-failure.ts';
import type { Check } from '../harness/checks.ts';
import { MB } from '../harness/proc-stats.ts';
import { expectCutAsSlowConsumer } from './expectations.ts';
import { frame } from './frames.ts';
import { ListeningUser } from './listening-user.ts';
import { loopbackBuffering } from './slow-consumer-check.ts';
import { LEFT, LIST_ROOMS, ROOMS, type StageWire } from './wire-spec.ts';

/** The README's limit on anything waiting to be sent to one client. */
export const SEND_LIMIT_BYTES = 256 * 1024;
/** What a send-limit check makes past twice the kernels' measured buffering: 4 × the limit, 1 MiB. */
export const PAST_KERNELS_BYTES = 4 * SEND_LIMIT_BYTES;
/** "twice the kernels' buffering plus 1 MiB": what a send-limit check sends a user who never reads. */
export const SEND_LIMIT_FLOOD = `twice the kernels' buffering plus ${PAST_KERNELS_BYTES / (1024 * 1024)} MiB`;
const DISCONNECT_WITHIN_MS = 10_000;

export function sendLimit(wire: StageWire): Check {
  const room = 'hostile-q';
  return {
    name: `hostile ${wire.id}: a client that sends LIST_ROOMS and never reads the answers is disconnected (slow_consumer) before they fill ${SEND_LIMIT_FLOOD}: answers do not queue without bound`,
    run: async (context) => {
      const watcher = await ListeningUser.join(context, wire, 'watcher-q', room);
      const hog = await ListeningUser.join(context, wire, 'hog-q', room);
      try {
        // How long one answer is, right now: the hog asks once and reads it.
        const asked = hog.frames.length;
        hog.send(frame(LIST_ROOMS));
        const answer = await hog.waitFor('ROOMS, the answer to LIST_ROOMS', (f) => f.type === ROOMS, 5_000, asked);
        const answerBytes = 5 + answer.payload.length;
        const kernelBytes = await loopbackBuffering();
        const requests = Math.ceil((2 * kernelBytes + PAST_KERNELS_BYTES) / answerBytes);
        hog.socket.pause(); // reads nothing from now on
        const since = watcher.frames.length;
        hog.send(Buffer.concat(Array.from({ length: requests }, () => frame(LIST_ROOMS))));
        const left = await watcher.waitFor('LEFT {"name":"hog-q","reason":"error"}', (f) => f.type === LEFT && f.json?.name === 'hog-q', DISCONNECT_WITHIN_MS, since).catch((error: unknown) => {
          if (!(error instanceof CheckFailure)) throw error;
          throw new CheckFailure(`the send limit is not ${SEND_LIMIT_BYTES / 1024} KiB: a client that never read ${requests} answers (${((requests * answerBytes) / MB).toFixed(1)} MB) was not disconnected`, {
            expected: `ERROR slow_consumer for the hog once more than ${SEND_LIMIT_BYTES / 1024} KiB of answers wait in the server (past what the kernels of this machine hold for a reader that never reads: ${(kernelBytes / MB).toFixed(1)} MB), and LEFT "error" to its room, within ${DISCONNECT_WITHIN_MS / 1000} s`,
            actual: error.details.actual ?? error.summary,
            hint: `before sending a control message, check what already waits for that client; past ${SEND_LIMIT_BYTES / 1024} KiB, ERROR slow_consumer and disconnect it (answers to JOIN and LIST_ROOMS count)`,
          });
        });
        await expectCutAsSlowConsumer(hog, left);
      } finally {
        hog.socket.destroy();
        watcher.socket.destroy();
      }
    },
  };
}
