// Stage 08 server: stage 07's server (Opus voice in rooms over UDP or TCP, text chat and file
// transfers in rooms) with a directory and calls between two users anywhere on the server. Names are
// unique on the server (directory.ts): LOOKUP answers one exact name. Calls (calls.ts) are rung,
// accepted, declined and hung up over each user's TCP connection; the server tells each user its
// public UDP address (ADDRESS, when stage 06 binds or rebinds it), gives both parties a per-call
// token and each the other's address, and relays a party's voice to the peer only when their direct
// path does not open. Text (chat.ts), files (file-relay.ts), voice over UDP (udp-voice.ts) and every
// rule of stages 04-07 are unchanged. Nothing one connection or datagram sends can disturb another
// user: a bad frame closes only that connection.
import { createServer, type Socket } from 'node:net';
import { FRAME_MS } from '#shared/audio/format.ts';
import { FrameParser } from '#shared/framing/frame-parser.ts';
import { hostPort } from '#shared/host-port.ts';
import { listen, readyLine, type ListeningAddress } from '#shared/listen.ts';
import { ProtocolError } from '#shared/protocol-error.ts';
import { TokenBucket } from '#shared/token-bucket.ts';
import { UserError } from '#shared/user-error.ts';
import { nameProblem } from '#shared/user-name.ts';
import { forwardedVoiceDown } from './datagrams.ts';
import {
  clientMessageLimit,
  clientMessageMinimum,
  tooShortCode,
  ErrorCode,
  errorFrame,
  forwardedVoiceFrame,
  HANDSHAKE_TIMEOUT_MS,
  joinedFrame,
  joinRefusedFrame,
  leftFrame,
  type LeaveReason,
  MAX_CONNECTIONS,
  MAX_MOVES_REFUSED,
  MAX_QUEUED_BYTES,
  MAX_QUEUED_VOICE_BYTES,
  MAX_SESSION_ID,
  MAX_USERS,
  MessageType,
  MIN_SESSION_ID,
  MOVE_BURST,
  MOVE_REFILL_MS,
  parseHello,
  parseJoin,
  parsePath,
  roomProblem,
  roomsFrame,
  SLOW_CONSUMER_MS,
  SPEAKING_HOLD_MS,
  speakingFrame,
  type UserRef,
  usersFrame,
  VOICE_BURST,
  VOICE_FLOOD_DROPS,
  VOICE_FLOOD_WINDOW_MS,
  welcomeFrame,
} from './protocol.ts';
import { publicAddress, type DatagramObserver, UdpSession, UdpVoice } from './udp-voice.ts';
import { TextSender } from './chat.ts';
import { parseAck, parseCancel, parseChunk } from './chat-messages.ts';
import { FileRelay, OfferGate, type TransferPeer } from './file-relay.ts';
import { ChunkScheduler } from './write-scheduler.ts';
import {
  addressFrame,
  DEFAULT_RING_TIMEOUT_S,
  foundFrame,
  INVITE_BURST,
  INVITE_REFILL_MS,
  LOOKUP_BURST,
  LOOKUP_REFILL_MS,
  MAX_INVITES_REFUSED,
  MAX_LOOKUPS_REFUSED,
  parseAccept,
  parseClientInvite,
  parseDecline,
  parseHangup,
  parseLookup,
  presenceFrame,
} from './call-messages.ts';
import { CallTable, type CallParty } from './calls.ts';
import { Directory } from './directory.ts';
import { RequestLimit } from './request-limit.ts';
import { refusedFrame } from './chat-messages.ts';

/** Why a VOICE (or one listener's copy of it) was not sent. */
export type DropReason = 'rate_limited' | 'slow_listener';

/**
 * Hooks for watching the server from outside: the benchmark (bench/) counts packets with them.
 * The server calls each at the moment its name says and ignores what it does; without an
 * observer it calls NO_OBSERVER, which does nothing. Nothing here is part of the protocol.
 */
export interface ServerObserver extends DatagramObserver {
  /** A joined user's VOICE arrived, over TCP or as an accepted VOICE_UP (before the rate limit). */
  packetReceived(): void;
  /** A VOICE was sent to `copies` listeners, by either path (0 when the sender is alone in the room). */
  packetForwarded(copies: number): void;
  /** A VOICE was dropped by the sender's rate limit, or one listener's copy was skipped (slow reader). */
  packetDropped(reason: DropReason): void;
}

export const NO_OBSERVER: ServerObserver = {
  packetReceived() {},
  packetForwarded() {},
  packetDropped() {},
  datagramAccepted() {},
  datagramDropped() {},
};

/** One joined user, as the room sees them (and as the file relay, the chat and the call table see them). */
interface User extends UserRef, TransferPeer, CallParty {
  /** The id of the room this user is in. */
  room: string;
  socket: Socket;
  /** Their token, bound address, replay window and receive path; freed when they leave. */
  udp: UdpSession;
  /** As last announced in SPEAKING. */
  speaking: boolean;
  /** When one of this user's VOICE was last forwarded (performance.now()). */
  lastVoiceAt: number;
  packetsForwarded: number;
  /** VOICE copies not sent to this user because they read too slowly. */
  voiceSkipped: number;
  /** When VOICE for this user started being skipped (performance.now()), or null while it is sent. */
  skippingSince: number | null;
  /** Sends ERROR and closes this user's connection (the others get LEFT "error"). */
  refuse(code: ErrorCode, message: string): void;
}

/**
 * The cheapest honest way to write: each socket written to in this event-loop turn is corked on
 * its first write and uncorked once the turn's input is handled (setImmediate runs right after
 * the I/O phase). What several speakers (and a SPEAKING) sent one listener in the same turn then
 * leaves in ONE writev system call instead of one call each; nothing waits for a later turn, so
 * it adds no latency. Measured by bench/forwarding-load.ts (see README.md, "Why"): about half the
 * server's CPU per forwarded copy, a quarter of the write calls.
 */
const corkedThisTurn = new Set<Socket>();

function writeThisTurn(socket: Socket, frame: Buffer, flushed?: () => void): void {
  if (!corkedThisTurn.has(socket)) {
    if (corkedThisTurn.size === 0) setImmediate(uncorkAll);
    corkedThisTurn.add(socket);
    socket.cork();
  }
  socket.write(frame, flushed);
}

function uncorkAll(): void {
  for (const socket of corkedThisTurn) socket.uncork();
  corkedThisTurn.clear();
}

/**
 * Control messages must arrive, so they are never skipped; a listener whose send buffer
 * still passes MAX_QUEUED_BYTES has stopped reading, and is disconnected.
 */
function sendControl(user: User, frame: Buffer): void {
  // The one file chunk that may wait in the queue is not a sign of a reader that stopped.
  if (user.socket.writableLength - user.chunks.queuedChunkBytes > MAX_QUEUED_BYTES) {
    user.refuse(ErrorCode.slowConsumer, `more than ${MAX_QUEUED_BYTES} bytes are waiting to be sent to you: you stopped reading`);
    return;
  }
  writeThisTurn(user.socket, frame);
}

/**
 * Sends one forwarded VOICE to one listener. Late voice is useless: a listener with more than
 * MAX_QUEUED_VOICE_BYTES still waiting is skipped (their client conceals the gap); one for whom
 * every VOICE has been skipped for SLOW_CONSUMER_MS has stopped reading and is disconnected.
 * Returns whether it was written.
 */
function sendVoice(listener: User, frame: Buffer, observer: ServerObserver): boolean {
  // Counted besides the one file chunk that may be queued: otherwise every transfer would skip the receivers' voice.
  if (!listener.socket.writable || listener.socket.writableLength - listener.chunks.queuedChunkBytes > MAX_QUEUED_VOICE_BYTES) {
    listener.voiceSkipped++;
    observer.packetDropped('slow_listener');
    const now = performance.now();
    listener.skippingSince ??= now;
    if (now - listener.skippingSince > SLOW_CONSUMER_MS) {
      listener.refuse(ErrorCode.slowConsumer, `no voice could be sent to you for ${SLOW_CONSUMER_MS / 1000} s: you stopped reading`);
    }
    return false;
  }
  listener.skippingSince = null;
  writeThisTurn(listener.socket, frame);
  return true;
}

/** One room's members, in join order. */
class Room {
  /** A Map iterates in insertion order: join order, as USERS and SPEAKING list users. */
  private readonly users = new Map<string, User>();

  constructor(
    readonly id: string,
    private readonly observer: ServerObserver,
    private readonly udp: UdpVoice,
    /** Whether room voice may go to this member now (not while they are in a call, nor in its guard: calls.ts). */
    private readonly receivesRoomVoice: (listener: User) => boolean,
  ) {}

  get size(): number {
    return this.users.size;
  }

  has(name: string): boolean {
    return this.users.has(name);
  }

  /** The members now, in join order (text and offers go to them). */
  members(): IterableIterator<User> {
    return this.users.values();
  }

  /** Adds a user: USERS and (if anyone speaks) SPEAKING to them, JOINED to the other members. */
  join(user: User): void {
    // Added first, so the room is not empty (and deleted) if a member is refused as it is told.
    this.users.set(user.name, user);
    const joined = joinedFrame(user); // built once, the same bytes for everyone
    for (const other of this.users.values()) if (other !== user) sendControl(other, joined);
    // A party who moves in during a call: the room learns it, as USERS says it to the mover (never with whom).
    if (user.inCall) this.tellOthers(user, presenceFrame({ id: user.id, name: user.name, inCall: true }));
    this.sendUsers(user);
    const speakers = this.speakers();
    if (speakers.length > 0) sendControl(user, speakingFrame(speakers));
  }

  /** `user` is silent from now on (their voice goes elsewhere): SPEAKING without them, if they were in it. */
  stopSpeaking(user: User): void {
    if (!user.speaking) return;
    user.speaking = false;
    this.announceSpeakers();
  }

  /** Sends `frame` to every member but `user` (PRESENCE about them). */
  tellOthers(user: User, frame: Buffer): void {
    for (const other of this.users.values()) if (other !== user) sendControl(other, frame);
  }

  /** Sends `user` this room's members, them included (each with in_call). */
  sendUsers(user: User): void {
    sendControl(user, usersFrame(this.id, [...this.users.values()]));
  }

  /** Removes a user and tells the other members at once (and SPEAKING if they were speaking). Returns false if they were not here. */
  leave(user: User, reason: LeaveReason): boolean {
    if (this.users.get(user.name) !== user) return false;
    this.users.delete(user.name);
    const left = leftFrame(user, reason); // built once, the same bytes for everyone
    for (const other of this.users.values()) sendControl(other, left);
    if (user.speaking) {
      user.speaking = false;
      this.announceSpeakers();
    }
    return true;
  }

  /**
   * Forwards a sender's VOICE payload (sequence + packet, untouched; from a VOICE_UP or a TCP
   * VOICE) to every OTHER member, at once, each by the path THEY receive on: a VOICE_DOWN
   * datagram to their bound address, or a TCP VOICE. Each form is built once and the same Buffer
   * sent to every listener on that path. A sender who was silent is announced in SPEAKING before
   * their first VOICE leaves.
   */
  forward(sender: User, payload: Buffer): void {
    sender.lastVoiceAt = performance.now();
    if (!sender.speaking) {
      sender.speaking = true;
      this.announceSpeakers();
    }
    let frame: Buffer | undefined;
    let datagram: Buffer | undefined;
    let copies = 0;
    for (const listener of this.users.values()) {
      if (listener === sender || !this.receivesRoomVoice(listener)) continue;
      if (listener.udp.receivesByUdp) {
        this.udp.sendTo(listener.udp, (datagram ??= forwardedVoiceDown(sender.id, payload)));
        copies++;
      } else if (sendVoice(listener, (frame ??= forwardedVoiceFrame(sender.id, payload)), this.observer)) {
        copies++;
      }
    }
    sender.packetsForwarded++;
    this.observer.packetForwarded(copies);
  }

  /** Marks users whose last VOICE is older than SPEAKING_HOLD_MS as silent; returns how many still speak. */
  expireSpeakers(now: number): number {
    let changed = false;
    let speaking = 0;
    for (const user of this.users.values()) {
      if (!user.speaking) continue;
      if (now - user.lastVoiceAt >= SPEAKING_HOLD_MS) {
        user.speaking = false;
        changed = true;
      } else {
        speaking++;
      }
    }
    if (changed) this.announceSpeakers();
    return speaking;
  }

  /** SPEAKING with the whole current set, to every member (the speakers included). */
  private announceSpeakers(): void {
    const frame = speakingFrame(this.speakers());
    for (const user of this.users.values()) sendControl(user, frame);
  }

  private speakers(): User[] {
    return [...this.users.values()].filter((user) => user.speaking);
  }
}

/**
 * Session ids: u16 from 1 to 65535, handed out in increasing order, skipping ids in use, wrapping
 * from 65535 to 1. An id comes back only after ~65 000 others: a late packet of a user who left
 * cannot be taken for a newcomer's.
 */
class SessionIds {
  private next = MIN_SESSION_ID;
  private readonly inUse = new Set<number>();

  /** A free id (there is always one: MAX_USERS is far below 65535). */
  take(): number {
    while (this.inUse.has(this.next)) this.advance();
    const id = this.next;
    this.inUse.add(id);
    this.advance();
    return id;
  }

  release(id: number): void {
    this.inUse.delete(id);
  }

  private advance(): void {
    this.next = this.next === MAX_SESSION_ID ? MIN_SESSION_ID : this.next + 1;
  }
}

/** Every room, by id. A room exists while someone is in it. */
class Rooms {
  private readonly rooms = new Map<string, Room>();
  /** Users in all rooms (MAX_USERS is for the whole server). */
  private userCount = 0;
  /** ROOMS as last built, until someone joins, leaves or moves: a flood of LIST_ROOMS costs one write each, not a sort. */
  private roomsFrame: Buffer | null = null;
  /** Rooms where someone is speaking: the only ones the speaking timer visits. */
  private readonly speakingRooms = new Set<Room>();
  // Ends "speaking" SPEAKING_HOLD_MS after a user's last VOICE. It runs only while someone
  // speaks: an idle server has no timer.
  private speakingTimer: NodeJS.Timeout | null = null;
  readonly ids = new SessionIds();
  /** Every user by name, on the whole server (names are unique on the server). */
  readonly directory = new Directory<User>();

  constructor(
    private readonly observer: ServerObserver,
    private readonly udp: UdpVoice,
    private readonly receivesRoomVoice: (listener: User) => boolean,
  ) {}

  /** Users in all rooms. */
  get size(): number {
    return this.userCount;
  }

  get roomCount(): number {
    return this.rooms.size;
  }

  /** The members of room `id` now (none if it does not exist). */
  members(id: string): User[] {
    const room = this.rooms.get(id);
    return room === undefined ? [] : [...room.members()];
  }

  /** Adds a new user to their room (`user.room`), creating it if needed, and to the directory. */
  join(user: User): void {
    this.userCount++;
    this.directory.add(user);
    this.enter(user);
  }

  /** Removes a user from their room (the other members are told at once). Returns false if they were not here. */
  leave(user: User, reason: LeaveReason): boolean {
    const room = this.rooms.get(user.room);
    if (room === undefined || !room.leave(user, reason)) return false;
    this.userCount--;
    this.directory.remove(user);
    this.ids.release(user.id);
    this.deleteIfEmpty(room);
    return true;
  }

  /**
   * Moves a user to room `id`: the old room gets LEFT "moved" (and SPEAKING without them if they
   * spoke), the new one JOINED, the mover the new room's USERS. From now on their VOICE goes to
   * the new room only. Moving to the room you are in just sends its USERS again.
   */
  move(user: User, id: string): void {
    const from = this.rooms.get(user.room)!;
    if (id === user.room) {
      from.sendUsers(user);
      return;
    }
    from.leave(user, 'moved'); // SPEAKING is per room: they arrive silent in the new one
    this.deleteIfEmpty(from);
    user.room = id;
    this.enter(user);
  }

  /**
   * The relay of a call: a party's voice payload to their peer only, by the PATH the peer receives
   * on (VOICE_DOWN to their bound address, or TCP VOICE), speaker = the party's id. No SPEAKING:
   * the room does not hear a party in a call.
   */
  relay(sender: User, peer: User, payload: Buffer): void {
    let copies = 0;
    if (peer.udp.receivesByUdp) {
      this.udp.sendTo(peer.udp, forwardedVoiceDown(sender.id, payload));
      copies = 1;
    } else if (sendVoice(peer, forwardedVoiceFrame(sender.id, payload), this.observer)) {
      copies = 1;
    }
    sender.packetsForwarded++;
    this.observer.packetForwarded(copies);
  }

  /**
   * Sends `frame` to the other members of `user`'s room (PRESENCE: they started or ended a call).
   * A party whose call starts while they speak leaves SPEAKING at once: SPEAKING never lists a
   * user in a call.
   */
  tellRoom(user: User, frame: Buffer): void {
    const room = this.rooms.get(user.room);
    if (room === undefined) return;
    room.tellOthers(user, frame);
    if (user.inCall) room.stopSpeaking(user);
  }

  /** Forwards a VOICE payload from `sender` to the other members of their room, at once. */
  forward(sender: User, payload: Buffer): void {
    const room = this.rooms.get(sender.room)!;
    room.forward(sender, payload);
    this.speakingRooms.add(room);
    this.speakingTimer ??= setInterval(() => this.expireSpeakers(), FRAME_MS);
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
    if (this.speakingTimer !== null) clearInterval(this.speakingTimer);
    this.speakingTimer = null;
  }

  private enter(user: User): void {
    let room = this.rooms.get(user.room);
    if (room === undefined) {
      room = new Room(user.room, this.observer, this.udp, this.receivesRoomVoice);
      this.rooms.set(room.id, room);
    }
    this.roomsFrame = null;
    room.join(user);
  }

  /** An empty room disappears at once: its id is free. */
  private deleteIfEmpty(room: Room): void {
    this.roomsFrame = null;
    if (room.size > 0) return;
    this.rooms.delete(room.id);
    this.speakingRooms.delete(room);
  }

  /** Every FRAME_MS while someone speaks: SPEAKING for those whose voice stopped SPEAKING_HOLD_MS ago. */
  private expireSpeakers(): void {
    const now = performance.now();
    for (const room of this.speakingRooms) {
      if (room.expireSpeakers(now) === 0) this.speakingRooms.delete(room);
    }
    if (this.speakingRooms.size === 0) this.stop();
  }
}

/** How long a connection we refused may linger before we cut it off. */
const CLOSE_GRACE_MS = 2_000;

/** Talks to one connection: handshake, then voice into its room, moves between rooms and PATH, until it leaves or breaks the protocol. */
function serveClient(socket: Socket, rooms: Rooms, calls: CallTable<User>, udp: UdpVoice, relay: FileRelay, observer: ServerObserver): void {
  const peer = hostPort(socket.remoteAddress, socket.remotePort); // [::1]:50000 for IPv6
  let user: User | null = null; // set once this connection has joined a room
  let finished = false; // after BYE, an error or a lost connection, nothing more is handled
  // Moves notify two rooms: a user may make MOVE_BURST of them at once, then one per MOVE_REFILL_MS.
  // PATH takes from the same bucket (and counts in the same refusals in a row).
  const moves = new TokenBucket(MOVE_REFILL_MS, MOVE_BURST);
  let movesRefusedInARow = 0;
  // Forwarding multiplies every VOICE by the room's size: one per FRAME_MS, bursts of VOICE_BURST.
  // ONE bucket for both paths: switching between UDP and TCP buys no extra voice.
  const voiceTokens = new TokenBucket(FRAME_MS, VOICE_BURST);
  let voiceDropped = 0;
  let voiceDroppedInWindow = 0;
  let voiceFloodWindowStart = -Infinity;
  // Text and offers notify the whole room: each has its own bucket (issue 18's rule).
  const texts = new TextSender();
  const offers = new OfferGate();
  // Look-ups reveal who is online, invites ring a person: each has its own bucket (issue 18).
  const lookups = new RequestLimit('LOOKUP', LOOKUP_BURST, LOOKUP_REFILL_MS, MAX_LOOKUPS_REFUSED);
  const invites = new RequestLimit('INVITE', INVITE_BURST, INVITE_REFILL_MS, MAX_INVITES_REFUSED);

  // Voice is a stream of small messages that should leave at once: do not let Nagle's
  // algorithm hold one back waiting to fill a TCP segment.
  socket.setNoDelay(true);

  /** Takes this user out of their room (its other members are told at once). Safe to call more than once. */
  const leave = (reason: LeaveReason, how: string) => {
    finished = true; // frames of this connection still in a chunk being parsed are not handled
    clearTimeout(handshakeTimer);
    if (user !== null) udp.close(user.udp); // the token is invalid from now on: a late datagram is bad_token
    if (user !== null) calls.leave(user); // their call ends: peer_left to the other party
    if (user !== null) {
      relay.leaveRoom(user, 'left'); // what they send ends, what they receive goes on without them
      user.chunks.close();
    }
    if (user !== null && rooms.leave(user, reason)) {
      const drops = voiceDropped + user.voiceSkipped > 0
        ? `; dropped ${voiceDropped} of their VOICE (over the rate limit) and skipped ${user.voiceSkipped} VOICE to them (slow reader)`
        : '';
      console.log(`${user.name} (id ${user.id}) left room ${user.room} (${how}): ${user.packetsForwarded} VOICE forwarded${drops}`);
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
    const requested = parseHello(payload); // checks "protocol" first: a client of another stage is told so
    const problem = nameProblem(requested.name);
    if (problem) throw new ProtocolError(ErrorCode.badName, problem);
    const badRoom = roomProblem(requested.room);
    if (badRoom) throw new ProtocolError(ErrorCode.badRoom, badRoom);
    if (rooms.size >= MAX_USERS) {
      throw new ProtocolError(ErrorCode.serverFull, `${MAX_USERS} users are connected, the most this server takes; try again later`);
    }
    // Names are unique on the whole server (the directory maps a name to one person).
    if (rooms.directory.has(requested.name)) {
      throw new ProtocolError(ErrorCode.nameTaken, `someone called "${requested.name}" is already on this server; pick another name`);
    }
    clearTimeout(handshakeTimer);
    const id = rooms.ids.take();
    const joined: User = {
      id,
      name: requested.name,
      room: requested.room,
      socket,
      udp: udp.open(
        `${requested.name} (id ${id})`,
        (payload) => admitVoice(joined, payload),
        // STUN's part: the address the server sees, over TCP to the token's owner only, when bound or rebound.
        (bound) => sendControl(joined, addressFrame(publicAddress(bound))),
      ),
      boundAddress: () => (joined.udp.bound === null ? null : publicAddress(joined.udp.bound)),
      inCall: false,
      speaking: false,
      lastVoiceAt: -Infinity,
      packetsForwarded: 0,
      voiceSkipped: 0,
      skippingSince: null,
      refuse,
      sendControl: (frame) => sendControl(joined, frame),
      chunks: new ChunkScheduler(
        (frame, flushed) => writeThisTurn(socket, frame, flushed),
        (frame) => sendControl(joined, frame),
      ),
      sending: new Map(),
      recentlyEnded: [],
      receiving: new Map(),
    };
    user = joined;
    socket.write(welcomeFrame({ ...user, token: user.udp.token, udpPort: udp.port }));
    rooms.join(user);
    console.log(`${user.name} (id ${user.id}) joined room ${user.room} from ${peer} (${rooms.size} connected, rooms: ${rooms.roomCount})`);
  };

  /**
   * A joined user's voice payload (sequence + packet), from TCP VOICE or an accepted VOICE_UP:
   * forwarded if their voice bucket has a token. Faster than real time, it is dropped; a sender
   * who keeps it up is flooding and loses the connection (the datagrams carried their token, so
   * this proves it was them).
   */
  const admitVoice = (sender: User, payload: Buffer): 'forwarded' | 'rate_limited' => {
    observer.packetReceived();
    if (voiceTokens.tryTake()) {
      const route = calls.voiceRoute(sender); // room, the peer of a call (the relay), or nobody (the guard)
      if (route.to === 'room') rooms.forward(sender, payload);
      else if (route.to === 'peer') rooms.relay(sender, route.peer, payload);
      return 'forwarded';
    }
    voiceDropped++;
    observer.packetDropped('rate_limited');
    const now = performance.now();
    if (now - voiceFloodWindowStart > VOICE_FLOOD_WINDOW_MS) {
      voiceFloodWindowStart = now;
      voiceDroppedInWindow = 0;
    }
    if (++voiceDroppedInWindow > VOICE_FLOOD_DROPS) {
      refuse(ErrorCode.rateLimited, `more than ${VOICE_FLOOD_DROPS} VOICE in ${VOICE_FLOOD_WINDOW_MS / 1000} s came faster than one per ${FRAME_MS} ms and were dropped: you are flooding`);
    }
    return 'rate_limited';
  };

  const onVoice = (payload: Buffer) => {
    if (user === null) throw new ProtocolError(ErrorCode.notJoined, 'send HELLO before VOICE');
    admitVoice(user, payload);
  };

  /** Takes a token from the move bucket; false if there is none (the 20th refusal in a row ends the connection). */
  const takeMoveToken = (what: string): boolean => {
    if (moves.tryTake()) {
      movesRefusedInARow = 0;
      return true;
    }
    if (++movesRefusedInARow >= MAX_MOVES_REFUSED) {
      throw new ProtocolError(ErrorCode.rateLimited, `${MAX_MOVES_REFUSED} ${what} in a row were refused for coming too often; you kept sending them regardless`);
    }
    return false;
  };

  // Where this user wants to RECEIVE voice. It costs a move token: switching is not free, and a
  // PATH without one is ignored (the client's next PATH, a few seconds later, will do).
  const onPath = (payload: Buffer) => {
    if (user === null) throw new ProtocolError(ErrorCode.notJoined, 'send HELLO before PATH');
    const path = parsePath(payload);
    if (path === user.udp.path) return;
    if (!takeMoveToken('moves or PATH changes')) return;
    user.udp.path = path;
    console.log(`${user.name} (id ${user.id}) receives voice over ${path.toUpperCase()}${path === 'udp' && user.udp.bound === null ? ' (once their UDP address is bound)' : ''}`);
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
    // Never name_taken: names are unique on the whole server, so nobody in `target` has this one.
    if (target !== user.room) {
      // A move tells everyone in two rooms: it costs a token. A JOIN of your own room tells nobody.
      if (!takeMoveToken('moves or PATH changes')) {
        const wait = Math.ceil(moves.msUntilNextToken());
        sendControl(user, joinRefusedFrame(target, ErrorCode.rateLimited, `too many moves: at most ${MOVE_BURST} at once, then one every ${MOVE_REFILL_MS / 1000} s; try again in ${wait} ms`));
        return;
      }
    }
    const from = user.room;
    if (from !== target) relay.leaveRoom(user, 'moved'); // a mover stops receiving (and sending) at once
    rooms.move(user, target);
    if (from !== target) console.log(`${user.name} (id ${user.id}) moved from room ${from} to room ${target} (rooms: ${rooms.roomCount})`);
  };

  const onListRooms = () => {
    if (user === null) throw new ProtocolError(ErrorCode.notJoined, 'send HELLO before LIST_ROOMS');
    sendControl(user, rooms.list());
  };

  const onText = (payload: Buffer) => {
    if (user === null) throw new ProtocolError(ErrorCode.notJoined, 'send HELLO before TEXT');
    texts.handle(user, payload, rooms.members(user.room));
  };

  const onOffer = (payload: Buffer) => {
    if (user === null) throw new ProtocolError(ErrorCode.notJoined, 'send HELLO before OFFER');
    offers.handle(user, payload, rooms.members(user.room), relay);
  };

  const onChunk = (payload: Buffer) => {
    if (user === null) throw new ProtocolError(ErrorCode.notJoined, 'send HELLO before CHUNK');
    relay.chunk(user, parseChunk(payload), payload);
  };

  const onAck = (payload: Buffer) => {
    if (user === null) throw new ProtocolError(ErrorCode.notJoined, 'send HELLO before ACK');
    const { transfer, received } = parseAck(payload);
    relay.ack(user, transfer, received);
  };

  const onCancel = (payload: Buffer) => {
    if (user === null) throw new ProtocolError(ErrorCode.notJoined, 'send HELLO before CANCEL');
    relay.cancel(user, parseCancel(payload));
  };

  const onLookup = (payload: Buffer) => {
    if (user === null) throw new ProtocolError(ErrorCode.notJoined, 'send HELLO before LOOKUP');
    const name = parseLookup(payload);
    if (!lookups.take()) {
      sendControl(user, refusedFrame('lookup', ErrorCode.rateLimited, lookups.refusal()));
      return;
    }
    sendControl(user, foundFrame(calls.found(name)));
  };

  const onInvite = (payload: Buffer) => {
    if (user === null) throw new ProtocolError(ErrorCode.notJoined, 'send HELLO before INVITE');
    calls.invite(user, parseClientInvite(payload), invites);
  };

  // ACCEPT, DECLINE and HANGUP that do not fit a call of theirs are ignored (an honest race): calls.ts.
  const onAccept = (payload: Buffer) => {
    if (user === null) throw new ProtocolError(ErrorCode.notJoined, 'send HELLO before ACCEPT');
    const { call, relayOnly } = parseAccept(payload);
    calls.accept(user, call, relayOnly);
  };

  const onDecline = (payload: Buffer) => {
    if (user === null) throw new ProtocolError(ErrorCode.notJoined, 'send HELLO before DECLINE');
    calls.decline(user, parseDecline(payload));
  };

  const onHangup = (payload: Buffer) => {
    if (user === null) throw new ProtocolError(ErrorCode.notJoined, 'send HELLO before HANGUP');
    calls.hangup(user, parseHangup(payload));
  };

  const onBye = () => {
    if (user === null) throw new ProtocolError(ErrorCode.notJoined, 'send HELLO before BYE');
    leave('bye', 'bye');
    socket.end();
  };

  const parser = new FrameParser({
    maxPayload: clientMessageLimit,
    // A VOICE, CHUNK or ACK too short to be one is refused on its header, like one that is too long.
    onHeader: (type, length) => {
      if (length < clientMessageMinimum(type)) {
        const what = type === MessageType.chunk ? 'CHUNK' : type === MessageType.ack ? 'ACK' : 'VOICE';
        throw new ProtocolError(tooShortCode(type), `${what} declares ${length} payload bytes; it must carry at least ${clientMessageMinimum(type)}`);
      }
    },
    onFrame: (type, payload) => {
      if (finished) return; // frames that came in the same chunk after BYE or an error: not handled
      if (type === MessageType.hello) onHello(payload);
      else if (type === MessageType.voice) onVoice(payload);
      else if (type === MessageType.join) onJoin(payload);
      else if (type === MessageType.listRooms) onListRooms();
      else if (type === MessageType.path) onPath(payload);
      else if (type === MessageType.text) onText(payload);
      else if (type === MessageType.offer) onOffer(payload);
      else if (type === MessageType.chunk) onChunk(payload);
      else if (type === MessageType.ack) onAck(payload);
      else if (type === MessageType.cancel) onCancel(payload);
      else if (type === MessageType.lookup) onLookup(payload);
      else if (type === MessageType.invite) onInvite(payload);
      else if (type === MessageType.accept) onAccept(payload);
      else if (type === MessageType.decline) onDecline(payload);
      else if (type === MessageType.hangup) onHangup(payload);
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
  /** The UDP socket's port (the TCP port unless told otherwise). */
  udpPort: number;
  /** The datagram counters so far. */
  counters: UdpVoice['counters'];
  close(): Promise<void>;
}

export interface ServerOptions {
  /** The UDP port: undefined = the same number as the TCP port; 0 = the system chooses. */
  udpPort?: number;
  /** Watches the server from outside (see ServerObserver). */
  observer?: ServerObserver;
  /** How long a call rings before CALL_END no_answer, in seconds (--ring-timeout; default DEFAULT_RING_TIMEOUT_S). */
  ringTimeoutS?: number;
}

export { DEFAULT_RING_TIMEOUT_S } from './call-limits.ts';

/** The server's --ring-timeout S: seconds above 0 (fractions allowed: tests ring for 2 s). */
export function parseRingTimeout(value: unknown): number {
  const text = String(value).trim();
  const seconds = Number(text);
  if (text === '' || !Number.isFinite(seconds) || seconds <= 0 || seconds > 3600) {
    throw new Error(`invalid --ring-timeout "${String(value)}": give the seconds a call may ring, above 0 and at most 3600, e.g. --ring-timeout 30`);
  }
  return seconds;
}

/** Opens the UDP socket, or says in one line why it could not (the port is taken, ...). */
async function openUdp(host: string, port: number, observer: ServerObserver): Promise<UdpVoice> {
  try {
    return await UdpVoice.open(host, port, observer);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'EADDRINUSE' ? 'another program uses it' : code === 'EACCES' ? 'permission denied' : (error as Error).message;
    throw new UserError(`cannot listen for UDP on ${hostPort(host, port)}: ${why}; pick another with --udp-port N (0: any free port)`, 1, { cause: error });
  }
}

/** Starts the server: TCP on host:port, UDP on host:udpPort; prints the ready line once both are open. */
export async function startServer(host: string, port: number, options: ServerOptions = {}): Promise<RunningServer> {
  const observer = options.observer ?? NO_OBSERVER;
  const connections = new Set<Socket>();
  const relay = new FileRelay();
  let rooms: Rooms | undefined; // made once the UDP socket is open
  let calls: CallTable<User> | undefined;
  const server = createServer((socket) => {
    if (rooms === undefined || calls === undefined) {
      socket.destroy(); // before the ready line (the UDP socket is still opening): nobody was told to connect yet
      return;
    }
    if (connections.size >= MAX_CONNECTIONS) {
      refuseConnection(socket);
      return;
    }
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
    serveClient(socket, rooms, calls, udp, relay, observer);
  });
  const address = await listen(server, host, port);
  let udp: UdpVoice;
  try {
    udp = await openUdp(address.host, options.udpPort ?? address.port, observer);
  } catch (error) {
    server.close();
    throw error;
  }
  // Each needs the other: rooms ask the call table who may hear room voice, calls find users by name and tell rooms.
  const roomsNow: Rooms = new Rooms(observer, udp, (listener) => callTable.receivesRoomVoice(listener));
  const callTable: CallTable<User> = new CallTable<User>({
    find: (name) => roomsNow.directory.find(name),
    ringTimeoutMs: (options.ringTimeoutS ?? DEFAULT_RING_TIMEOUT_S) * 1000,
    events: { tellRoom: (party, frame) => roomsNow.tellRoom(party, frame) },
  });
  rooms = roomsNow;
  calls = callTable;
  // "listening on HOST:PORT" first: harnesses read the TCP port from it.
  const udpAt = `udp ${hostPort(address.host, udp.port)}`;
  const line = readyLine(address); // "... (every IPv4 and IPv6 address of this machine)" for "::"
  console.log(line.includes(' (') ? line.replace(' (', ` (${udpAt}; `) : `${line} (${udpAt})`);
  // Once listening, the only server errors are failed accepts (EMFILE: no file descriptor left):
  // that one connection is lost, everyone else carries on.
  server.on('error', (error) => console.log(`could not accept a connection: ${error.message}`));
  return {
    address,
    udpPort: udp.port,
    counters: udp.counters,
    // Stops accepting; connections get a moment to finish (a BYE in flight), then are cut.
    close: () =>
      new Promise((resolve) => {
        rooms!.stop();
        calls!.stop();
        relay.stop();
        udp.stop(); // prints the counters one last time
        server.close(() => resolve());
        for (const socket of connections) setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
      }),
  };
}
