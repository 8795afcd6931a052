// A lossy path you can put between UDP clients and a server: a relay that drops, delays (with
// jitter), duplicates and reorders datagrams, in both directions, the same way every time for a
// given seed. Stage 06's tests and demo use it to make loss happen on purpose.
//
//   const relay = await startLossyRelay({ target: { host: '127.0.0.1', port: serverUdpPort },
//                                         lossPercent: 5, delayMs: 20, jitterMs: 10, seed: 7 });
//   // point the client at 127.0.0.1:relay.port instead of the server
//   relay.counters.toServer.dropped; relay.counters.toClient.delivered; ...
//   await relay.close();
//
// Like a NAT, the relay talks to the server from one socket of its own per client address, so
// the server sees each client at an address the client does not know (the case stage 06's
// "bind the address from the first datagram" rule is for).
//
// The fate of datagram number n in a direction depends only on the seed and n: each datagram
// draws the same number of random values, so loss patterns repeat exactly for a seed.
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';

export interface LossyPathOptions {
  /** Each datagram is dropped with this probability (0-100 %). */
  lossPercent?: number;
  /** Every datagram that is not dropped waits this long (ms). */
  delayMs?: number;
  /** Plus a uniformly random 0..jitterMs (ms). Jitter alone never reorders: a datagram never leaves before the one ahead of it. */
  jitterMs?: number;
  /** Each datagram is sent twice with this probability (0-100 %); the copy follows at once. */
  duplicatePercent?: number;
  /** Each datagram is held back an extra `reorderDelayMs` with this probability (0-100 %), so later ones overtake it. */
  reorderPercent?: number;
  /** How long a reordered datagram is held back (ms); default 50 (2.5 voice frames). */
  reorderDelayMs?: number;
  /** The same seed gives the same drops, delays, copies and reorders. */
  seed?: number;
}

export interface LossyRelayOptions extends LossyPathOptions {
  /** Where the server is. */
  target: { host: string; port: number };
  /** Where the relay listens for clients; port 0 (default) lets the system choose. */
  listenHost?: string;
  listenPort?: number;
  /** Clients (source addresses) it relays for at once; datagrams from more are dropped and counted. Default 64. */
  maxClients?: number;
}

export interface DirectionCounters {
  /** Datagrams that reached the relay in this direction. */
  received: number;
  dropped: number;
  /** Extra copies sent. */
  duplicated: number;
  /** Datagrams held back so that later ones overtook them. */
  reordered: number;
  /** Datagrams sent on, copies included: received - dropped + duplicated once all are out. */
  delivered: number;
}

export interface LossyRelayCounters {
  toServer: DirectionCounters;
  toClient: DirectionCounters;
  /** Datagrams dropped because maxClients addresses were already in use. */
  tooManyClients: number;
}

export interface LossyRelay {
  /** The port clients send to. */
  readonly port: number;
  readonly host: string;
  readonly counters: LossyRelayCounters;
  /** Datagrams still waiting for their delay to pass (both directions). */
  pending(): number;
  /** Stops relaying; datagrams still delayed are dropped (not counted as delivered). */
  close(): Promise<void>;
}

/** mulberry32: a small, fast, seedable PRNG (public domain); uniform floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** What the path does to one datagram. */
export interface DatagramFate {
  dropped: boolean;
  /** Wait before sending, ms (before the no-overtaking rule). */
  delayMs: number;
  duplicated: boolean;
  reordered: boolean;
}

/** Decides datagrams' fates in order; the n-th decision depends only on the seed and n. */
export function lossyPath(options: LossyPathOptions): () => DatagramFate {
  const { lossPercent = 0, delayMs = 0, jitterMs = 0, duplicatePercent = 0, reorderPercent = 0, reorderDelayMs = 50, seed = 1 } = options;
  for (const [name, value] of Object.entries({ lossPercent, duplicatePercent, reorderPercent })) {
    if (!(value >= 0 && value <= 100)) throw new RangeError(`${name} ${value} is not a percentage from 0 to 100`);
  }
  for (const [name, value] of Object.entries({ delayMs, jitterMs, reorderDelayMs })) {
    if (!(value >= 0 && value <= 10_000)) throw new RangeError(`${name} ${value} is not from 0 to 10000 ms`);
  }
  const random = seededRandom(seed);
  return () => {
    // Always four draws, whatever the outcome, so datagram n's fate never depends on earlier fates.
    const [lossDraw, jitterDraw, duplicateDraw, reorderDraw] = [random(), random(), random(), random()];
    const reordered = reorderDraw * 100 < reorderPercent;
    return {
      dropped: lossDraw * 100 < lossPercent,
      delayMs: delayMs + jitterDraw * jitterMs + (reordered ? reorderDelayMs : 0),
      duplicated: duplicateDraw * 100 < duplicatePercent,
      reordered,
    };
  };
}

function emptyCounters(): DirectionCounters {
  return { received: 0, dropped: 0, duplicated: 0, reordered: 0, delivered: 0 };
}

interface Waiting {
  due: number;
  data: Buffer;
  send: (data: Buffer) => void;
}

/** One direction of the path: fates, a due-time queue, and one timer for its head. */
class Direction {
  private readonly fate: () => DatagramFate;
  private readonly queue: Waiting[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** When the last in-order datagram leaves: jitter never lets a later one leave before it. */
  private lastInOrderDue = 0;
  readonly counters = emptyCounters();

  constructor(options: LossyPathOptions, seed: number) {
    this.fate = lossyPath({ ...options, seed });
  }

  pass(data: Buffer, send: (data: Buffer) => void): void {
    this.counters.received++;
    const fate = this.fate();
    if (fate.dropped) {
      this.counters.dropped++;
      return;
    }
    const now = performance.now();
    let due = now + fate.delayMs;
    if (fate.reordered) this.counters.reordered++;
    else due = this.lastInOrderDue = Math.max(due, this.lastInOrderDue);
    const copies = fate.duplicated ? 2 : 1;
    if (fate.duplicated) this.counters.duplicated++;
    for (let i = 0; i < copies; i++) this.enqueue({ due, data, send });
  }

  pending(): number {
    return this.queue.length;
  }

  stop(): void {
    clearTimeout(this.timer);
    this.queue.length = 0;
  }

  private enqueue(item: Waiting): void {
    // Insert after every item due no later (stable: equal due times keep arrival order).
    let i = this.queue.length;
    while (i > 0 && this.queue[i - 1].due > item.due) i--;
    this.queue.splice(i, 0, item);
    if (i === 0) this.schedule();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    if (this.queue.length === 0) return;
    const wait = this.queue[0].due - performance.now();
    if (wait <= 0) {
      // Due already (no delay configured): send now, in order, without a timer turn.
      this.flush();
      return;
    }
    this.timer = setTimeout(() => this.flush(), wait);
  }

  private flush(): void {
    const now = performance.now();
    while (this.queue.length > 0 && this.queue[0].due <= now) {
      const item = this.queue.shift()!;
      this.counters.delivered++;
      item.send(item.data);
    }
    this.schedule();
  }
}

/** Starts a relay; resolves once it listens. */
export async function startLossyRelay(options: LossyRelayOptions): Promise<LossyRelay> {
  const { target, listenHost = '127.0.0.1', listenPort = 0, maxClients = 64, seed = 1 } = options;
  const toServer = new Direction(options, seed);
  // A different (but fixed) stream for the other direction, so its pattern is not a mirror.
  const toClient = new Direction(options, (seed ^ 0x9e3779b9) >>> 0);
  const counters: LossyRelayCounters = { toServer: toServer.counters, toClient: toClient.counters, tooManyClients: 0 };
  const family = (host: string) => (isIPv6(host) ? 'udp6' : 'udp4');

  const listening = dgram.createSocket(family(listenHost));
  /** client "address|port" -> the socket that speaks for that client to the server */
  const upstreams = new Map<string, dgram.Socket>();

  function upstreamFor(address: string, port: number): dgram.Socket | undefined {
    const key = `${address}|${port}`;
    let socket = upstreams.get(key);
    if (socket) return socket;
    if (upstreams.size >= maxClients) return undefined;
    socket = dgram.createSocket(family(target.host));
    socket.on('message', (reply) => {
      toClient.pass(reply, (data) => listening.send(data, port, address));
    });
    socket.on('error', () => {}); // e.g. ICMP port unreachable while the server restarts: a lossy path shrugs
    socket.bind(0);
    upstreams.set(key, socket);
    return socket;
  }

  listening.on('message', (data, from) => {
    const upstream = upstreamFor(from.address, from.port);
    if (!upstream) {
      counters.tooManyClients++;
      return;
    }
    toServer.pass(data, (bytes) => upstream.send(bytes, target.port, target.host));
  });
  listening.on('error', () => {});

  await new Promise<void>((resolve, reject) => {
    listening.once('error', reject);
    listening.bind(listenPort, listenHost, () => {
      listening.off('error', reject);
      resolve();
    });
  });

  return {
    port: listening.address().port,
    host: listenHost,
    counters,
    pending: () => toServer.pending() + toClient.pending(),
    async close() {
      toServer.stop();
      toClient.stop();
      const sockets = [listening, ...upstreams.values()];
      upstreams.clear();
      await Promise.all(sockets.map((socket) => new Promise<void>((resolve) => socket.close(() => resolve()))));
    },
  };
}
