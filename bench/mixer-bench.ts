// Micro-benchmark of the mixing arithmetic alone, no sockets: RoomMixer for one room of K
// talkers (K add() + K mixFor()) against the memory bound, a plain Buffer.copy of the same bytes
// (each input frame read once, each output frame written once). Reported as mixed samples per
// second: how many listeners' 20 ms frames one core could mix if mixing were all it did.
import { FRAME_BYTES, FRAME_SAMPLES } from '#shared/audio/format.ts';
import { RoomMixer } from '#shared/mixer.ts';

export interface MixerBenchResult {
  room_size: number;
  mixer_samples_per_s: number;
  copy_samples_per_s: number;
  /** How many times slower the mixer is than copying the bytes. */
  mixer_vs_copy: number;
  /** Listeners (20 ms frames, 50 per second) the mixer alone could serve on one core. */
  mixer_listeners_per_core: number;
}

function randomFrame(): Buffer {
  const frame = Buffer.alloc(FRAME_BYTES);
  for (let i = 0; i < FRAME_SAMPLES; i++) frame.writeInt16LE(Math.round((Math.random() - 0.5) * 20_000), i * 2);
  return frame;
}

/** Runs `tick` repeatedly for about `ms` milliseconds; returns ticks per second. */
function ticksPerSecond(tick: () => void, ms: number): number {
  for (let i = 0; i < 200; i++) tick(); // warm up: let the JIT compile it
  let ticks = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 100; i++) tick();
    ticks += 100;
    now = performance.now();
  }
  return (ticks * 1000) / (now - start);
}

export function mixerBenchmark(roomSize: number, ms = 1_000): MixerBenchResult {
  const inputs = Array.from({ length: roomSize }, randomFrame);
  // Outputs sit after a 5-byte header, as in the server: an odd offset, like the real frames.
  const outputs = Array.from({ length: roomSize }, () => Buffer.alloc(5 + FRAME_BYTES).subarray(5));
  const mixer = new RoomMixer();
  const mixerTicks = ticksPerSecond(() => {
    mixer.begin();
    for (const frame of inputs) mixer.add(frame);
    for (let k = 0; k < roomSize; k++) mixer.mixFor(inputs[k]!, outputs[k]!);
  }, ms);
  const scratch = Buffer.alloc(FRAME_BYTES);
  const copyTicks = ticksPerSecond(() => {
    for (const frame of inputs) frame.copy(scratch);
    for (const out of outputs) scratch.copy(out);
  }, ms);
  const samplesPerTick = roomSize * FRAME_SAMPLES; // one mixed frame per listener
  const mixerSamples = mixerTicks * samplesPerTick;
  return {
    room_size: roomSize,
    mixer_samples_per_s: Math.round(mixerSamples),
    copy_samples_per_s: Math.round(copyTicks * samplesPerTick),
    mixer_vs_copy: Math.round((copyTicks / mixerTicks) * 10) / 10,
    mixer_listeners_per_core: Math.round(mixerSamples / (FRAME_SAMPLES * 50)),
  };
}
