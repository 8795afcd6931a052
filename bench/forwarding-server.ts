// The stage 05 reference server for bench/forwarding-load.ts:
//   node --import tsx bench/forwarding-server.ts HOST PORT [corked|direct|concat]
// (without the argument: $FORWARDING_WRITE_STRATEGY, else corked; so `npm run bench -- --stage 05`,
// which starts this file with HOST PORT only, can measure the alternatives too)
// `corked` (the default) is the server as it ships: it corks each socket on its first write of an
// event-loop turn and uncorks it in setImmediate, so what several speakers sent one listener in
// the same turn leaves in ONE writev. `direct` measures the alternative without changing the
// stage: cork() and uncork() become no-ops, so each forwarded VOICE is its own socket.write and
// (with Nagle off) its own system call. `concat` measures another alternative: while a socket is
// corked its frames are kept in a list and leave as ONE Buffer.concat on uncork (one plain write,
// none of the stream's per-chunk bookkeeping, no writev). A measurement only: writableLength does
// not count the list, and an end() in the same turn would overtake it. The load script compares them.
import { Socket } from 'node:net';
import { runMain } from '#shared/user-error.ts';
import { startServer } from '../05-opus/server.ts';

const [host = '127.0.0.1', port = '0', strategy = process.env.FORWARDING_WRITE_STRATEGY ?? 'corked'] = process.argv.slice(2);

if (strategy === 'direct') {
  Socket.prototype.cork = function () {};
  Socket.prototype.uncork = function () {};
} else if (strategy === 'concat') {
  const pending = new WeakMap<Socket, Buffer[]>();
  const write = Socket.prototype.write as (chunk: Buffer, ...rest: unknown[]) => boolean;
  Socket.prototype.cork = function () {
    pending.set(this, []);
  };
  Socket.prototype.write = function (this: Socket, chunk: Buffer, ...rest: unknown[]) {
    const list = pending.get(this);
    if (list === undefined) return write.call(this, chunk, ...rest);
    list.push(chunk);
    return true;
  } as never;
  Socket.prototype.uncork = function () {
    const list = pending.get(this);
    pending.delete(this);
    if (list && list.length > 0) write.call(this, list.length === 1 ? list[0]! : Buffer.concat(list));
  };
} else if (strategy !== 'corked') {
  throw new Error(`write strategy must be corked, direct or concat, not ${strategy}`);
}

process.on('SIGTERM', () => process.exit(0));
await runMain(async () => {
  await startServer(host, Number(port));
});
