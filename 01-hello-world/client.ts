// Stage 01 client: connects, greets the server with a name, prints the answer, exits.
import { connect } from '#shared/connect.ts';
import { explainConnectError } from '#shared/network-errors.ts';
import { UserError } from '#shared/user-error.ts';
import { nameProblem } from '#shared/user-name.ts';
import { GREETING_PREFIX } from './protocol.ts';

/** The longest answer line we accept; a server sending more is misbehaving. */
const MAX_ANSWER_BYTES = 1024;
const ANSWER_TIMEOUT_MS = 15_000;

export interface ClientOptions {
  name: string;
  host: string;
  port: number;
}

/** Greets the server and returns its answer (the text after "OK "); throws UserError on refusal. */
export async function greet({ name, host, port }: ClientOptions): Promise<string> {
  const problem = nameProblem(name);
  if (problem) throw new UserError(`invalid --name: ${problem}`, 2);

  const socket = await connect(host, port);
  socket.write(`${GREETING_PREFIX}${name}\n`);
  const line = await readLine(socket, { host, port });
  socket.end();

  if (line.startsWith('OK ')) return line.slice(3);
  const refusal = /^ERR (\S+) ?(.*)$/.exec(line);
  if (refusal) throw new UserError(`the server refused the greeting: ${refusal[2]} (${refusal[1]})`);
  throw new UserError(`the server answered something unexpected: ${JSON.stringify(line)}`);
}

/** Collects bytes until the first "\n" (TCP may deliver the line in pieces). */
function readLine(socket: import('node:net').Socket, server: { host: string; port: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (message: string) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new UserError(message));
    };
    const timer = setTimeout(() => fail(`no answer from the server within ${ANSWER_TIMEOUT_MS / 1000} seconds`), ANSWER_TIMEOUT_MS);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      const all = Buffer.concat(chunks, size);
      const newline = all.indexOf(0x0a);
      if (newline !== -1) {
        clearTimeout(timer);
        resolve(all.subarray(0, newline).toString('utf8').replace(/\r$/, ''));
      } else if (size > MAX_ANSWER_BYTES) {
        fail(`the server sent more than ${MAX_ANSWER_BYTES} bytes without a newline`);
      }
    });
    socket.on('end', () => fail('the server closed the connection without answering'));
    socket.on('error', (error: NodeJS.ErrnoException) => fail(explainConnectError(error, server)));
  });
}

export async function runClient(options: ClientOptions): Promise<void> {
  const answer = await greet(options);
  console.log(answer);
}
