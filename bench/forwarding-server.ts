// The stage 05 reference server for bench/forwarding-load.ts:
//   node --import tsx bench/forwarding-server.ts HOST PORT [corked|direct]
// `corked` (the default) is the server as it ships: it corks each socket on its first write of an
// event-loop turn and uncorks it in setImmediate, so what several speakers sent one listener in
// the same turn leaves in ONE writev. `direct` measures the alternative without changing the
// stage: cork() and uncork() become no-ops, so each forwarded VOICE is its own socket.write and
// (with Nagle off) its own system call. The load script compares the two.
import { Socket } from 'node:net';
import { runMain } from '#shared/user-error.ts';
import { startServer } from '../05-opus/server.ts';

const [host = '127.0.0.1', port = '0', strategy = 'corked'] = process.argv.slice(2);

if (strategy === 'direct') {
  Socket.prototype.cork = function () {};
  Socket.prototype.uncork = function () {};
} else if (strategy !== 'corked') {
  throw new Error(`write strategy must be corked or direct, not ${strategy}`);
}

process.on('SIGTERM', () => process.exit(0));
await runMain(async () => {
  await startServer(host, Number(port));
});
