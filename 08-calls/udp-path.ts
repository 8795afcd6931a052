// The client's UDP path: one datagram socket to the server (or to a relay, --udp-via), PING every
// 2 s, and the decision which path our voice takes, with the measurements behind it.
//
//   on WELCOME:      PING 1 at once, then one every 2 s (also keeps the NAT's mapping open)
//   first PONG:      voice as VOICE_UP, PATH udp
//   no PONG for the first PING within 3 s, or 3 PINGs in a row unanswered:
//                    voice over TCP (as in stage 05), PATH tcp, one line saying so; the PINGs go on
//   2 PONGs in a row (after falling back): voice as VOICE_UP again, PATH udp, one line
//
// A PING counts as answered when its PONG comes before the next PING is sent. From each PONG:
// the round trip (now - the client_time it echoes) and the upstream loss (the datagrams we had
// sent when we sent that PING, against the `received` count the server puts in the PONG).
// UdpPath holds the decisions and statistics on an injected clock and transport, so the tests run
// them on a manual clock; openUdpSocket() gives it a real socket.
import { createSocket, type Socket as DatagramSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Scheduler } from '#shared/audio/frame-clock.ts';
import {
  FIRST_PONG_TIMEOUT_MS,
  MISSED_PINGS_FOR_TCP,
  parseServerDatagram,
  PING_INTERVAL_MS,
  pingDatagram,
  PONGS_FOR_UDP,
  voiceUpDatagram,
} from './datagrams.ts';
import type { VoicePath } from './protocol.ts';

/** Bounds of the loss the Opus encoder is told to expect (FEC is sized from it): at least 5 %, at most 30 %. */
export const MIN_EXPECTED_LOSS_PERCENT = 5;
export const MAX_EXPECTED_LOSS_PERCENT = 30;
/** PINGs remembered for matching PONGs (older ones are long unanswered). */
const PINGS_REMEMBERED = 8;

/** What the path needs from the rest of the client. */
export interface UdpPathHooks {
  /** Sends one datagram to the server (or relay). */
  send(datagram: Buffer): void;
  /** Our voice path changed: tell the server (PATH), and say `line` to the user. */
  pathChanged(path: VoicePath, line: string): void;
  /** A VOICE_DOWN arrived: into the jitter buffer. */
  voice(speaker: number, sequence: number, packet: Buffer): void;
  /** The measured upstream loss changed the loss the encoder should expect (MIN..MAX_EXPECTED_LOSS_PERCENT). */
  expectedLoss?(percent: number): void;
}

/** The numbers `stats` shows about the path itself. */
export interface PathStats {
  path: VoicePath;
  /** 'waiting' until the first PONG or the first fallback. */
  state: 'waiting' | 'udp' | 'tcp';
  pingsSent: number;
  pongsReceived: number;
  rttLastMs: number | undefined;
  rttMeanMs: number | undefined;
  /** Datagrams sent (VOICE_UP and PING) and how many of them the server said it got, as of the last PONG. */
  datagramsSent: number;
  /** Upstream loss in %, over all datagrams up to the last PONG; undefined before a PONG. */
  upstreamLossPercent: number | undefined;
  switchesToTcp: number;
  switchesToUdp: number;
  /** Datagrams we could not read (not a VOICE_DOWN or PONG), dropped. */
  strayDatagrams: number;
}

export class UdpPath {
  private state: 'waiting' | 'udp' | 'tcp' = 'waiting';
  private pingNumber = 0;
  private datagramsSent = 0;
  /** For each recent PING: how many datagrams we had sent, counting it, and whether its PONG came. */
  private readonly pings = new Map<number, { sentBefore: number; answered: boolean }>();
  private highestPonged = 0;
  private answeredInRow = 0;
  private missedInRow = 0;
  private pongsReceived = 0;
  private rttLastMs: number | undefined;
  private rttSumMs = 0;
  /** The last PONG's counts, and the one before (a window for the expected loss). */
  private lastCounts: { sent: number; received: number } | undefined;
  private upstreamLossPercent: number | undefined;
  private switchesToTcp = 0;
  private switchesToUdp = 0;
  private strayDatagrams = 0;
  private expectedLossPercent = MIN_EXPECTED_LOSS_PERCENT;
  private pingTimer: unknown;
  private firstPongTimer: unknown;
  private stopped = false;

  constructor(
    private readonly token: Buffer,
    private readonly hooks: UdpPathHooks,
    private readonly clock: Scheduler,
  ) {}

  /** Where our voice goes now: 'udp' only after a PONG proved the path works. */
  get path(): VoicePath {
    return this.state === 'udp' ? 'udp' : 'tcp';
  }

  /** PING 1 at once, then every PING_INTERVAL_MS; fall back if the first gets no PONG in time. */
  start(): void {
    this.ping();
    this.firstPongTimer = this.clock.setTimeout(() => {
      if (this.state === 'waiting') this.fallBack(`no answer to a UDP PING within ${FIRST_PONG_TIMEOUT_MS / 1000} s`);
    }, FIRST_PONG_TIMEOUT_MS);
  }

  stop(): void {
    this.stopped = true;
    this.clock.clearTimeout(this.pingTimer);
    this.clock.clearTimeout(this.firstPongTimer);
  }

  /** Our voice as a VOICE_UP; the caller sends it only while `path` is 'udp'. */
  sendVoice(sequence: number, packet: Buffer): void {
    this.datagramsSent++;
    this.hooks.send(voiceUpDatagram(this.token, sequence, packet));
  }

  /** A datagram from the server's address (the socket filters the source). */
  receive(datagram: Buffer): void {
    const message = parseServerDatagram(datagram);
    if (message === null) {
      this.strayDatagrams++;
    } else if (message.type === 'voice_down') {
      this.hooks.voice(message.speaker, message.sequence, message.packet);
    } else {
      this.pong(message.ping, message.clientTime, message.received);
    }
  }

  get stats(): PathStats {
    return {
      path: this.path,
      state: this.state,
      pingsSent: this.pingNumber,
      pongsReceived: this.pongsReceived,
      rttLastMs: this.rttLastMs,
      rttMeanMs: this.pongsReceived === 0 ? undefined : this.rttSumMs / this.pongsReceived,
      datagramsSent: this.datagramsSent,
      upstreamLossPercent: this.upstreamLossPercent,
      switchesToTcp: this.switchesToTcp,
      switchesToUdp: this.switchesToUdp,
      strayDatagrams: this.strayDatagrams,
    };
  }

  private ping(): void {
    if (this.stopped) return;
    const previous = this.pings.get(this.pingNumber);
    if (previous !== undefined && !previous.answered) {
      this.missedInRow++;
      this.answeredInRow = 0;
      if (this.state === 'udp' && this.missedInRow >= MISSED_PINGS_FOR_TCP) {
        this.fallBack(`${this.missedInRow} UDP PINGs in a row unanswered`);
      }
    }
    this.pingNumber++;
    this.datagramsSent++;
    this.pings.set(this.pingNumber, { sentBefore: this.datagramsSent, answered: false });
    this.pings.delete(this.pingNumber - PINGS_REMEMBERED);
    this.hooks.send(pingDatagram(this.token, this.pingNumber, this.clock.now()));
    this.pingTimer = this.clock.setTimeout(() => this.ping(), PING_INTERVAL_MS);
  }

  private pong(ping: number, clientTime: number, received: number): void {
    const record = this.pings.get(ping);
    // Only a PONG for a recent PING of ours, once, and newer than any before: nothing else is trusted.
    if (record === undefined || record.answered || ping <= this.highestPonged) {
      this.strayDatagrams++;
      return;
    }
    record.answered = true;
    this.answeredInRow++; // back to 0 whenever a PING goes unanswered
    this.highestPonged = ping;
    this.missedInRow = 0;
    this.pongsReceived++;
    // client_time is our clock mod 2^32 ms: the round trip is the difference, mod 2^32 too.
    this.rttLastMs = ((Math.round(this.clock.now()) >>> 0) - clientTime) >>> 0;
    this.rttSumMs += this.rttLastMs;
    this.measureUpstreamLoss(record.sentBefore, received);
    if (this.state === 'waiting') {
      this.switchTo('udp', `voice over UDP: the server answered our PING in ${this.rttLastMs} ms`);
    } else if (this.state === 'tcp' && this.answeredInRow >= PONGS_FOR_UDP) {
      this.switchTo('udp', `UDP works again (${this.answeredInRow} PONGs in a row): voice over UDP`);
    }
  }

  private measureUpstreamLoss(sent: number, received: number): void {
    // The server counts every valid datagram from us: some may still be on the way, so a
    // negative loss reads as none.
    this.upstreamLossPercent = sent === 0 ? 0 : Math.max(0, (100 * (sent - received)) / sent);
    const before = this.lastCounts;
    this.lastCounts = { sent, received };
    if (before === undefined || !this.hooks.expectedLoss) return;
    const windowSent = sent - before.sent;
    const windowLoss = windowSent <= 0 ? 0 : (100 * (windowSent - (received - before.received))) / windowSent;
    const expected = Math.min(MAX_EXPECTED_LOSS_PERCENT, Math.max(MIN_EXPECTED_LOSS_PERCENT, Math.round(windowLoss)));
    if (expected !== this.expectedLossPercent) {
      this.expectedLossPercent = expected;
      this.hooks.expectedLoss(expected);
    }
  }

  private fallBack(why: string): void {
    this.switchTo('tcp', `${why}: voice over TCP (UDP may be blocked); still pinging every ${PING_INTERVAL_MS / 1000} s`);
  }

  private switchTo(state: 'udp' | 'tcp', line: string): void {
    this.state = state;
    if (state === 'udp') this.switchesToUdp++;
    else this.switchesToTcp++;
    this.answeredInRow = 0;
    this.hooks.pathChanged(state, line);
  }
}

/** Where datagrams go: the server's address and WELCOME's udp_port, or a relay (--udp-via). */
export interface DatagramTarget {
  host: string;
  port: number;
}

/** The client's one datagram socket: to the server (or relay), and, in a call, to the peer. */
export interface ClientUdpSocket {
  /** A datagram to the server (or the --udp-via relay). */
  send(datagram: Buffer): void;
  /** A datagram to a peer of a call, from the same socket (so its NAT maps it to the port the server saw). */
  sendTo(datagram: Buffer, to: { address: string; port: number }): void;
  close(): void;
}

/**
 * A UDP socket of the target's family (udp4/udp6, as the TCP connection), bound to any port.
 * Datagrams from the target's address and port go to `onDatagram`; from anyone else (a call's
 * peer, or a stranger: anyone can send to our port) to `onOther`, which checks them (call-path.ts).
 */
export async function openUdpSocket(
  target: DatagramTarget,
  onDatagram: (datagram: Buffer) => void,
  onOther: (datagram: Buffer, from: { address: string; port: number }) => void = () => {},
): Promise<ClientUdpSocket> {
  const address = isIP(target.host) ? target.host : (await lookup(target.host)).address;
  const family = isIP(address) === 6 ? 'udp6' : 'udp4';
  const socket: DatagramSocket = createSocket(family);
  socket.on('message', (datagram, from) => {
    if (from.port === target.port && sameAddress(from.address, address)) onDatagram(datagram);
    else onOther(datagram, { address: plainAddress(from.address), port: from.port });
  });
  // A datagram to a closed port comes back as ECONNREFUSED on some systems: that is a lost
  // PING (the fallback handles it), not a reason to stop.
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.bind(0, resolve));
  return {
    send: (datagram) => socket.send(datagram, target.port, address),
    sendTo: (datagram, to) => {
      // A udp6 socket (dual-stack) reaches an IPv4 peer as ::ffff:a.b.c.d; a udp4 socket cannot
      // reach an IPv6 peer at all: nothing is sent, and the call falls back to the relay.
      const peer = plainAddress(to.address);
      if (family === 'udp6') socket.send(datagram, to.port, isIP(peer) === 4 ? `::ffff:${peer}` : peer);
      else if (isIP(peer) === 4) socket.send(datagram, to.port, peer);
    },
    close: () => socket.close(),
  };
}

/** "::ffff:1.2.3.4" (an IPv4 address on a dual-stack socket) as "1.2.3.4". */
function plainAddress(address: string): string {
  return address.replace(/^::ffff:(?=\d+\.)/, '');
}

function sameAddress(a: string, b: string): boolean {
  return plainAddress(a) === plainAddress(b);
}

/** Per-speaker numbers, as voice-receiver.ts keeps them. */
export interface SpeakerLine {
  id: number;
  received: number;
  lost: number;
  jitterMs: number;
  fecRecovered: number;
  concealed: number;
  late: number;
  duplicates: number;
}

/**
 * What the `stats` command (and the line at exit) shows: the path with its round trip and
 * upstream loss, then one line per speaker heard. `path` is null with --tcp.
 */
export function statsLines(path: PathStats | null, speakers: readonly SpeakerLine[], nameOf: (id: number) => string): string[] {
  const lines: string[] = [];
  if (path === null) {
    lines.push('stats: path tcp (--tcp: no UDP)');
  } else {
    const ms = (value: number | undefined) => (value === undefined ? '-' : `${value.toFixed(1)} ms`);
    const loss = path.upstreamLossPercent === undefined ? 'unknown (no PONG yet)' : `${path.upstreamLossPercent.toFixed(1)} %`;
    lines.push(
      `stats: path ${path.path}${path.state === 'waiting' ? ' (waiting for a PONG)' : ''}, RTT last ${ms(path.rttLastMs)} mean ${ms(path.rttMeanMs)} ` +
        `(${path.pongsReceived} PONGs for ${path.pingsSent} PINGs), upstream loss ${loss} of ${path.datagramsSent} datagrams, ` +
        `switched to tcp ${path.switchesToTcp}x, to udp ${path.switchesToUdp}x`,
    );
  }
  for (const speaker of speakers) {
    const expected = speaker.received + speaker.late + speaker.lost;
    const percent = expected === 0 ? 0 : (100 * speaker.lost) / expected;
    lines.push(
      `stats: from ${nameOf(speaker.id)}: ${speaker.received} packets, lost ${speaker.lost} (${percent.toFixed(1)} %), jitter ${speaker.jitterMs.toFixed(1)} ms, ` +
        `${speaker.fecRecovered} rebuilt from FEC, ${speaker.concealed} concealed, ${speaker.late} late, ${speaker.duplicates} duplicates dropped`,
    );
  }
  return lines;
}
