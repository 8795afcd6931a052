// Stage 02 server: voice echo for one user at a time. Every AUDIO frame the user sends goes
// straight back to them; a second user is refused until the first one leaves.
// Nothing one connection sends can disturb another: a bad frame closes only that connection.
import { createServer, type Socket } from 'node:net';
import { FRAME_BYTES } from '#shared/audio/format.ts';
import { FrameParser } from '#shared/framing/frame-parser.ts';
import { hostPort } from '#shared/host-port.ts';
import { listenAndAnnounce, type ListeningAddress } from '#shared/listen.ts';
import { ProtocolError } from '#shared/protocol-error.ts';
import { nameProblem } from '#shared/user-name.ts';
import {
  audioFrame,
  clientMessageLimit,
  ErrorCode,
  errorFrame,
  HANDSHAKE_TIMEOUT_MS,
  MAX_CONNECTIONS,
  MAX_QUEUED_ECHO_BYTES,
  MessageType,
  parseHello,
  SLOW_CONSUMER_MS,
  welcomeFrame,
} from './protocol.ts';

/** The one seat this server has: the connection of the current user, or null. */
interface Slot {
  user: Socket | null;
}

/** How long a connection we refused may linger before we cut it off. */
const CLOSE_GRACE_MS = 2_000;

/** Talks to one connection: handshake, then echo, until it leaves or breaks the protocol. */
function serveClient(socket: Socket, slot: Slot): void {
  const peer = hostPort(socket.remoteAddress, socket.remotePort); // [::1]:50000 for IPv6
  let name: string | null = null; // set once this connection holds the slot
  let finished = false; // after BYE or an error, nothing more is read
  let echoed = 0;
  let dropped = 0;
  let droppingSince: number | null = null; // when the current run of dropped echoes began

  // Voice is a stream of small frames that should leave at once: do not let Nagle's
  // algorithm hold a frame back waiting to fill a TCP segment.
  socket.setNoDelay(true);

  /** Frees the slot if this connection holds it. Safe to call more than once. */
  const leave = (how: string) => {
    clearTimeout(handshakeTimer);
    if (name !== null && slot.user === socket) {
      slot.user = null;
      const drops = dropped > 0 ? `, ${dropped} dropped because the client read too slowly` : '';
      console.log(`${name} left (${how}) after ${echoed} echoed frames${drops}`);
    }
  };

  /** Sends ERROR and closes this connection only. */
  const refuse = (code: ErrorCode, message: string) => {
    if (finished) return;
    finished = true;
    leave(`error ${code}`);
    console.log(`${peer}: ${code}: ${message}`);
    socket.end(errorFrame(code, message)); // send the error, then close our side
    setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
  };

  const handshakeTimer = setTimeout(
    () => refuse(ErrorCode.handshakeTimeout, `no HELLO within ${HANDSHAKE_TIMEOUT_MS / 1000} seconds`),
    HANDSHAKE_TIMEOUT_MS,
  );

  const onHello = (payload: Buffer) => {
    if (name !== null) throw new ProtocolError(ErrorCode.alreadyJoined, 'HELLO was already sent on this connection');
    const requested = parseHello(payload);
    const problem = nameProblem(requested);
    if (problem) throw new ProtocolError(ErrorCode.badName, problem);
    if (slot.user !== null) {
      throw new ProtocolError(ErrorCode.busy, 'another user is connected (one user at a time in this stage); try again later');
    }
    slot.user = socket;
    name = requested;
    clearTimeout(handshakeTimer);
    socket.write(welcomeFrame(name));
    console.log(`${name} joined from ${peer}`);
  };

  const onAudio = (payload: Buffer) => {
    if (name === null) throw new ProtocolError(ErrorCode.notJoined, 'send HELLO before AUDIO');
    if (payload.length !== FRAME_BYTES) {
      throw new ProtocolError(ErrorCode.badAudioSize, `AUDIO carries ${payload.length} bytes; it must be ${FRAME_BYTES} (960 samples)`);
    }
    // A client that does not read its echoes must not make us buffer without bound.
    if (socket.writableLength > MAX_QUEUED_ECHO_BYTES) {
      dropped++;
      const now = performance.now();
      droppingSince ??= now;
      // Dropping keeps memory bounded; a user who has not read for this long is gone for good.
      if (now - droppingSince > SLOW_CONSUMER_MS) {
        throw new ProtocolError(ErrorCode.slowConsumer, `nothing could be sent to you for ${SLOW_CONSUMER_MS / 1000} s: you stopped reading`);
      }
      return;
    }
    droppingSince = null;
    socket.write(audioFrame(payload));
    echoed++;
  };

  const onBye = () => {
    if (name === null) throw new ProtocolError(ErrorCode.notJoined, 'send HELLO before BYE');
    finished = true;
    leave('bye');
    socket.end();
  };

  const parser = new FrameParser({
    maxPayload: clientMessageLimit,
    onFrame: (type, payload) => {
      if (finished) return; // frames that came in the same chunk after BYE
      if (type === MessageType.hello) onHello(payload);
      else if (type === MessageType.audio) onAudio(payload);
      else onBye(); // the parser lets through only the types clientMessageLimit knows
    },
  });

  socket.on('data', (chunk: Buffer) => {
    if (finished) return;
    try {
      parser.push(chunk);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      // The parser, the JSON helpers and the handlers above raise only codes listed in ErrorCode.
      refuse(error.code as ErrorCode, error.message);
    }
  });
  // A FIN or a reset frees the slot at once; 'close' covers anything else.
  socket.on('end', () => leave('disconnected'));
  socket.on('error', (error: NodeJS.ErrnoException) => leave(`connection lost: ${error.code ?? error.message}`));
  socket.on('close', () => leave('closed'));
}

/** Past MAX_CONNECTIONS: ERROR server_full at once rather than silence, then close. */
function refuseConnection(socket: Socket): void {
  socket.on('error', () => {}); // a reset from a client we are turning away changes nothing
  socket.end(errorFrame(ErrorCode.serverFull, `${MAX_CONNECTIONS} connections are open, the most this server takes; try again later`));
  setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
}

export interface RunningServer {
  address: ListeningAddress;
  close(): Promise<void>;
}

export async function startServer(host: string, port: number): Promise<RunningServer> {
  const slot: Slot = { user: null };
  const connections = new Set<Socket>();
  const server = createServer((socket) => {
    if (connections.size >= MAX_CONNECTIONS) {
      refuseConnection(socket);
      return;
    }
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
    serveClient(socket, slot);
  });
  const address = await listenAndAnnounce(server, host, port);
  // Once listening, the only server errors are failed accepts (EMFILE: no file descriptor left):
  // that one connection is lost, everyone else carries on.
  server.on('error', (error) => console.log(`could not accept a connection: ${error.message}`));
  return {
    address,
    // Stops accepting; connections get a moment to finish (a BYE in flight), then are cut.
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const socket of connections) setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
      }),
  };
}
