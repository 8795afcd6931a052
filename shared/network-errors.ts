// Turns the socket errors people actually meet into one readable line that says what to do.
import { hostPort } from './host-port.ts';

interface Endpoint {
  host: string;
  port: number;
}

/** Explains an error from `server.listen()`. */
export function explainListenError(error: NodeJS.ErrnoException, at: Endpoint): string {
  switch (error.code) {
    case 'EADDRINUSE':
      return `port ${at.port} is already in use on ${at.host}: stop the other program or choose another port (--port 0 lets the system pick a free one)`;
    case 'EACCES':
      return `no permission to listen on port ${at.port}: ports below 1024 need privileges, use a higher one`;
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${at.host}: this machine has no such address (leave --host out to listen on every address)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot listen on ${at.host}: host not found`;
    default:
      return `cannot listen on ${hostPort(at.host, at.port)}: ${error.message}`;
  }
}

/** Explains an error from connecting to (or talking with) a server. */
export function explainConnectError(error: NodeJS.ErrnoException, to: Endpoint): string {
  switch (error.code) {
    case 'ECONNREFUSED':
      return `connection refused by ${hostPort(to.host, to.port)}: is the server running and listening on that port?${
        to.host.includes(':') ? ' (a server listening on 0.0.0.0 takes IPv4 only: then use --host 127.0.0.1 or its IPv4 address)' : ''
      }`;
    case 'ENOTFOUND':
      return `host not found: ${to.host} (check the spelling, or use an IP address)`;
    case 'EAI_AGAIN':
      return `host not found: ${to.host} (the name could not be looked up; is the network up?)`;
    case 'ETIMEDOUT':
      return `no answer from ${hostPort(to.host, to.port)} (timed out): is the address right and not blocked by a firewall?`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `cannot reach ${to.host}: no route to that network`;
    case 'ECONNRESET':
      return `the connection to ${hostPort(to.host, to.port)} was reset by the server`;
    case 'EPIPE':
      return `the server at ${hostPort(to.host, to.port)} closed the connection`;
    default:
      return `cannot talk to ${hostPort(to.host, to.port)}: ${error.message}`;
  }
}
