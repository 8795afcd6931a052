// When a server could first have seen anything waiting for a client that never reads: its kernels'
// buffers for that connection (the server's send queue and the client's receive queue, read from
// /proc/net/tcp) stop growing only when both are full, and only then does a write of the server
// leave bytes in its own queue. A slow-consumer limit counted from any earlier moment is too short.
// The watch samples both queues and the server's end of the connection (still ESTABLISHED, or
// closed) every SAMPLE_MS while the check waits: reading /proc/net/tcp costs tens of ms on a
// machine with thousands of sockets (TIME_WAIT after test runs), so not more often; the moment the
// buffers filled is interpolated between two samples (they fill at the talkers' steady rate).
import { tcpTablesText } from '../harness/proc-stats.ts';

export const SAMPLE_MS = 500;
const ESTABLISHED = '01';
/** The share of its highest that the kernels' bytes must reach to count as full (the top is never quite flat). */
const FULL_SHARE = 0.97;

interface Sample {
  at: number;
  heldBytes: number;
  /** The server's end of the connection is still open (seen ESTABLISHED). */
  open: boolean;
}

interface TcpRow {
  state: string;
  txQueue: number;
  rxQueue: number;
}

const hexPort = (port: number) => port.toString(16).toUpperCase().padStart(4, '0');

/** The rows of /proc/net/tcp (and tcp6) of the connections from port `local` to port `remote`, found by a native search. */
function tcpRowsFor(text: string, local: number, remote: number): TcpRow[] {
  const rows: TcpRow[] = [];
  const pattern = new RegExp(`^ *\\d+: [0-9A-F]+:${hexPort(local)} [0-9A-F]+:${hexPort(remote)} ([0-9A-F]{2}) ([0-9A-F]+):([0-9A-F]+)`, 'gm');
  for (const match of text.matchAll(pattern)) rows.push({ state: match[1]!, txQueue: parseInt(match[2]!, 16), rxQueue: parseInt(match[3]!, 16) });
  return rows;
}

export class KernelQueueWatch {
  private readonly samples: Sample[] = [];
  private readonly timer: NodeJS.Timeout;
  private sawServerEnd = false;

  /** `clientPort`: the never-reading client's local port; `serverPort`: the port it connected to. */
  constructor(private readonly clientPort: number, private readonly serverPort: number) {
    this.sample();
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
    this.timer.unref();
  }

  private sample(): void {
    const text = tcpTablesText();
    const client = tcpRowsFor(text, this.clientPort, this.serverPort)[0];
    const server = tcpRowsFor(text, this.serverPort, this.clientPort)[0];
    const open = server !== undefined && server.state === ESTABLISHED;
    if (open) this.sawServerEnd = true;
    this.samples.push({ at: performance.now(), heldBytes: (client?.rxQueue ?? 0) + (open ? server.txQueue : 0), open });
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /**
   * When the kernels' buffers were full (the first sample at FULL_SHARE of the most they held while
   * the server's end was open: no server saw anything waiting before) and when the client was cut:
   * `cutSeenAt` (what the check saw: LEFT, or its slot free again) or the server's end seen closed,
   * whichever came first. Undefined when the server's end was never seen (a server on another
   * machine or in another network namespace).
   */
  result(cutSeenAt: number): { fullAt: number; mostHeldBytes: number; cutAt: number } | undefined {
    if (!this.sawServerEnd) return undefined;
    const firstOpen = this.samples.findIndex((s) => s.open);
    const closed = this.samples.find((s, i) => i > firstOpen && !s.open);
    const cutAt = Math.min(cutSeenAt, closed?.at ?? Infinity);
    const whileOpen = this.samples.filter((s) => s.open && s.at <= cutAt);
    if (whileOpen.length === 0) return undefined;
    const mostHeldBytes = Math.max(...whileOpen.map((s) => s.heldBytes));
    const fullBytes = FULL_SHARE * mostHeldBytes;
    const fullIndex = whileOpen.findIndex((s) => s.heldBytes >= fullBytes);
    const full = whileOpen[fullIndex]!;
    const before = whileOpen[fullIndex - 1];
    // Between the sample before and the first one at FULL_SHARE, the bytes grew at a steady rate.
    const fullAt = before === undefined ? full.at : before.at + ((fullBytes - before.heldBytes) / (full.heldBytes - before.heldBytes)) * (full.at - before.at);
    return { fullAt, mostHeldBytes, cutAt };
  }
}
