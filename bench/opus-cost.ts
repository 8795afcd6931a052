// What Opus costs and saves, measured on this machine: the numbers behind stage 05's README.
//
//   npx tsx bench/opus-cost.ts              # a few seconds
//   npx tsx bench/opus-cost.ts --json       # the same numbers as one JSON object
//
// It encodes and decodes a speech-like test signal through shared/codec/opus.ts (the binding the
// stages use) and prints: microseconds per 20 ms frame, bytes per packet, the upstream bit rate
// of one talker with stage 04's PCM framing and with stage 05's voice message, and the codec work
// per 20 ms tick of a server that decodes and re-mixes (an MCU) against one that forwards (an SFU).
import { FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE } from '#shared/audio/format.ts';
import { createOpusDecoder, createOpusEncoder } from '#shared/codec/opus.ts';
import { describeMachine, loadAverage } from './machine.ts';
import { median } from './median.ts';

const BITRATES = [16_000, 24_000, 32_000];
const FRAMES = 500; // 10 s of audio per timed run
const RUNS = 5; // the median of 5 runs, so one disturbed run does not decide
const FRAMES_PER_SECOND = 1000 / FRAME_MS;

/** Stage 02-04 frame header: type u8 + length u32. */
const FRAME_HEADER_BYTES = 5;
/** Stage 05 VOICE payload header, client -> server: sequence u16 (docs/design/05-opus.md). */
const VOICE_UP_HEADER_BYTES = 2;
/** Stage 05 VOICE payload header, server -> listener: speaker u16 + sequence u16. */
const VOICE_DOWN_HEADER_BYTES = 4;
/** IPv4 (20) + TCP with the timestamp option (32), when each message leaves in its own segment. */
const TCP_IP_HEADER_BYTES = 52;

/** MCU sizes to price: one room where everybody talks. */
const MCU_TALKERS = [50, 200];
/** How many speakers a stage 05 client decodes and mixes at once. */
const CLIENT_SPEAKERS = [1, 5, 10];

/** Deterministic pseudo-random numbers (mulberry32), so every run encodes the same signal. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Something closer to speech than a sine: a gliding 110-220 Hz voice with 8 harmonics, shaped
 * into 4 syllables a second, plus a little noise. Opus is a speech codec; a pure tone would
 * make it look cheaper than it is.
 */
function speechLikeFrames(count: number): Buffer[] {
  const noise = random(42);
  const frames: Buffer[] = [];
  let phase = 0;
  for (let f = 0; f < count; f++) {
    const frame = Buffer.alloc(FRAME_BYTES);
    for (let i = 0; i < FRAME_SAMPLES; i++) {
      const time = (f * FRAME_SAMPLES + i) / SAMPLE_RATE;
      const pitchHz = 165 + 55 * Math.sin(2 * Math.PI * 0.7 * time);
      phase += (2 * Math.PI * pitchHz) / SAMPLE_RATE;
      let voiced = 0;
      for (let h = 1; h <= 8; h++) voiced += Math.sin(h * phase) / h;
      const syllable = Math.max(0, Math.sin(2 * Math.PI * 4 * time));
      const sample = 6_000 * syllable * voiced + 300 * (noise() - 0.5);
      frame.writeInt16LE(Math.max(-32_768, Math.min(32_767, Math.round(sample))), i * 2);
    }
    frames.push(frame);
  }
  return frames;
}

interface BitrateResult {
  bitrate_bps: number;
  encode_us_per_frame: number;
  decode_us_per_frame: number;
  packet_bytes_mean: number;
  packet_bytes_min: number;
  packet_bytes_max: number;
  /** One talker's upstream: stage 05 VOICE messages (frame header + sequence + packet). */
  upstream_kbps_messages: number;
  /** The same with TCP/IPv4 headers, one message per segment. */
  upstream_kbps_on_wire: number;
  /** What one listener receives per speaker heard: frame header + speaker + sequence + packet. */
  downstream_kbps_per_speaker_messages: number;
}

function microsecondsPerFrame(work: () => void): number {
  const start = process.hrtime.bigint();
  work();
  return Number(process.hrtime.bigint() - start) / 1_000 / FRAMES;
}

function measureBitrate(bitrate: number, signal: Buffer[]): BitrateResult {
  const encodeTimes: number[] = [];
  const decodeTimes: number[] = [];
  let packets: Buffer[] = [];
  for (let run = 0; run < RUNS; run++) {
    // A fresh encoder and decoder per run: the same work every time, state included.
    const encoder = createOpusEncoder({ bitrate });
    const decoder = createOpusDecoder();
    const encoded: Buffer[] = [];
    encodeTimes.push(microsecondsPerFrame(() => signal.forEach((frame) => encoded.push(encoder.encode(frame)))));
    decodeTimes.push(microsecondsPerFrame(() => encoded.forEach((packet) => decoder.decode(packet))));
    packets = encoded;
  }
  // Skip the first half second: the encoder's start-up is not the steady state a call is in.
  const sizes = packets.slice(25).map((packet) => packet.length);
  const mean = sizes.reduce((a, b) => a + b, 0) / sizes.length;
  const kbps = (bytesPerFrame: number) => round((bytesPerFrame * 8 * FRAMES_PER_SECOND) / 1000, 1);
  return {
    bitrate_bps: bitrate,
    encode_us_per_frame: round(median(encodeTimes), 1),
    decode_us_per_frame: round(median(decodeTimes), 1),
    packet_bytes_mean: round(mean, 1),
    packet_bytes_min: Math.min(...sizes),
    packet_bytes_max: Math.max(...sizes),
    upstream_kbps_messages: kbps(FRAME_HEADER_BYTES + VOICE_UP_HEADER_BYTES + mean),
    upstream_kbps_on_wire: kbps(TCP_IP_HEADER_BYTES + FRAME_HEADER_BYTES + VOICE_UP_HEADER_BYTES + mean),
    downstream_kbps_per_speaker_messages: kbps(FRAME_HEADER_BYTES + VOICE_DOWN_HEADER_BYTES + mean),
  };
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function main(): void {
  const json = process.argv.includes('--json');
  const signal = speechLikeFrames(FRAMES);
  // Warm up the JIT and the binding before timing anything.
  measureBitrate(24_000, signal.slice(0, 100));

  const results = BITRATES.map((bitrate) => measureBitrate(bitrate, signal));
  const pcm = {
    upstream_kbps_messages: round(((FRAME_HEADER_BYTES + FRAME_BYTES) * 8 * FRAMES_PER_SECOND) / 1000, 1),
    upstream_kbps_on_wire: round(((TCP_IP_HEADER_BYTES + FRAME_HEADER_BYTES + FRAME_BYTES) * 8 * FRAMES_PER_SECOND) / 1000, 1),
  };
  const chosen = results.find((r) => r.bitrate_bps === 24_000)!;
  const codecUs = chosen.decode_us_per_frame + chosen.encode_us_per_frame;
  const tickUs = FRAME_MS * 1000;
  const mcu = MCU_TALKERS.map((talkers) => ({
    talkers,
    // Every talker's packet decoded once; every listener's mix (all but their own voice) encoded once.
    codec_ms_per_tick: round((talkers * codecUs) / 1000, 1),
    share_of_one_core: round((talkers * codecUs) / tickUs, 2),
  }));
  const report = {
    machine: describeMachine(),
    load_average_1min: round(loadAverage(), 2),
    signal: `speech-like test signal, ${FRAMES} frames of 20 ms, 48 kHz mono; median of ${RUNS} runs`,
    opus: results,
    stage04_pcm: pcm,
    mcu_at_24kbps: mcu,
    mcu_max_talkers_per_core: Math.floor(tickUs / codecUs),
    sfu_codec_us_per_packet: 0,
    client_decode_ms_per_tick: CLIENT_SPEAKERS.map((speakers) => ({ speakers, ms: round((speakers * chosen.decode_us_per_frame) / 1000, 2) })),
  };
  if (json) {
    console.log(JSON.stringify(report, null, 2));
    return;
  }

  const m = report.machine;
  console.log(`Opus cost, measured by: npx tsx bench/opus-cost.ts`);
  console.log(`machine: ${m.cpu}, ${m.cores} cores, Node ${m.node}; load average ${report.load_average_1min}`);
  console.log(`signal: ${report.signal}\n`);
  console.log('bitrate   encode     decode     packet bytes (mean, min-max)   one talker upstream        per speaker heard');
  console.log('          us/frame   us/frame                                  messages   + TCP/IP       messages');
  for (const r of results) {
    console.log(
      `${String(r.bitrate_bps / 1000).padStart(3)} kb/s  ${r.encode_us_per_frame.toFixed(1).padStart(7)}    ${r.decode_us_per_frame.toFixed(1).padStart(7)}    ` +
        `${r.packet_bytes_mean.toFixed(1).padStart(6)} (${r.packet_bytes_min}-${r.packet_bytes_max})`.padEnd(32) +
        `${r.upstream_kbps_messages.toFixed(1).padStart(6)} kb/s ${r.upstream_kbps_on_wire.toFixed(1).padStart(6)} kb/s    ${r.downstream_kbps_per_speaker_messages.toFixed(1).padStart(6)} kb/s`,
    );
  }
  console.log(
    `stage 04 PCM: ${FRAME_HEADER_BYTES} + ${FRAME_BYTES} bytes per 20 ms = ${pcm.upstream_kbps_messages} kb/s in messages, ` +
      `${pcm.upstream_kbps_on_wire} kb/s with TCP/IP headers (one talker up, and every listener down)`,
  );
  console.log(
    `at 24 kb/s Opus upstream is ${round(pcm.upstream_kbps_messages / chosen.upstream_kbps_messages, 1)}x smaller in messages, ` +
      `${round(pcm.upstream_kbps_on_wire / chosen.upstream_kbps_on_wire, 1)}x on the wire\n`,
  );
  console.log(`server codec work per 20 ms tick, at 24 kb/s (decode ${chosen.decode_us_per_frame} + encode ${chosen.encode_us_per_frame} us per talker):`);
  for (const row of mcu) {
    console.log(
      `  MCU, ${String(row.talkers).padStart(3)} talkers: ${row.talkers} x (decode + encode) = ${row.codec_ms_per_tick} ms per 20 ms tick ` +
        `= ${row.share_of_one_core} cores${row.share_of_one_core > 1 ? ' (cannot keep up on one core)' : ''}`,
    );
  }
  console.log(`  MCU on one core: at most ${report.mcu_max_talkers_per_core} talkers, before any mixing or network work`);
  console.log('  SFU, any number: 0 us of codec work (it forwards packets without decoding them)\n');
  console.log('client decode work per 20 ms tick, at 24 kb/s:');
  for (const row of report.client_decode_ms_per_tick) console.log(`  ${String(row.speakers).padStart(2)} speaker(s) heard: ${row.ms} ms`);
}

main();
