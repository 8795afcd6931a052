// Stage 03 server: voice chat for many users at once. Every AUDIO frame a user sends waits in
// their jitter buffer; every 20 ms the mixer takes at most one frame per talker and sends each
// listener the sum of everyone ELSE's frames. Everyone is told who joins, leaves and speaks.
// Nothing one connection sends can disturb another: a bad frame closes only that connection.
import { createServer, type Socket } from 'node:net';
import { FRAME_BYTES } from '#shared/audio/format.ts';
import { FrameClock } from '#shared/audio/frame-clock.ts';
import { FRAME_HEADER_BYTES, writeFrameHeader } from '#shared/framing/frame-encoder.ts';
import { FrameParser } from '#shared/framing/frame-parser.ts';
import { type JitterDrop, JitterBuffer } from '#shared/jitter-buffer.ts';
import { hostPort } from '#shared/host-port.ts';
import { listenAndAnnounce, type ListeningAddress } from '#shared/listen.ts';
import { RoomMixer } from '#shared/mixer.ts';
import { ProtocolError } from '#shared/protocol-error.ts';
import { nameProblem } from '#shared/user-name.ts';
import {
  clientMessageLimit,
  ErrorCode,
  errorFrame,
  HANDSHAKE_TIMEOUT_MS,
  JITTER_BUFFER_FRAMES,
  JITTER_TRIM_AFTER_TICKS,
  joinedFrame,
  leftFrame,
  type LeaveReason,
  MAX_CONNECTIONS,
  MAX_QUEUED_AUDIO_BYTES,
  MAX_QUEUED_BYTES,
  MAX_USERS,
  MessageType,
  parseHello,
  SLOW_CONSUMER_MS,
  SPEAKING_HOLD_TICKS,
  speakingFrame,
  TICK_MS,
  usersFrame,
  welcomeFrame,
} from './protocol.ts';

/**
 * Hooks for watching the server from outside: the benchmark (bench/) counts ticks and drops with
 * them. The server calls each at the moment its name says and ignores what it does; without an
 * observer it calls NO_OBSERVER, which does nothing. Nothing here is part of the protocol.
 */
export interface ServerObserver {
  /** A mixer tick starts, `latenessMs` after it was due. */
  tickStarted(latenessMs: number): void;
  /** That tick's mixing and sending are done. */
  tickEnded(): void;
  /** The clock skipped `count` ticks: the event loop was blocked for longer than a tick. */
  ticksSkipped(count: number): void;
  /** A talker's AUDIO frame arrived; it waits in their jitter buffer. */
  frameReceived(): void;
  /** A talker's jitter buffer dropped a waiting frame (it was full, or a standing backlog was cut). */
  frameDropped(reason: JitterDrop): void;
  /** A mix was not sent: the listener's send buffer was full (a slow reader). */
  mixSkipped(): void;
}

export const NO_OBSERVER: ServerObserver = {
  tickStarted() {},
  tickEnded() {},
  ticksSkipped() {},
  frameReceived() {},
  frameDropped() {},
  mixSkipped() {},
};

/** One joined user, as the room sees them. */
interface User {
  name: string;
  socket: Socket;
  voice: JitterBuffer;
  /** The frame taken from `voice` for the tick being mixed, or null. */
  frameThisTick: Buffer | null;
  /** Index of the last tick that mixed one of this user's frames. */
  lastMixedTick: number;
  /** As last announced in SPEAKING. */
  speaking: boolean;
  framesMixed: number;
  mixesSent: number;
  /** Mixes not sent because this user read too slowly. */
  mixesSkipped: number;
  /** When the mixes for this user started being skipped (performance.now()), or null while they are sent. */
  skippingSince: number | null;
  /** Sends ERROR and closes this user's connection (the others get LEFT "error"). */
  refuse(code: ErrorCode, message: string): void;
}

/** Everyone connected, in join order, and the mixer clock that serves them. */
class Room {
  /** A Map iterates in insertion order: join order, as USERS and SPEAKING list names. */
  private readonly users = new Map<string, User>();
  private readonly mixer = new RoomMixer();
  // The clock runs only while someone is here: an empty server does no work every 20 ms.
  private readonly clock = new FrameClock(
    (tick, lateness) => {
      this.observer.tickStarted(lateness);
      this.mixTick(tick);
      this.observer.tickEnded();
    },
    {
      periodMs: TICK_MS,
      onSkip: (skipped) => {
        this.observer.ticksSkipped(skipped);
        console.log(`mixer: the event loop was blocked; ${skipped} ticks skipped`);
      },
    },
  );
  /** Set when a speaker leaves: the next tick announces the smaller set. */
  private speakersChanged = false;
  /** This tick's mix for the listeners who did not talk: the same for all of them, so built once (on first need). */
  private everyoneFrame: Buffer | null = null;

  constructor(private readonly observer: ServerObserver) {}

  get size(): number {
    return this.users.size;
  }

  has(name: string): boolean {
    return this.users.has(name);
  }

  /** Adds a user: WELCOME, USERS and (if anyone speaks) SPEAKING to them, JOINED to everyone else. */
  join(user: User): void {
    const joined = joinedFrame(user.name); // built once, the same bytes for everyone
    for (const other of this.users.values()) this.sendControl(other, joined);
    this.users.set(user.name, user);
    user.socket.write(welcomeFrame(user.name));
    user.socket.write(usersFrame([...this.users.keys()]));
    const speakers = this.speakerNames();
    if (speakers.length > 0) user.socket.write(speakingFrame(speakers));
    if (!this.clock.isRunning) this.clock.start();
  }

  /** Removes a user and tells everyone else at once. Returns false if they were not here. */
  leave(user: User, reason: LeaveReason): boolean {
    if (this.users.get(user.name) !== user) return false;
    this.users.delete(user.name);
    if (user.speaking) this.speakersChanged = true;
    const left = leftFrame(user.name, reason); // built once, the same bytes for everyone
    for (const other of this.users.values()) this.sendControl(other, left);
    if (this.users.size === 0) this.stop();
    return true;
  }

  stop(): void {
    this.clock.stop();
    this.speakersChanged = false;
  }

  /** Runs a tick that fell due while we were busy reading, instead of letting it wait for the timer. */
  tickIfDue(): void {
    this.clock.runIfDue();
  }

  /**
   * Control messages must arrive, so they are never skipped; a listener whose send buffer
   * still passes MAX_QUEUED_BYTES has stopped reading, and is disconnected.
   */
  private sendControl(user: User, frame: Buffer): void {
    if (user.socket.writableLength > MAX_QUEUED_BYTES) {
      user.refuse(ErrorCode.slowConsumer, `more than ${MAX_QUEUED_BYTES} bytes are waiting to be sent to you: you stopped reading`);
      return;
    }
    user.socket.write(frame);
  }

  /** One 20 ms tick: at most one frame per talker, summed once, then one mix per listener. */
  private mixTick(tick: number): void {
    this.mixer.begin();
    this.everyoneFrame = null;
    let talkers = 0;
    for (const user of this.users.values()) {
      user.frameThisTick = user.voice.take();
      if (user.frameThisTick === null) continue;
      this.mixer.add(user.frameThisTick);
      user.lastMixedTick = tick;
      user.framesMixed++;
      talkers++;
    }
    if (talkers > 0) {
      for (const listener of this.users.values()) this.sendMix(listener, talkers);
    }
    this.announceSpeakers(tick);
  }

  /** Sends `listener` the sum of everyone else's frames: clip(sum - own), never their own voice. */
  private sendMix(listener: User, talkers: number): void {
    const own = listener.frameThisTick;
    listener.frameThisTick = null; // the jitter buffer may reuse that memory after this tick
    if (talkers === (own === null ? 0 : 1)) return; // only they talked: there is nothing to hear
    // Never wait for a slow reader: late audio is useless, so skip it and keep the tick on time.
    if (!listener.socket.writable || listener.socket.writableLength > MAX_QUEUED_AUDIO_BYTES) {
      listener.mixesSkipped++;
      this.observer.mixSkipped();
      const now = performance.now();
      listener.skippingSince ??= now;
      // Skipping keeps memory bounded; a listener who has not read for this long is gone for good.
      if (now - listener.skippingSince > SLOW_CONSUMER_MS) {
        listener.refuse(ErrorCode.slowConsumer, `nothing could be sent to you for ${SLOW_CONSUMER_MS / 1000} s: you stopped reading`);
      }
      return;
    }
    listener.skippingSince = null;
    // A talker hears everyone but themselves: their own mix. Every silent listener hears the
    // same clip(sum): one frame, written to each of them.
    const frame = own === null ? (this.everyoneFrame ??= this.mixFrame(null)) : this.mixFrame(own);
    listener.socket.write(frame);
    listener.mixesSent++;
  }

  /** A new AUDIO frame holding the mix for a listener whose own frame this tick is `own` (null: they did not talk). */
  private mixFrame(own: Buffer | null): Buffer {
    // A new buffer every time: socket.write keeps it until the kernel takes it.
    const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + FRAME_BYTES);
    writeFrameHeader(frame, 0, MessageType.audio, FRAME_BYTES);
    this.mixer.mixFor(own, frame.subarray(FRAME_HEADER_BYTES));
    return frame;
  }

  /** A user speaks while one of their frames was mixed in the last SPEAKING_HOLD_TICKS ticks. */
  private announceSpeakers(tick: number): void {
    let changed = this.speakersChanged;
    for (const user of this.users.values()) {
      const speaking = tick - user.lastMixedTick < SPEAKING_HOLD_TICKS;
      if (speaking !== user.speaking) {
        user.speaking = speaking;
        changed = true;
      }
    }
    if (!changed) return;
    this.speakersChanged = false;
    const frame = speakingFrame(this.speakerNames());
    for (const user of this.users.values()) this.sendControl(user, frame);
  }

  private speakerNames(): string[] {
    const names: string[] = [];
    for (const user of this.users.values()) if (user.speaking) names.push(user.name);
    return names;
  }
}

/** How long a connection we refused may linger before we cut it off. */
const CLOSE_GRACE_MS = 2_000;

/** Talks to one connection: handshake, then voice into the room, until it leaves or breaks the protocol. */
function serveClient(socket: Socket, room: Room, observer: ServerObserver): void {
  const peer = hostPort(socket.remoteAddress, socket.remotePort); // [::1]:50000 for IPv6
  let user: User | null = null; // set once this connection has joined the room
  let finished = false; // after BYE or an error, nothing more is read

  // Voice is a stream of small frames that should leave at once: do not let Nagle's
  // algorithm hold a frame back waiting to fill a TCP segment.
  socket.setNoDelay(true);

  /** Takes this user out of the room (the others are told at once). Safe to call more than once. */
  const leave = (reason: LeaveReason, how: string) => {
    clearTimeout(handshakeTimer);
    if (user !== null && room.leave(user, reason)) {
      const drops = user.voice.overflows + user.voice.trims + user.mixesSkipped > 0
        ? `; dropped ${user.voice.overflows + user.voice.trims} incoming frames (jitter buffer full or backlog) and ${user.mixesSkipped} mixes (slow reader)`
        : '';
      console.log(`${user.name} left (${how}): ${user.framesMixed} frames mixed, ${user.mixesSent} mixes sent${drops}`);
    }
  };

  /** Sends ERROR and closes this connection only. */
  const refuse = (code: ErrorCode, message: string) => {
    if (finished) return;
    finished = true;
    leave('error', `error ${code}`);
    console.log(`${peer}: ${code}: ${message}`);
    socket.end(errorFrame(code, message)); // send the error, then close our side
    setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
  };

  const handshakeTimer = setTimeout(
    () => refuse(ErrorCode.handshakeTimeout, `no HELLO within ${HANDSHAKE_TIMEOUT_MS / 1000} seconds`),
    HANDSHAKE_TIMEOUT_MS,
  );

  const onHello = (payload: Buffer) => {
    if (user !== null) throw new ProtocolError(ErrorCode.alreadyJoined, 'HELLO was already sent on this connection');
    const requested = parseHello(payload);
    const problem = nameProblem(requested);
    if (problem) throw new ProtocolError(ErrorCode.badName, problem);
    if (room.size >= MAX_USERS) {
      throw new ProtocolError(ErrorCode.serverFull, `${MAX_USERS} users are connected, the most this server takes; try again later`);
    }
    if (room.has(requested)) throw new ProtocolError(ErrorCode.nameTaken, `someone called "${requested}" is already here; pick another name`);
    clearTimeout(handshakeTimer);
    user = {
      name: requested,
      socket,
      voice: new JitterBuffer({ capacity: JITTER_BUFFER_FRAMES, trimAfterTicks: JITTER_TRIM_AFTER_TICKS, onDrop: (reason) => observer.frameDropped(reason) }),
      frameThisTick: null,
      lastMixedTick: -Infinity,
      speaking: false,
      framesMixed: 0,
      mixesSent: 0,
      mixesSkipped: 0,
      skippingSince: null,
      refuse,
    };
    room.join(user);
    console.log(`${user.name} joined from ${peer} (${room.size} connected)`);
  };

  const onAudio = (payload: Buffer) => {
    if (user === null) throw new ProtocolError(ErrorCode.notJoined, 'send HELLO before AUDIO');
    if (payload.length !== FRAME_BYTES) {
      throw new ProtocolError(ErrorCode.badAudioSize, `AUDIO carries ${payload.length} bytes; it must be ${FRAME_BYTES} (960 samples)`);
    }
    // The mixer takes it on one of the next ticks; a full buffer drops its oldest frame.
    observer.frameReceived();
    user.voice.push(payload);
  };

  const onBye = () => {
    if (user === null) throw new ProtocolError(ErrorCode.notJoined, 'send HELLO before BYE');
    finished = true;
    leave('bye', 'bye');
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
    // With hundreds of sockets readable at once, the event loop reads them all before it looks
    // at its timers: the tick would wait behind the reads. Let it cut in.
    room.tickIfDue();
    if (finished) return;
    try {
      parser.push(chunk);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      // The parser, the JSON helpers and the handlers above raise only codes listed in ErrorCode.
      refuse(error.code as ErrorCode, error.message);
    }
  });
  // Leaving without BYE is "lost": a FIN or a reset is announced at once; 'close' covers anything else.
  socket.on('end', () => leave('lost', 'disconnected without BYE'));
  socket.on('error', (error: NodeJS.ErrnoException) => leave('lost', `connection lost: ${error.code ?? error.message}`));
  socket.on('close', () => leave('lost', 'closed'));
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

/** Starts the server; `observer` watches it from outside (see ServerObserver). */
export async function startServer(host: string, port: number, observer: ServerObserver = NO_OBSERVER): Promise<RunningServer> {
  const room = new Room(observer);
  const connections = new Set<Socket>();
  const server = createServer((socket) => {
    if (connections.size >= MAX_CONNECTIONS) {
      refuseConnection(socket);
      return;
    }
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
    serveClient(socket, room, observer);
  });
  const address = await listenAndAnnounce(server, host, port);
  // Once listening, the only server errors are failed accepts (EMFILE: no file descriptor left):
  // that one connection is lost, everyone else carries on.
  server.on('error', (error) => console.log(`could not accept a connection: ${error.message}`));
  return {
    address,
    // Stops accepting and mixing; connections get a moment to finish (a BYE in flight), then are cut.
    close: () =>
      new Promise((resolve) => {
        room.stop();
        server.close(() => resolve());
        for (const socket of connections) setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
      }),
  };
}
