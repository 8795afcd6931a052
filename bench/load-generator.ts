// The load: N stage-04 users in their own process (the server gets the other core), started by
// run.ts with fork(). Every talker sends one 20 ms AUDIO frame every 20 ms; every user reads all
// it is sent. One drift-free timer loop drives them all: frame k of a talker is due at
// start + phase + k * 20 ms, where the talkers are spread over 4 phases 5 ms apart, the way
// independent people's frames would arrive spread over the tick rather than in one burst.
import { FrameClock } from '#shared/audio/frame-clock.ts';
import { FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE } from '#shared/audio/format.ts';
import { audioFrame } from '../04-rooms/protocol.ts';
import { BenchClient, joinAll } from './bench-client.ts';
import { planUsers, type LoadPlan } from './load-plan.ts';

export const SEND_PHASES = 4;
/** A send this late (ms after its due time) means the load generator itself could not keep up. */
export const LATE_SEND_MS = 5;

export type ToLoad =
  | { type: 'start'; host: string; port: number; plan: LoadPlan }
  | { type: 'snapshot' }
  | { type: 'stop' };

export interface LoadCounters {
  framesSent: number;
  bytesSent: number;
  audioFramesReceived: number;
  bytesReceived: number;
  /** Sends more than LATE_SEND_MS after their due time. */
  lateSends: number;
  /** This process's CPU time, user + system, in microseconds. */
  cpuMicros: number;
}

export type FromLoad =
  | { type: 'ready'; talkers: number }
  | { type: 'snapshot'; counters: LoadCounters }
  | { type: 'failed'; message: string };

/** A quiet 450 Hz tone (a whole number of cycles per frame): 8 talkers sum without clipping. */
function toneFrame(): Buffer {
  const pcm = Buffer.alloc(FRAME_BYTES);
  for (let i = 0; i < FRAME_SAMPLES; i++) pcm.writeInt16LE(Math.round(3000 * Math.sin((2 * Math.PI * 450 * i) / SAMPLE_RATE)), i * 2);
  return audioFrame(pcm);
}

let clients: BenchClient[] = [];
let lateSends = 0;
let clock: FrameClock | null = null;

function reply(message: FromLoad): void {
  process.send!(message);
}

async function start(host: string, port: number, plan: LoadPlan): Promise<void> {
  const users = planUsers(plan);
  clients = users.map((user) => new BenchClient(user.name, user.room));
  await joinAll(clients, host, port);
  const phases: BenchClient[][] = Array.from({ length: SEND_PHASES }, () => []);
  users.forEach((user, i) => {
    if (user.talks) phases[i % SEND_PHASES]!.push(clients[i]!);
  });
  const frame = toneFrame(); // the same bytes every time: the load allocates nothing per frame
  clock = new FrameClock(
    (tick, lateness) => {
      if (lateness > LATE_SEND_MS) lateSends++;
      for (const talker of phases[tick % SEND_PHASES]!) talker.send(frame);
    },
    { periodMs: FRAME_MS / SEND_PHASES },
  );
  clock.start();
  reply({ type: 'ready', talkers: users.filter((user) => user.talks).length });
}

function counters(): LoadCounters {
  const cpu = process.cpuUsage();
  const total: LoadCounters = { framesSent: 0, bytesSent: 0, audioFramesReceived: 0, bytesReceived: 0, lateSends, cpuMicros: cpu.user + cpu.system };
  for (const client of clients) {
    total.framesSent += client.framesSent;
    total.bytesSent += client.bytesSent;
    total.audioFramesReceived += client.audioFramesReceived;
    total.bytesReceived += client.bytesReceived;
  }
  return total;
}

process.on('message', (message: ToLoad) => {
  if (message.type === 'start') {
    start(message.host, message.port, message.plan).catch((error: Error) => reply({ type: 'failed', message: error.message }));
  } else if (message.type === 'snapshot') {
    reply({ type: 'snapshot', counters: counters() });
  } else {
    clock?.stop();
    for (const client of clients) client.leave();
    // Give the BYEs a moment to leave, then go (the parent kills us anyway if we linger).
    setTimeout(() => process.exit(0), 200);
  }
});
// If the parent dies, so do we: a load generator must never outlive its benchmark.
process.on('disconnect', () => process.exit(0));
