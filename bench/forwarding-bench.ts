// npm run bench -- --stage 05: the stage 05 server (it FORWARDS each Opus packet to the speaker's
// room-mates, no tick) under murmur's load shape, so the two can be compared number for number:
// N users in rooms of K, everyone talking, one PACKET_BYTES packet every 20 ms each (staggered over
// the 20 ms), every client reads everything. Each packet's first 8 bytes carry its send time, so
// every copy's send -> receive time is measured in this process (one clock), as murmur's harness
// does. The server runs as its own process, pinned to its own CPU (bench/pinning.ts), and is
// measured from outside through /proc (bench/server-process.ts).
import { connect, type Socket } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { FRAME_MS } from '#shared/audio/format.ts';
import { FrameParser } from '#shared/framing/frame-parser.ts';
import { clientVoiceFrame, helloFrame, MessageType, serverMessageLimit } from '../05-opus/protocol.ts';
import { percentile } from './latency-probe.ts';
import { loadAverage } from './machine.ts';
import { pinThisProcess, planPinning, unpinThisProcess } from './pinning.ts';
import { ServerProcess } from './server-process.ts';

/** murmur's harness uses 60 bytes of fake Opus (about 24 kbit/s); so do we, to compare like with like. */
export const OPUS_PACKET_BYTES = 60;
/** murmur's harness calls a client that got 98% of its expected copies in the window "kept up". */
const KEPT_UP_SHARE = 0.98;
const KEPT_UP_P99_MS = 100;

export interface ForwardingOptions {
  clients: number;
  roomSize: number;
  seconds: number;
  warmupSeconds: number;
  pin: boolean;
  packetBytes?: number;
  /** Extra node flags for the server, e.g. --cpu-prof (bench/run.ts). */
  serverNodeFlags?: string[];
}

export interface ForwardingResult {
  command: string;
  stage: '05';
  clients: number;
  room_size: number;
  packet_bytes: number;
  seconds: number;
  pinning: string;
  /** How the server writes: as shipped, or an alternative bench/forwarding-server.ts measures ($FORWARDING_WRITE_STRATEGY). */
  server_writes: string;
  packets_sent_per_s: number;
  copies_received_per_s: number;
  /** Server CPU (utime + stime of its process group) over the packets it took in and forwarded: copies / (K - 1), as murmur's harness counts. */
  cpu_us_per_received_packet: number;
  cpu_us_per_forwarded_copy: number;
  server_cpu_pct: number;
  latency_ms_p50: number;
  latency_ms_p99: number;
  latency_ms_max: number;
  /** The worst client's copies in the window over what it should get ((K - 1) per 20 ms). */
  worst_client_share: number;
  kept_up: boolean;
  server_rss_mb_idle: number;
  server_rss_mb: number;
  /** The load generator (this process, which also times every copy): its CPU, and how late its event loop ran. A late
   * loop delays reading, so it shows in the latency without being the server's: compare its p99 with latency_ms_p99. */
  load_cpu_pct: number;
  load_event_loop_delay_ms_p99: number;
  machine_load_average: number;
}

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

export async function runForwardingBenchmark(options: ForwardingOptions, command: string): Promise<ForwardingResult> {
  const packetBytes = Math.max(8, options.packetBytes ?? OPUS_PACKET_BYTES);
  const pinning = planPinning(options.pin);
  const { server, port } = await ServerProcess.start({ stage: '05', nodeFlags: options.serverNodeFlags, pinning: pinning.pinned ? pinning : undefined });
  const stopOnExit = () => server.killNow();
  process.on('exit', stopOnExit);
  // The load (this process) on the other CPUs, so it does not compete with the server's core.
  pinThisProcess(pinning);
  const sockets: Socket[] = [];
  const received = new Array<number>(options.clients).fill(0);
  const sequences = new Array<number>(options.clients).fill(0);
  const latencies: number[] = [];
  let measuring = false;
  let talk: NodeJS.Timeout | undefined;
  try {
    const rssIdle = server.rssBytes();
    const welcomed: Promise<void>[] = [];
    for (let i = 0; i < options.clients; i++) {
      const socket = connect({ host: '127.0.0.1', port });
      socket.setNoDelay(true);
      welcomed.push(
        new Promise((resolve, reject) => {
          socket.on('error', reject);
          const parser = new FrameParser({
            maxPayload: serverMessageLimit,
            onFrame: (type, payload) => {
              if (type === MessageType.welcome) resolve();
              if (type !== MessageType.voice || !measuring) return;
              received[i]!++;
              latencies.push(performance.now() - payload.readDoubleLE(4)); // speaker(2) + sequence(2), then the packet
            },
          });
          socket.on('data', (chunk: Buffer) => parser.push(chunk));
        }),
      );
      socket.write(helloFrame(`load-${i}`, `room-${Math.floor(i / options.roomSize)}`));
      sockets.push(socket);
    }
    await Promise.all(welcomed);
    // Client i sends at start + i·20/N ms + k·20 ms; a late timer sends the backlog (no drift).
    const start = performance.now();
    const due = sockets.map((_, i) => start + (i * FRAME_MS) / options.clients);
    const packet = Buffer.alloc(packetBytes, 0x5a);
    talk = setInterval(() => {
      const now = performance.now();
      for (let i = 0; i < sockets.length; i++) {
        while (due[i]! <= now) {
          packet.writeDoubleLE(performance.now(), 0);
          sockets[i]!.write(clientVoiceFrame(sequences[i]!, packet));
          sequences[i] = (sequences[i]! + 1) & 0xffff;
          due[i]! += FRAME_MS;
        }
      }
    }, 1);
    await sleep(options.warmupSeconds * 1000);
    const cpuBefore = server.cpuMicros();
    const loadCpuBefore = process.cpuUsage();
    const loopDelay = monitorEventLoopDelay({ resolution: 1 });
    loopDelay.enable();
    let sent = -sequences.reduce((a, b) => a + b, 0);
    measuring = true;
    const t0 = performance.now();
    await sleep(options.seconds * 1000);
    measuring = false;
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = server.cpuMicros() - cpuBefore;
    const loadCpu = process.cpuUsage(loadCpuBefore);
    loopDelay.disable();
    sent += sequences.reduce((a, b) => a + b, 0);
    const rss = server.rssBytes();
    clearInterval(talk);
    const copies = received.reduce((a, b) => a + b, 0);
    // Everyone's room-mates: a last room smaller than K hears fewer.
    const expected = received.map((_, i) => {
      const roomStart = Math.floor(i / options.roomSize) * options.roomSize;
      return (Math.min(options.clients, roomStart + options.roomSize) - roomStart - 1) * (elapsed * 1000) / FRAME_MS;
    });
    const worst = Math.min(...received.map((r, i) => (expected[i]! > 0 ? r / expected[i]! : 1)));
    const p99 = percentile(latencies, 99);
    return {
      command,
      stage: '05',
      clients: options.clients,
      room_size: options.roomSize,
      packet_bytes: packetBytes,
      seconds: round(elapsed, 2),
      pinning: pinning.description,
      server_writes: process.env.FORWARDING_WRITE_STRATEGY ?? 'corked',
      packets_sent_per_s: Math.round(sent / elapsed),
      copies_received_per_s: Math.round(copies / elapsed),
      cpu_us_per_received_packet: round(cpu / Math.max(1, copies / (options.roomSize - 1))),
      cpu_us_per_forwarded_copy: round(cpu / Math.max(1, copies), 2),
      server_cpu_pct: round((cpu / 1e6 / elapsed) * 100),
      latency_ms_p50: round(percentile(latencies, 50), 2),
      latency_ms_p99: round(p99, 2),
      latency_ms_max: round(percentile(latencies, 100), 2),
      worst_client_share: round(worst, 3),
      kept_up: worst >= KEPT_UP_SHARE && p99 < KEPT_UP_P99_MS,
      server_rss_mb_idle: round(rssIdle / 2 ** 20),
      server_rss_mb: round(rss / 2 ** 20),
      load_cpu_pct: round(((loadCpu.user + loadCpu.system) / 1e6 / elapsed) * 100),
      load_event_loop_delay_ms_p99: round(loopDelay.percentile(99) / 1e6, 2),
      machine_load_average: round(loadAverage(), 2),
    };
  } finally {
    if (talk) clearInterval(talk);
    for (const socket of sockets) socket.destroy();
    unpinThisProcess(pinning);
    await server.stop();
    process.off('exit', stopOnExit);
  }
}

export function forwardingTable(r: ForwardingResult): string {
  const rows: [string, string][] = [
    ['load', `${r.clients} clients in rooms of ${r.room_size}, all talking, one ${r.packet_bytes}-byte packet per ${FRAME_MS} ms each; ${r.seconds} s measured`],
    ['pinning', r.pinning],
    ['server writes', r.server_writes === 'corked' ? 'corked per event-loop turn (as the stage ships)' : `${r.server_writes} (FORWARDING_WRITE_STRATEGY: not the stage as it ships)`],
    ['packets', `sent ${r.packets_sent_per_s}/s, copies received ${r.copies_received_per_s}/s`],
    ['server CPU', `${r.server_cpu_pct}% of one core; ${r.cpu_us_per_received_packet} µs per received packet, ${r.cpu_us_per_forwarded_copy} µs per forwarded copy`],
    ['latency added', `send -> receive per copy: p50 ${r.latency_ms_p50} ms, p99 ${r.latency_ms_p99} ms, max ${r.latency_ms_max} ms`],
    ['kept up', `${r.kept_up ? 'yes' : 'no'} (worst client got ${(r.worst_client_share * 100).toFixed(1)}% of its copies; needs ≥ ${KEPT_UP_SHARE * 100}% and p99 < ${KEPT_UP_P99_MS} ms)`],
    ['server RSS', `${r.server_rss_mb_idle} MB idle -> ${r.server_rss_mb} MB at the end of the window`],
    ['load generator', `${r.load_cpu_pct}% of one core; its event loop ran late by p99 ${r.load_event_loop_delay_ms_p99} ms (that much of the latency can be its own)`],
    ['machine', `load average ${r.machine_load_average}`],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join('\n');
}
