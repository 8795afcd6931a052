// Stage 04 server: voice chat in rooms. Every user is in exactly one room, named by an id the
// client chooses, and hears and sees only that room: every 20 ms ONE clock ticks every room, and
// each room sends each of its listeners the sum of its other members' frames. Users move between
// rooms without reconnecting; a room exists while someone is in it.
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
import { TokenBucket } from '#shared/token-bucket.ts';
import { nameProblem } from '#shared/user-name.ts';
import {
  clientMessageLimit,
  ErrorCode,
  errorFrame,
  HANDSHAKE_TIMEOUT_MS,
  JITTER_BUFFER_FRAMES,
  JITTER_TRIM_AFTER_TICKS,
  joinedFrame,
  joinRefusedFrame,
  leftFrame,
  type LeaveReason,
  MAX_CONNECTIONS,
  MAX_MOVES_REFUSED,
  MAX_QUEUED_AUDIO_BYTES,
  MAX_QUEUED_BYTES,
  MAX_USERS,
  MessageType,
  MOVE_BURST,
  MOVE_REFILL_MS,
  parseHello,
  parseJoin,
  roomProblem,
  roomsFrame,
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
  /** The id of the room this user is in. */
  room: string;
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

/**
 * Control messages must arrive, so they are never skipped; a listener whose send buffer
 * still passes MAX_QUEUED_BYTES has stopped reading, and is disconnected.
 */
function sendControl(user: User, frame: Buffer): void {
  if (user.socket.writableLength > MAX_QUEUED_BYTES) {
    user.refuse(ErrorCode.slowConsumer, `more than ${MAX_QUEUED_BYTES} bytes are waiting to be sent to you: you stopped reading`);
    return;
  }
  user.socket.write(frame);
}

/** One room's members, in join order, and the mixer that serves them. */
class Room {
  /** A Map iterates in insertion order: join order, as USERS and SPEAKING list names. */
  private readonly users = new Map<string, User>();
  // Each room sums its own talkers: nobody hears, or pays for, another room's voices.
  private readonly mixer = new RoomMixer();
  /** Set when a speaker leaves: the next tick announces the smaller set. */
  private speakersChanged = false;
  /** This tick's mix for the listeners who did not talk: the same for all of them, so built once (on first need). */
  private everyoneFrame: Buffer | null = null;

  constructor(
    readonly id: string,
    private readonly observer: ServerObserver,
  ) {}

  get size(): number {
    return this.users.size;
  }

  has(name: string): boolean {
    return this.users.has(name);
  }

  /** Adds a user: USERS and (if anyone speaks) SPEAKING to them, JOINED to the other members. */
  join(user: User): void {
    // Added first, so the room is not empty (and deleted) if a member is refused as it is told.
    this.users.set(user.name, user);
    const joined = joinedFrame(user.name); // built once, the same bytes for everyone
    for (const other of this.users.values()) if (other !== user) sendControl(other, joined);
    this.sendUsers(user);
    const speakers = this.speakerNames();
    if (speakers.length > 0) sendControl(user, speakingFrame(speakers));
  }

  /** Sends `user` this room's members, them included. */
  sendUsers(user: User): void {
    sendControl(user, usersFrame(this.id, [...this.users.keys()]));
  }

  /** Removes a user and tells the other members at once. Returns false if they were not here. */
  leave(user: User, reason: LeaveReason): boolean {
    if (this.users.get(user.name) !== user) return false;
    this.users.delete(user.name);
    if (user.speaking) this.speakersChanged = true;
    const left = leftFrame(user.name, reason); // built once, the same bytes for everyone
    for (const other of this.users.values()) sendControl(other, left);
    return true;
  }

  /** One 20 ms tick: at most one frame per talker, summed once, then one mix per listener. */
  mixTick(tick: number): void {
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
    for (const user of this.users.values()) sendControl(user, frame);
  }

  private speakerNames(): string[] {
    const names: string[] = [];
    for (const user of this.users.values()) if (user.speaking) names.push(user.name);
    return names;
  }
}

/** Every room, by id, and the ONE mixer clock that ticks them all. A room exists while someone is in it. */
class Rooms {
  private readonly rooms = new Map<string, Room>();
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
  /** Users in all rooms (MAX_USERS is for the whole server). */
  private userCount = 0;
  /** ROOMS as last built, until someone joins, leaves or moves: a flood of LIST_ROOMS costs one write each, not a sort. */
  private roomsFrame: Buffer | null = null;

  constructor(private readonly observer: ServerObserver) {}

  /** Users in all rooms. */
  get size(): number {
    return this.userCount;
  }

  get roomCount(): number {
    return this.rooms.size;
  }

  /** True if room `id` exists and has a member called `name` (names are unique within a room). */
  has(id: string, name: string): boolean {
    return this.rooms.get(id)?.has(name) ?? false;
  }

  /** Adds a new user to their room (`user.room`), creating it if needed. */
  join(user: User): void {
    this.userCount++;
    this.enter(user);
  }

  /** Removes a user from their room (the other members are told at once). Returns false if they were not here. */
  leave(user: User, reason: LeaveReason): boolean {
    const room = this.rooms.get(user.room);
    if (room === undefined || !room.leave(user, reason)) return false;
    this.userCount--;
    this.deleteIfEmpty(room);
    return true;
  }

  /**
   * Moves a user to room `id`: the old room gets LEFT "moved", the new one JOINED, the mover the
   * new room's USERS. The mover arrives silent: frames waiting from the old room are dropped.
   * Moving to the room you are in just sends its USERS again.
   */
  move(user: User, id: string): void {
    const from = this.rooms.get(user.room)!;
    if (id === user.room) {
      from.sendUsers(user);
      return;
    }
    from.leave(user, 'moved');
    this.deleteIfEmpty(from);
    user.room = id;
    user.voice.clear();
    user.lastMixedTick = -Infinity;
    user.speaking = false; // SPEAKING is per room: nobody in the new room has heard them yet
    this.enter(user);
  }

  /** ROOMS: every room's id and member count, sorted by id; never the members' names. */
  list(): Buffer {
    // Ids are ASCII: comparing UTF-16 code units is plain ASCII order, the same on every machine.
    this.roomsFrame ??= roomsFrame(
      [...this.rooms.values()].map((room) => ({ room: room.id, users: room.size })).sort((a, b) => (a.room < b.room ? -1 : 1)),
    );
    return this.roomsFrame;
  }

  stop(): void {
    this.clock.stop();
  }

  /** Runs a tick that fell due while we were busy reading, instead of letting it wait for the timer. */
  tickIfDue(): void {
    this.clock.runIfDue();
  }

  private enter(user: User): void {
    let room = this.rooms.get(user.room);
    if (room === undefined) {
      room = new Room(user.room, this.observer);
      this.rooms.set(room.id, room);
    }
    this.roomsFrame = null;
    if (!this.clock.isRunning) this.clock.start();
    room.join(user);
  }

  /** An empty room disappears at once: its id is free, and the clock does not visit it. */
  private deleteIfEmpty(room: Room): void {
    this.roomsFrame = null;
    if (room.size > 0) return;
    this.rooms.delete(room.id);
    if (this.rooms.size === 0) this.clock.stop();
  }

  /** One 20 ms tick for every room; each sums only its own talkers, so a tick costs O(users), not O(users²). */
  private mixTick(tick: number): void {
    for (const room of this.rooms.values()) room.mixTick(tick);
  }
}

/** How long a connection we refused may linger before we cut it off. */
const CLOSE_GRACE_MS = 2_000;

/** Talks to one connection: handshake, then voice into its room and moves between rooms, until it leaves or breaks the protocol. */
function serveClient(socket: Socket, rooms: Rooms, observer: ServerObserver): void {
  const peer = hostPort(socket.remoteAddress, socket.remotePort); // [::1]:50000 for IPv6
  let user: User | null = null; // set once this connection has joined a room
  let finished = false; // after BYE, an error or a lost connection, nothing more is handled
  // Moves notify two rooms: a user may make MOVE_BURST of them at once, then one per MOVE_REFILL_MS.
  const moves = new TokenBucket(MOVE_REFILL_MS, MOVE_BURST);
  let movesRefusedInARow = 0;

  // Voice is a stream of small frames that should leave at once: do not let Nagle's
  // algorithm hold a frame back waiting to fill a TCP segment.
  socket.setNoDelay(true);

  /** Takes this user out of their room (its other members are told at once). Safe to call more than once. */
  const leave = (reason: LeaveReason, how: string) => {
    finished = true; // frames of this connection still in a chunk being parsed are not handled
    clearTimeout(handshakeTimer);
    if (user !== null && rooms.leave(user, reason)) {
      const drops = user.voice.overflows + user.voice.trims + user.mixesSkipped > 0
        ? `; dropped ${user.voice.overflows + user.voice.trims} incoming frames (jitter buffer full or backlog) and ${user.mixesSkipped} mixes (slow reader)`
        : '';
      console.log(`${user.name} left room ${user.room} (${how}): ${user.framesMixed} frames mixed, ${user.mixesSent} mixes sent${drops}`);
    }
  };

  /** Sends ERROR and closes this connection only. */
  const refuse = (code: ErrorCode, message: string) => {
    if (finished) return;
    leave('error', `error ${code}`);
    console.log(`${peer}: ${code}: ${message}`);
    socket.end(errorFrame(code, message)); // send the error, then close our side
    // Read no more: a flooder's next megabytes would only be read to be thrown away.
    socket.pause();
    setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
  };

  const handshakeTimer = setTimeout(
    () => refuse(ErrorCode.handshakeTimeout, `no HELLO within ${HANDSHAKE_TIMEOUT_MS / 1000} seconds`),
    HANDSHAKE_TIMEOUT_MS,
  );

  const onHello = (payload: Buffer) => {
    if (user !== null) throw new ProtocolError(ErrorCode.alreadyJoined, 'HELLO was already sent on this connection');
    const requested = parseHello(payload);
    const problem = nameProblem(requested.name);
    if (problem) throw new ProtocolError(ErrorCode.badName, problem);
    const badRoom = roomProblem(requested.room);
    if (badRoom) throw new ProtocolError(ErrorCode.badRoom, badRoom);
    if (rooms.size >= MAX_USERS) {
      throw new ProtocolError(ErrorCode.serverFull, `${MAX_USERS} users are connected, the most this server takes; try again later`);
    }
    if (rooms.has(requested.room, requested.name)) {
      throw new ProtocolError(ErrorCode.nameTaken, `someone called "${requested.name}" is already in room "${requested.room}"; pick another name`);
    }
    clearTimeout(handshakeTimer);
    user = {
      name: requested.name,
      room: requested.room,
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
    socket.write(welcomeFrame(user.name, user.room));
    rooms.join(user);
    console.log(`${user.name} joined room ${user.room} from ${peer} (${rooms.size} connected, rooms: ${rooms.roomCount})`);
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

  // A refused move is not a protocol error: the user stays where they were, connected.
  const onJoin = (payload: Buffer) => {
    if (user === null) throw new ProtocolError(ErrorCode.notJoined, 'send HELLO before JOIN');
    const target = parseJoin(payload);
    const problem = roomProblem(target);
    if (problem) {
      sendControl(user, joinRefusedFrame(target, ErrorCode.badRoom, problem));
      return;
    }
    if (target !== user.room && rooms.has(target, user.name)) {
      sendControl(user, joinRefusedFrame(target, ErrorCode.nameTaken, `someone called "${user.name}" is already in room "${target}"`));
      return;
    }
    if (target !== user.room) {
      // A move tells everyone in two rooms: it costs a token. A JOIN of your own room tells nobody.
      if (!moves.tryTake()) {
        if (++movesRefusedInARow >= MAX_MOVES_REFUSED) {
          throw new ProtocolError(ErrorCode.rateLimited, `${MAX_MOVES_REFUSED} moves in a row were refused for moving too often; you kept sending JOIN regardless`);
        }
        const wait = Math.ceil(moves.msUntilNextToken());
        sendControl(user, joinRefusedFrame(target, ErrorCode.rateLimited, `too many moves: at most ${MOVE_BURST} at once, then one every ${MOVE_REFILL_MS / 1000} s; try again in ${wait} ms`));
        return;
      }
      movesRefusedInARow = 0;
    }
    const from = user.room;
    rooms.move(user, target);
    if (from !== target) console.log(`${user.name} moved from room ${from} to room ${target} (rooms: ${rooms.roomCount})`);
  };

  const onListRooms = () => {
    if (user === null) throw new ProtocolError(ErrorCode.notJoined, 'send HELLO before LIST_ROOMS');
    sendControl(user, rooms.list());
  };

  const onBye = () => {
    if (user === null) throw new ProtocolError(ErrorCode.notJoined, 'send HELLO before BYE');
    leave('bye', 'bye');
    socket.end();
  };

  const parser = new FrameParser({
    maxPayload: clientMessageLimit,
    onFrame: (type, payload) => {
      if (finished) return; // frames that came in the same chunk after BYE or an error: not handled
      if (type === MessageType.hello) onHello(payload);
      else if (type === MessageType.audio) onAudio(payload);
      else if (type === MessageType.join) onJoin(payload);
      else if (type === MessageType.listRooms) onListRooms();
      else onBye(); // the parser lets through only the types clientMessageLimit knows
    },
  });

  socket.on('data', (chunk: Buffer) => {
    // With hundreds of sockets readable at once, the event loop reads them all before it looks
    // at its timers: the tick would wait behind the reads. Let it cut in.
    rooms.tickIfDue();
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
  const rooms = new Rooms(observer);
  const connections = new Set<Socket>();
  const server = createServer((socket) => {
    if (connections.size >= MAX_CONNECTIONS) {
      refuseConnection(socket);
      return;
    }
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
    serveClient(socket, rooms, observer);
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
        rooms.stop();
        server.close(() => resolve());
        for (const socket of connections) setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
      }),
  };
}
