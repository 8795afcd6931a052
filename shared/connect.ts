// Opens a TCP connection, with the failures a user meets turned into one readable line.
import { connect as netConnect, type Socket } from 'node:net';
import { explainConnectError } from './network-errors.ts';
import { UserError } from './user-error.ts';

export const CONNECT_TIMEOUT_MS = 10_000;

export function connect(host: string, port: number, timeoutMs = CONNECT_TIMEOUT_MS): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host, port });
    const fail = (message: string) => {
      socket.destroy();
      reject(new UserError(message));
    };
    const timer = setTimeout(() => fail(explainConnectError(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' }), { host, port })), timeoutMs);
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      fail(explainConnectError(error, { host, port }));
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
  });
}
