// The TCP connections this grader process itself holds open. A server's user list can only be
// judged against them: a user listed with no connection of the grader's behind it is one whose
// connection the grader closed (a "ghost" the README says is removed at once), while a connection
// the grader still holds (a check's leftover) keeps a user the server rightly lists.
//
// Every client socket of the process is seen, whichever module opened it (WireClient, the hostile
// cases' raw sockets): Node announces each on the 'net.client.socket' diagnostics channel. The
// subscription starts when this module is first imported, which conformance/stages.ts does (through
// the checks that ask) before any check runs.
import { subscribe } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';

const open = new Set<Socket>();

subscribe('net.client.socket', (message) => {
  const socket = (message as { socket: Socket }).socket;
  open.add(socket);
  socket.once('close', () => open.delete(socket));
});

/**
 * How many of the grader's sockets may be connected to `port`: those connected to it, and those
 * still connecting (whose port is not known yet), so that an uncertain count errs on "still held".
 */
export function graderConnectionsTo(port: number): number {
  return [...open].filter((socket) => !socket.destroyed && (socket.remotePort === port || socket.remotePort === undefined)).length;
}
