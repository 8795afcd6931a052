// The server's datagram side: ONE UDP socket for everyone. A datagram proves who sent it only by
// the secret token that WELCOME handed out over TCP, never by its source address or a field
// inside it. Each datagram goes through the README's checks in order; the first that fails drops
// it SILENTLY (no answer, nothing over TCP) and adds one to that reason's counter:
//
//   1 length 1-1286, type VOICE_UP or PING                               else bad_type
//   2 VOICE_UP >= 12 bytes, PING exactly 17                              else bad_size
//   3 the token is a connected user's (constant-time compare)            else bad_token
//   4 from the user's bound address; or binds (first datagram), or rebinds if NEW    else replayed
//   5 NEW: VOICE_UP's sequence passes the 64-wide replay window, PING's number is the highest yet   else replayed
//   6 VOICE_UP: the user's voice token bucket (the same as for TCP VOICE) else rate_limited
//   7 PING: at most 5 answered per second per user                       else ping_flood
//
// Then a PING gets a 13-byte PONG at the bound address and a VOICE_UP is forwarded by the room
// (server.ts). No answer is larger than what provoked it, and nothing unauthenticated is answered.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket as DatagramSocket } from 'node:dgram';
import { hostPort } from '#shared/host-port.ts';
import { TokenBucket } from '#shared/token-bucket.ts';
import { type DropReason, parseClientDatagram, PONGS_PER_SECOND, pongDatagram, REPLAY_WINDOW } from './datagrams.ts';
import { newToken, type VoicePath } from './protocol.ts';

/** Every counter the server prints: what was accepted, how addresses were bound, and each drop reason. */
export interface DatagramCounters {
  accepted: number;
  bound: number;
  rebound: number;
  bad_type: number;
  bad_size: number;
  bad_token: number;
  replayed: number;
  rate_limited: number;
  ping_flood: number;
}

const COUNTER_NAMES: (keyof DatagramCounters)[] = ['accepted', 'bound', 'rebound', 'bad_type', 'bad_size', 'bad_token', 'replayed', 'rate_limited', 'ping_flood'];

/** "datagrams: accepted 3012, bound 2, rebound 0, bad_type 0, ..." */
export function countersLine(counters: DatagramCounters): string {
  return `datagrams: ${COUNTER_NAMES.map((name) => `${name} ${counters[name]}`).join(', ')}`;
}

/** Where a user's datagrams come from (and where theirs go), learned from a datagram with their token. */
interface BoundAddress {
  address: string;
  port: number;
}

/**
 * The anti-replay window of IPsec (RFC 4303 §3.4.3) over u16 sequence numbers: the highest
 * sequence accepted and a bitmap of the last REPLAY_WINDOW sequences (the highest included). A sequence is new if it is after
 * the highest (mod 2^16, up to half the circle ahead) or within the window and not yet seen.
 */
export class ReplayWindow {
  private highest: number | null = null;
  /** Bit i set: sequence highest - i was accepted (bit 0 is the highest itself). */
  private seen = 0n;

  isNew(sequence: number): boolean {
    if (this.highest === null) return true;
    const ahead = (sequence - this.highest) & 0xffff;
    if (ahead !== 0 && ahead < 0x8000) return true;
    const behind = (this.highest - sequence) & 0xffff;
    if (behind >= REPLAY_WINDOW) return false;
    return (this.seen & (1n << BigInt(behind))) === 0n;
  }

  /** Records `sequence` as accepted (call only after isNew said yes). */
  accept(sequence: number): void {
    if (this.highest === null) {
      this.highest = sequence;
      this.seen = 1n;
      return;
    }
    const ahead = (sequence - this.highest) & 0xffff;
    if (ahead !== 0 && ahead < 0x8000) {
      this.seen = ahead >= REPLAY_WINDOW ? 1n : ((this.seen << BigInt(ahead)) | 1n) & WINDOW_MASK;
      this.highest = sequence;
    } else {
      this.seen |= 1n << BigInt((this.highest - sequence) & 0xffff);
    }
  }
}
const WINDOW_MASK = (1n << BigInt(REPLAY_WINDOW)) - 1n;

/** One user's UDP state: created at WELCOME, freed when they leave (the token is then invalid at once). */
export class UdpSession {
  /** How this user wants to RECEIVE voice (PATH); udp counts only once an address is bound. */
  path: VoicePath = 'tcp';
  bound: BoundAddress | null = null;
  /** Valid datagrams accepted from this user (checks 1-5 passed): PONG's `received`. */
  received = 0;
  readonly replay = new ReplayWindow();
  /** The highest PING number accepted (pings start at 1). */
  lastPing = 0;
  readonly pongs = new TokenBucket(1000 / PONGS_PER_SECOND, PONGS_PER_SECOND);

  constructor(
    /** The 8-byte secret, as WELCOME sends it in hex. */
    readonly token: Buffer,
    /** "Ada (id 3)", for the server's log. */
    readonly label: string,
    /** What the server does with this user's accepted VOICE_UP (the voice payload is stage 05's: sequence + packet). */
    readonly onVoice: (voicePayload: Buffer) => 'forwarded' | 'rate_limited',
  ) {}

  /** True when voice for this user goes out as VOICE_DOWN: they asked for udp and their address is known. */
  get receivesByUdp(): boolean {
    return this.path === 'udp' && this.bound !== null;
  }
}

/** Hooks for watching the datagram side (the observer of server.ts passes them on). */
export interface DatagramObserver {
  datagramAccepted(type: 'voice_up' | 'ping'): void;
  datagramDropped(reason: DropReason): void;
}

/** The index of sessions is keyed by SHA-256 of the token, so a lookup's timing says nothing about the secret; the match is then confirmed with timingSafeEqual. */
function tokenKey(token: Buffer): string {
  return createHash('sha256').update(token).digest('base64');
}

const sameAddress = (bound: BoundAddress, from: RemoteInfo) => bound.port === from.port && bound.address === from.address;

/** The one UDP socket of the server and every connected user's UDP state. */
export class UdpVoice {
  readonly counters: DatagramCounters = { accepted: 0, bound: 0, rebound: 0, bad_type: 0, bad_size: 0, bad_token: 0, replayed: 0, rate_limited: 0, ping_flood: 0 };
  private readonly sessions = new Map<string, UdpSession>();
  private lastPrinted = '';
  private readonly printTimer: NodeJS.Timeout;

  private constructor(
    private readonly socket: DatagramSocket,
    readonly port: number,
    private readonly observer: DatagramObserver,
  ) {
    socket.on('message', (datagram, from) => this.receive(datagram, from));
    // A send to a vanished client (ICMP unreachable) surfaces here on some systems: nothing to do.
    socket.on('error', () => {});
    this.printTimer = setInterval(() => this.printCountersIfChanged(), COUNTERS_EVERY_MS).unref();
  }

  /** Opens the UDP socket on host:port (0 = the system chooses). `host` is the TCP listener's: "::" is both families. */
  static open(host: string, port: number, observer: DatagramObserver): Promise<UdpVoice> {
    return new Promise((resolve, reject) => {
      const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
      socket.once('error', reject);
      socket.bind(port, host, () => {
        socket.off('error', reject);
        resolve(new UdpVoice(socket, socket.address().port, observer));
      });
    });
  }

  /** A new session with a fresh crypto-random token (WELCOME sends it). */
  open(label: string, onVoice: UdpSession['onVoice']): UdpSession {
    let session: UdpSession;
    do session = new UdpSession(newToken(), label, onVoice);
    while (this.sessions.has(tokenKey(session.token))); // 2^-64 a time, but never two users with one token
    this.sessions.set(tokenKey(session.token), session);
    return session;
  }

  /** Forgets a session: its token is invalid from now on, its binding and windows are gone. */
  close(session: UdpSession): void {
    const key = tokenKey(session.token);
    if (this.sessions.get(key) === session) this.sessions.delete(key);
    session.bound = null;
  }

  /** Sends a VOICE_DOWN (or any datagram) to a listener's bound address. */
  sendTo(session: UdpSession, datagram: Buffer): void {
    if (session.bound !== null) this.socket.send(datagram, session.bound.port, session.bound.address);
  }

  /** One line of counters, if any changed since the last one printed. */
  printCountersIfChanged(): void {
    const line = countersLine(this.counters);
    if (line === this.lastPrinted) return;
    this.lastPrinted = line;
    console.log(line);
  }

  stop(): void {
    clearInterval(this.printTimer);
    this.printCountersIfChanged();
    this.socket.close();
  }

  private drop(reason: DropReason): void {
    this.counters[reason]++;
    this.observer.datagramDropped(reason);
  }

  /** The README's checks, in order; the first that fails drops the datagram without an answer. */
  private receive(datagram: Buffer, from: RemoteInfo): void {
    const parsed = parseClientDatagram(datagram); // checks 1 and 2
    if ('drop' in parsed) return this.drop(parsed.drop);

    const session = this.sessions.get(tokenKey(parsed.token)); // check 3
    if (session === undefined || !timingSafeEqual(session.token, parsed.token)) return this.drop('bad_token');

    // Checks 4 and 5: only a NEW datagram may move a binding; a replay is dropped from anywhere.
    const fresh = parsed.type === 'ping' ? parsed.ping > session.lastPing : session.replay.isNew(parsed.sequence);
    if (!fresh) return this.drop('replayed');
    if (session.bound === null) {
      session.bound = { address: from.address, port: from.port };
      this.counters.bound++;
      console.log(`${session.label}: UDP bound to ${hostPort(from.address, from.port)}`);
    } else if (!sameAddress(session.bound, from)) {
      session.bound = { address: from.address, port: from.port };
      this.counters.rebound++;
      console.log(`${session.label}: UDP rebound to ${hostPort(from.address, from.port)}`);
    }
    if (parsed.type === 'ping') session.lastPing = parsed.ping;
    else session.replay.accept(parsed.sequence);
    session.received++;
    this.counters.accepted++;
    this.observer.datagramAccepted(parsed.type);

    if (parsed.type === 'voice_up') {
      if (session.onVoice(parsed.voicePayload) === 'rate_limited') this.drop('rate_limited'); // check 6
      return;
    }
    if (!session.pongs.tryTake()) return this.drop('ping_flood'); // check 7
    // 13 bytes for 17: to the address that just proved it holds the token.
    this.sendTo(session, pongDatagram(parsed.ping, parsed.clientTime, session.received));
  }
}

/** Counters are printed every 10 s while they change (and once when the server stops). */
const COUNTERS_EVERY_MS = 10_000;
