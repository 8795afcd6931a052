// Stage 01 server: answers each client's greeting by name, then closes that connection.
// Serves any number of clients at once; nothing one client sends can stop it serving others.
import { createServer, type Socket } from 'node:net';
import { listenAndAnnounce, type ListeningAddress } from '#shared/listen.ts';
import { nameProblem } from '#shared/user-name.ts';
import { answerLine, errorLine, ErrorCode, GREETING_PREFIX, GREETING_TIMEOUT_MS, MAX_LINE_BYTES } from './protocol.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Reads one greeting line from a client, answers it, and closes the connection. */
function serveClient(socket: Socket): void {
  const received: Buffer[] = [];
  let receivedBytes = 0;
  let answered = false;

  const finish = (line: string) => {
    answered = true;
    clearTimeout(timer);
    socket.removeListener('data', onData);
    socket.end(line); // send the line, then close our side
    // A client that never closes its side is cut off soon after, so no connection lingers.
    setTimeout(() => socket.destroy(), 2_000).unref();
  };

  const timer = setTimeout(() => {
    finish(errorLine(ErrorCode.timeout, `no greeting within ${GREETING_TIMEOUT_MS / 1000} seconds`));
  }, GREETING_TIMEOUT_MS);

  const onData = (chunk: Buffer) => {
    const newline = chunk.indexOf(0x0a);
    // Check the limit before keeping the bytes, so a client cannot make us buffer without end.
    const lineBytes = receivedBytes + (newline === -1 ? chunk.length : newline + 1);
    if (lineBytes > MAX_LINE_BYTES) {
      finish(errorLine(ErrorCode.tooLong, `the greeting must end with a newline within ${MAX_LINE_BYTES} bytes`));
      return;
    }
    if (newline === -1) {
      received.push(chunk);
      receivedBytes += chunk.length;
      return;
    }
    received.push(chunk.subarray(0, newline));
    finish(answerTo(Buffer.concat(received)));
  };

  socket.on('data', onData);
  socket.on('error', () => {
    // An abrupt disconnect (reset) only ends this client's conversation.
    clearTimeout(timer);
  });
  socket.on('close', () => clearTimeout(timer));
  socket.on('end', () => {
    if (!answered) {
      clearTimeout(timer);
      socket.end(); // the client left before finishing its greeting
    }
  });
}

/** The answer to one greeting line (without its "\n"). */
function answerTo(lineBytes: Buffer): string {
  let line: string;
  try {
    line = utf8.decode(lineBytes);
  } catch {
    return errorLine(ErrorCode.badUtf8, 'the greeting is not valid UTF-8');
  }
  if (line.endsWith('\r')) line = line.slice(0, -1); // accept "\r\n" from telnet-like tools
  if (!line.startsWith(GREETING_PREFIX)) {
    return errorLine(ErrorCode.badGreeting, 'expected "HELLO <name>"');
  }
  const name = line.slice(GREETING_PREFIX.length);
  const problem = nameProblem(name);
  if (problem) return errorLine(ErrorCode.badName, problem);
  return answerLine(name);
}

export interface RunningServer {
  address: ListeningAddress;
  close(): Promise<void>;
}

export async function startServer(host: string, port: number): Promise<RunningServer> {
  const server = createServer(serveClient);
  const address = await listenAndAnnounce(server, host, port);
  return {
    address,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
      }),
  };
}
