// Load on the stage 05 forwarding server, and the cheapest way for it to write:
//
//   npx tsx bench/forwarding-load.ts                          # 200 clients, rooms of 8, both write strategies
//   npx tsx bench/forwarding-load.ts --clients 100 --seconds 5 --strategy direct
//
// Every client talks: one VOICE (sequence + a PACKET_BYTES packet) every 20 ms, staggered over
// the 20 ms so arrivals are spread as real talkers' are. The packet's first 8 bytes carry the
// send time, so each listener measures how long the packet took through the server (this process
// sends and receives, so it is one clock). The server runs as its own process
// (bench/forwarding-server.ts) and is measured from outside through /proc: CPU time, and write
// system calls (syscw in /proc/PID/io). Printed per strategy: VOICE in, copies out, CPU per copy,
// write calls per copy, and the latency p50/p99 this process saw (which includes its own event
// loop: an upper bound of what the server adds).
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { FRAME_MS } from '#shared/audio/format.ts';
import { FrameParser } from '#shared/framing/frame-parser.ts';
import { clientVoiceFrame, helloFrame, MessageType, serverMessageLimit } from '../05-opus/protocol.ts';
import { cpuMicros, groupMembers } from '../conformance/harness/proc-stats.ts';
import { shellQuote } from '../conformance/harness/run-command.ts';
import { startServerProcess } from '../conformance/harness/server-process.ts';
import { describeMachine, loadAverage } from './machine.ts';
import { REPO_ROOT } from './server-process.ts';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '200' },
    'room-size': { type: 'string', default: '8' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    'packet-bytes': { type: 'string', default: '60' },
    strategy: { type: 'string', default: 'both' },
  },
});
const CLIENTS = Number(values.clients);
const ROOM_SIZE = Number(values['room-size']);
const SECONDS = Number(values.seconds);
const WARMUP_SECONDS = Number(values.warmup);
const PACKET_BYTES = Math.max(8, Number(values['packet-bytes']));
const STRATEGIES = values.strategy === 'both' ? ['corked', 'direct'] : [values.strategy!];

interface Client {
  socket: Socket;
  nextDue: number;
  sequence: number;
}

/** Write system calls of the processes in `pids` (syscw of /proc/PID/io). */
function writeCalls(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      total += Number(/^syscw:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0);
    } catch {
      // gone, or not ours to read
    }
  }
  return total;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

async function measure(strategy: string) {
  const command = [process.execPath, '--import', 'tsx', 'bench/forwarding-server.ts', '127.0.0.1', '0', strategy].map(shellQuote).join(' ');
  const server = await startServerProcess(command, { cwd: REPO_ROOT, port: 0 });
  const clients: Client[] = [];
  const latencies: number[] = [];
  let measuring = false;
  let received = 0;
  try {
    const welcomed: Promise<void>[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      const socket = connect({ host: server.host, port: server.port });
      socket.setNoDelay(true);
      let welcome!: () => void;
      welcomed.push(new Promise((resolve) => (welcome = resolve)));
      const parser = new FrameParser({
        maxPayload: serverMessageLimit,
        onFrame: (type, payload) => {
          if (type === MessageType.welcome) welcome();
          if (type !== MessageType.voice || !measuring) return;
          received++;
          latencies.push(performance.now() - payload.readDoubleLE(4));
        },
      });
      socket.on('data', (chunk: Buffer) => parser.push(chunk));
      socket.on('error', () => {});
      socket.write(helloFrame(`load-${i}`, `room-${Math.floor(i / ROOM_SIZE)}`));
      clients.push({ socket, nextDue: 0, sequence: 0 });
    }
    await Promise.all(welcomed);
    // Each client talks every 20 ms, at its own offset within the 20 ms.
    const start = performance.now();
    clients.forEach((client, i) => (client.nextDue = start + (i * FRAME_MS) / CLIENTS));
    const packet = Buffer.alloc(PACKET_BYTES, 0x5a);
    const talk = setInterval(() => {
      const now = performance.now();
      for (const client of clients) {
        while (client.nextDue <= now) {
          packet.writeDoubleLE(performance.now(), 0);
          client.socket.write(clientVoiceFrame(client.sequence, packet));
          client.sequence = (client.sequence + 1) & 0xffff;
          client.nextDue += FRAME_MS;
        }
      }
    }, 1);
    await new Promise((resolve) => setTimeout(resolve, WARMUP_SECONDS * 1000));
    const pids = groupMembers(server.pid);
    const cpuBefore = cpuMicros(pids);
    const writesBefore = writeCalls(pids);
    const sentBefore = clients.reduce((sum, c) => sum + c.sequence, 0);
    measuring = true;
    const t0 = performance.now();
    await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
    measuring = false;
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = cpuMicros(pids) - cpuBefore;
    const writes = writeCalls(pids) - writesBefore;
    const sent = clients.reduce((sum, c) => sum + c.sequence, 0) - sentBefore;
    clearInterval(talk);
    latencies.sort((a, b) => a - b);
    return {
      strategy,
      voiceInPerSecond: Math.round(sent / elapsed),
      copiesOutPerSecond: Math.round(received / elapsed),
      serverCpuPercent: Math.round((cpu / 1e6 / elapsed) * 1000) / 10,
      cpuMicrosPerCopy: Math.round((cpu / Math.max(1, received)) * 100) / 100,
      writeCallsPerCopy: Math.round((writes / Math.max(1, received)) * 1000) / 1000,
      latencyMs: { p50: +percentile(latencies, 0.5).toFixed(2), p99: +percentile(latencies, 0.99).toFixed(2), max: +percentile(latencies, 1).toFixed(2) },
    };
  } finally {
    for (const client of clients) client.socket.destroy();
    await server.stop();
  }
}

console.log(`stage 05 forwarding load: ${CLIENTS} clients in rooms of ${ROOM_SIZE}, each one ${PACKET_BYTES}-byte packet per ${FRAME_MS} ms; ${SECONDS} s measured after ${WARMUP_SECONDS} s`);
const machine = describeMachine();
console.log(`machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}; load average before: ${loadAverage()}`);
console.log('strategy | VOICE in/s | copies out/s | server CPU (% of a core) | CPU µs per copy | write calls per copy | latency p50 / p99 / max ms');
for (const strategy of STRATEGIES) {
  const r = await measure(strategy);
  console.log(`${r.strategy} | ${r.voiceInPerSecond} | ${r.copiesOutPerSecond} | ${r.serverCpuPercent} | ${r.cpuMicrosPerCopy} | ${r.writeCallsPerCopy} | ${r.latencyMs.p50} / ${r.latencyMs.p99} / ${r.latencyMs.max}`);
}
