// The send limit at stage 03 (README: "anything waiting to be sent to you", 256 KiB): when the
// server has a control message for a user and more than that already waits, ERROR slow_consumer.
// At 03 the only control messages are news of others (JOINED, LEFT, SPEAKING), so the check makes
// news: short connections that join and leave while a user, Eve, never reads. Nobody talks, so no
// mix is ever skipped for her and the 5 s rule never cuts her: only the send limit can. A server
// without it queues news for her for as long as they come.
//
// How much: the same as stage 04's LIST_ROOMS check (send-limit-check.ts), twice the kernels'
// buffering measured here plus 4 × 256 KiB, counted at the fewest bytes the news can take. Each
// name is 32 three-byte characters (the README allows 32 characters), so each connection makes at
// least 239 bytes of JOINED and LEFT: the references cut Eve after about 14 000 connections, one
// without the limit is seen after about 37 000 (~20 s). Like the 04 check it shows that there is
// a bound, not its size: a bound of a few MiB passes.
import { CheckFailure } from '../harness/check-failure.ts';
import type { Check, CheckContext } from '../harness/checks.ts';
import { frameBytes, HEADER_BYTES } from '../harness/frame-wire.ts';
import { FramedUser } from '../harness/framed-user.ts';
import { MB } from '../harness/proc-stats.ts';
import { expectCutAsSlowConsumer } from './expectations.ts';
import { ListeningUser } from './listening-user.ts';
import { PAST_KERNELS_BYTES, SEND_LIMIT_BYTES, SEND_LIMIT_FLOOD } from './send-limit-check.ts';
import type { ServerFrame } from './server-frames.ts';
import { loopbackBuffering } from './slow-consumer-check.ts';
import { BYE, JOINED, LEFT, type StageWire } from './wire-spec.ts';

/** Connections joining and leaving at once. */
const LANES = 32;
/** After the last news, how long a correct server may take to see the limit passed. */
const DISCONNECT_WITHIN_MS = 3_000;
/** The CJK Unified Ideographs, U+4E00-U+9FFF. */
const IDEOGRAPHS = 0x5200;

/**
 * The name of the index-th short connection: 32 characters of 3 bytes each in UTF-8 (CJK
 * ideographs: one UTF-16 unit each, so a server that counts code units instead of code points
 * takes them too), the first two telling the connections apart (U+4E00 on: 440 million names).
 */
export function longNewsName(index: number): string {
  const digit = (place: number) => String.fromCodePoint(0x4e00 + (Math.floor(index / IDEOGRAPHS ** place) % IDEOGRAPHS));
  return digit(1) + digit(0) + '\u97F3'.repeat(30); // 音, "sound"
}

/** The fewest bytes a server can send a user for one connection's JOINED and LEFT (UTF-8, no spaces, the shortest reason). */
export function fewestNewsBytes(name: string): number {
  const joined = Buffer.byteLength(JSON.stringify({ name }));
  const left = Buffer.byteLength(JSON.stringify({ name, reason: 'bye' }));
  return 2 * HEADER_BYTES + joined + left;
}

/** Runs LANES lanes of short connections (HELLO, WELCOME, BYE) until `connections` have been made or `done()`; returns how many were made. */
async function makeNews(context: CheckContext, wire: StageWire, connections: number, done: () => boolean): Promise<number> {
  let started = 0;
  const lane = async () => {
    while (started < connections && !done()) {
      const name = longNewsName(started++);
      const user = await FramedUser.join(context.server.host, context.server.port, { ...wire.hello(name, 'hostile-n'), name }, {
        typeNames: { ...wire.typeNames },
        hint: 'a name is 1 to 32 characters (code points): 32 CJK ideographs (3 bytes each in UTF-8) are a valid name',
      });
      user.send(frameBytes(BYE));
      user.destroy();
    }
  };
  await Promise.all(Array.from({ length: LANES }, lane));
  return started;
}

export function newsLimit(wire: StageWire): Check {
  const kib = SEND_LIMIT_BYTES / 1024;
  return {
    name: `hostile ${wire.id}: a user who never reads is disconnected (slow_consumer) before the news for it (JOINED, LEFT) fill ${SEND_LIMIT_FLOOD}: news do not queue without bound`,
    timeLimitMs: 120_000,
    run: async (context) => {
      const watcher = await ListeningUser.join(context, wire, 'watcher-n', 'hostile-n');
      const eve = await ListeningUser.join(context, wire, 'eve-n', 'hostile-n');
      try {
        eve.socket.pause(); // reads nothing from now on
        const kernelBytes = await loopbackBuffering();
        const perConnection = fewestNewsBytes(longNewsName(0));
        const connections = Math.ceil((2 * kernelBytes + PAST_KERNELS_BYTES) / perConnection);
        const since = watcher.frames.length;
        const isEveLeft = (f: ServerFrame) => f.type === LEFT && f.json?.name === 'eve-n';
        let scanned = since;
        const eveLeftSeen = () => {
          for (; scanned < watcher.frames.length; scanned++) if (isEveLeft(watcher.frames[scanned]!)) return true;
          return false;
        };
        const made = await makeNews(context, wire, connections, eveLeftSeen);
        const newsMb = ((made * perConnection) / MB).toFixed(1);
        const left = await watcher.waitFor('LEFT {"name":"eve-n","reason":"error"}', isEveLeft, DISCONNECT_WITHIN_MS, since).catch((error: unknown) => {
          if (!(error instanceof CheckFailure) || watcher.closed) throw error;
          const news = (type: number) => watcher.frames.slice(since).filter((f) => f.type === type).length;
          throw new CheckFailure(`the send limit is not ${kib} KiB: a user who never read the news of ${made} users joining and leaving (at least ${newsMb} MB) was not disconnected`, {
            expected: `ERROR slow_consumer for eve-n once more than ${kib} KiB wait in the server (past what the kernels of this machine hold for a reader that never reads: ${(kernelBytes / MB).toFixed(1)} MB), and LEFT "error" to the others, within ${DISCONNECT_WITHIN_MS / 1000} s of the last news`,
            actual: `no LEFT for eve-n within ${DISCONNECT_WITHIN_MS / 1000} s of the last of ${made} connections; the watcher got ${news(JOINED)} JOINED and ${news(LEFT)} LEFT meanwhile`,
            hint: `before sending a control message (JOINED, LEFT, SPEAKING), check what already waits for that user; past ${kib} KiB, ERROR slow_consumer and disconnect them: news must not queue without bound`,
          });
        });
        await expectCutAsSlowConsumer(eve, left);
      } finally {
        eve.socket.destroy();
        watcher.socket.destroy();
      }
    },
  };
}
