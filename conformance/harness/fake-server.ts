// A stand-in server for testing a client: the test plays the server's part byte by byte.
import { createServer, type Server } from 'node:net';
import { WireClient } from './wire-client.ts';

export class FakeServer {
  private readonly accepted: WireClient[] = [];
  private waiters: (() => void)[] = [];

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {
    server.on('connection', (socket) => {
      this.accepted.push(new WireClient(socket));
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  /** Listens on 127.0.0.1 on a free port. */
  static start(): Promise<FakeServer> {
    return new Promise((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        resolve(new FakeServer(server, typeof address === 'object' && address ? address.port : 0));
      });
    });
  }

  /** The next accepted connection (the i-th, counting from 0), waiting up to timeoutMs. */
  async connection(index = 0, timeoutMs = 10_000): Promise<WireClient> {
    const deadline = Date.now() + timeoutMs;
    while (this.accepted.length <= index) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`the client did not connect within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
    return this.accepted[index]!;
  }

  close(): Promise<void> {
    for (const connection of this.accepted) connection.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
