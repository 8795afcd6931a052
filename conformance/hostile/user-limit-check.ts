// Too many users (README, "Timing and limits": users): past 1000 joined users, one more HELLO gets
// ERROR server_full, and a user who leaves makes room again (the limit counts users, not
// connections, which have a limit of their own). The real number is used: a thousand loopback
// connections are cheap when each one reads and throws away what it is sent, as these do. With
// rooms (04), each user joins a room of their own, so nobody is told of a thousand joins; in 03
// everyone is in the one room, so the server sends about half a million JOINED frames.
import { connect, type Socket } from 'node:net';
import { CheckFailure } from '../harness/check-failure.ts';
import type { Check, CheckContext } from '../harness/checks.ts';
import { expectErrorAndClose, expectServerServes } from './expectations.ts';
import { jsonFrame } from './frames.ts';
import { ListeningUser } from './listening-user.ts';
import { ERROR, HELLO, WELCOME, type StageWire } from './wire-spec.ts';

const BATCH = 100;
const ANSWER_WITHIN_MS = 10_000;

/** Joins `name` over a bare socket that discards everything after the answer to its HELLO; returns the socket and that answer's type. */
async function joinLean(context: CheckContext, hello: Buffer): Promise<{ socket: Socket; answer: number | 'none' }> {
  const socket = connect({ host: context.server.host, port: context.server.port });
  socket.on('error', () => {});
  const answer = await new Promise<number | 'none'>((resolve) => {
    const timer = setTimeout(() => resolve('none'), ANSWER_WITHIN_MS);
    socket.once('data', (chunk: Buffer) => (clearTimeout(timer), resolve(chunk[0]!)));
    socket.once('close', () => (clearTimeout(timer), resolve('none')));
    socket.write(hello);
  });
  socket.on('data', () => {}); // keep reading (and dropping) the news, so this user never stops reading
  return { socket, answer };
}

export function userLimit(wire: StageWire & { maxUsers: number }): Check {
  const rooms = wire.moves !== undefined; // stage 04: a room per user
  const room = (i: number) => (rooms ? `limit-${i}` : 'hostile-u');
  const hello = (i: number) => jsonFrame(HELLO, wire.hello(`user-${i}`, room(i)));
  return {
    name: `hostile ${wire.id}: past ${wire.maxUsers} users, one more HELLO gets ERROR server_full; a user who leaves makes room again`,
    // In one room (03), a thousand joins make the server send half a million JOINED: the reference
    // takes about 25 s on a busy 2-core machine, so this check may take longer than most.
    timeLimitMs: rooms ? undefined : 120_000,
    run: async (context) => {
      const users: Socket[] = [];
      try {
        for (let i = 0; i < wire.maxUsers; i += BATCH) {
          const batch = await Promise.all(Array.from({ length: Math.min(BATCH, wire.maxUsers - i) }, (_, j) => joinLean(context, hello(i + j))));
          users.push(...batch.map((joined) => joined.socket));
          const refused = batch.findIndex((joined) => joined.answer !== WELCOME);
          if (refused !== -1) {
            throw new CheckFailure(`the user limit is not ${wire.maxUsers}: user ${i + refused + 1} was not welcomed`, {
              expected: `WELCOME for each of ${wire.maxUsers} users (the README's limit)`,
              actual: `user ${i + refused + 1}'s HELLO got ${batch[refused]!.answer === ERROR ? 'ERROR' : batch[refused]!.answer === 'none' ? `nothing within ${ANSWER_WITHIN_MS / 1000} s` : `a frame of type 0x${batch[refused]!.answer.toString(16)}`}`,
              hint: `take up to ${wire.maxUsers} users; the connection limit is separate`,
            });
          }
        }
        const extra = await ListeningUser.connect(context, wire, `user ${wire.maxUsers + 1}`);
        extra.send(hello(wire.maxUsers));
        await expectErrorAndClose(extra, 'server_full', `HELLO number ${wire.maxUsers + 1}`, { timeoutMs: ANSWER_WITHIN_MS }).catch((error: unknown) => {
          if (!(error instanceof CheckFailure)) throw error;
          throw new CheckFailure(`the user limit is not ${wire.maxUsers}: HELLO number ${wire.maxUsers + 1} did not get ERROR server_full`, {
            expected: `ERROR server_full for one HELLO more than ${wire.maxUsers} users, then a close`,
            actual: error.details.actual ?? error.summary,
            hint: `count joined users (in every room); past ${wire.maxUsers}, answer HELLO with ERROR server_full`,
          });
        });
        users.shift()!.destroy(); // user 1 leaves: a place is free again
        const deadline = performance.now() + ANSWER_WITHIN_MS;
        let again = await joinLean(context, hello(wire.maxUsers + 1));
        while (again.answer === ERROR && performance.now() < deadline) { // the leave may not be handled yet
          again.socket.destroy();
          await new Promise((resolve) => setTimeout(resolve, 100));
          again = await joinLean(context, hello(wire.maxUsers + 1));
        }
        users.push(again.socket);
        if (again.answer !== WELCOME) {
          throw new CheckFailure(`with ${wire.maxUsers - 1} users left, a newcomer was not welcomed`, {
            expected: 'a user who leaves frees a place: the next HELLO gets WELCOME',
            actual: `its HELLO got ${again.answer === 'none' ? 'nothing' : `a frame of type 0x${again.answer.toString(16)}`}`,
            hint: 'count users, not connections ever made: a leave of any kind frees a place',
          });
        }
      } finally {
        for (const socket of users) socket.destroy();
      }
      await expectServerServes(context, wire, 'after-users', 'hostile-u', [], `${wire.maxUsers} users`, 20_000);
    },
  };
}
