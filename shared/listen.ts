// Starts a TCP server and prints the ready line that people, tests and graders wait for.
import type { Server } from 'node:net';
import { hostPort } from './host-port.ts';
import { explainListenError } from './network-errors.ts';
import { UserError } from './user-error.ts';

export interface ListeningAddress {
  host: string;
  port: number;
}

/** The line printed once the server accepts connections (the port is the real one, even for --port 0). */
export function readyLine(address: ListeningAddress): string {
  const line = `listening on ${hostPort(address.host, address.port)}`;
  // "::" is every address of both families, which "[::]" alone does not tell a newcomer.
  return address.host === '::' ? `${line} (every IPv4 and IPv6 address of this machine)` : line;
}

/** Error codes of listening on "::" on a machine without IPv6: then every IPv4 address will do. */
const NO_IPV6 = new Set(['EAFNOSUPPORT', 'EADDRNOTAVAIL']);

/**
 * Listens on host:port (port 0 = any free port). Resolves with the real address once
 * connections are accepted; rejects with a one-line UserError (port in use, ...).
 * "::" (the default) is dual-stack: IPv6 and IPv4 clients alike; where the machine has no IPv6,
 * it falls back to 0.0.0.0 (every IPv4 address).
 */
export async function listen(server: Server, host: string, port: number): Promise<ListeningAddress> {
  try {
    return await listenOnce(server, host, port);
  } catch (error) {
    const code = (error as { cause?: NodeJS.ErrnoException }).cause?.code;
    if (host !== '::' || code === undefined || !NO_IPV6.has(code)) throw error;
    return listenOnce(server, '0.0.0.0', port);
  }
}

function listenOnce(server: Server, host: string, port: number): Promise<ListeningAddress> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => reject(new UserError(explainListenError(error, { host, port }), 1, { cause: error }));
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
