import t from 'tap';
import { FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE } from '#shared/audio/format.ts';
import {
  OPUS_FEC_DECODING,
  OPUS_MAX_PACKET_BYTES,
  concealmentToc,
  createOpusDecoder,
  createOpusEncoder,
} from '#shared/codec/opus.ts';

// ---- Independent helpers: plain sample arithmetic with Buffer methods ----

/** Frame number `index` of a continuous sine (phase carries across frames). */
function sineFrame(frequencyHz: number, amplitude: number, index: number): Buffer {
  const frame = Buffer.alloc(FRAME_BYTES);
  for (let i = 0; i < FRAME_SAMPLES; i++) {
    const n = index * FRAME_SAMPLES + i;
    frame.writeInt16LE(Math.round(amplitude * Math.sin((2 * Math.PI * frequencyHz * n) / SAMPLE_RATE)), i * 2);
  }
  return frame;
}

function samplesOf(frames: Buffer[]): number[] {
  const out: number[] = [];
  for (const frame of frames) for (let i = 0; i < frame.length / 2; i++) out.push(frame.readInt16LE(i * 2));
  return out;
}

function rms(samples: number[]): number {
  return Math.sqrt(samples.reduce((sum, s) => sum + s * s, 0) / samples.length);
}

/** Frequency from the number of sign changes: a sine crosses zero twice per cycle. */
function zeroCrossingFrequency(samples: number[]): number {
  let crossings = 0;
  for (let i = 1; i < samples.length; i++) if (samples[i - 1] < 0 !== samples[i] < 0) crossings++;
  return crossings / 2 / (samples.length / SAMPLE_RATE);
}

function decibels(ratio: number): number {
  return 20 * Math.log10(ratio);
}

/** Encodes `count` frames of a sine and decodes them again; returns input and output frames. */
function roundTrip(frequencyHz: number, amplitude: number, bitrate: number, count: number) {
  const encoder = createOpusEncoder({ bitrate });
  const decoder = createOpusDecoder();
  const input: Buffer[] = [];
  const output: Buffer[] = [];
  const packets: Buffer[] = [];
  for (let f = 0; f < count; f++) {
    const frame = sineFrame(frequencyHz, amplitude, f);
    const packet = encoder.encode(frame);
    input.push(frame);
    packets.push(packet);
    output.push(decoder.decode(packet));
  }
  return { input, output, packets, decoder };
}

// Opus starts from silence and has a few ms of look-ahead: judge the stream after it settled.
const SETTLE_FRAMES = 10;

t.test('a round trip keeps a tone at its level and frequency', async (t) => {
  for (const [frequencyHz, amplitude] of [
    [440, 10_000],
    [1_000, 3_000],
  ]) {
    const { input, output } = roundTrip(frequencyHz, amplitude, 24_000, 60);
    t.ok(output.every((frame) => frame.length === FRAME_BYTES), `every decoded frame is ${FRAME_BYTES} bytes`);
    const sent = samplesOf(input.slice(SETTLE_FRAMES));
    const heard = samplesOf(output.slice(SETTLE_FRAMES));
    const levelDb = decibels(rms(heard) / rms(sent));
    t.ok(Math.abs(levelDb) <= 1, `${frequencyHz} Hz at amplitude ${amplitude}: level changed by ${levelDb.toFixed(2)} dB (at most 1 dB allowed)`);
    const heardHz = zeroCrossingFrequency(heard);
    t.ok(Math.abs(heardHz - frequencyHz) / frequencyHz <= 0.01, `${frequencyHz} Hz came back as ${heardHz.toFixed(1)} Hz (within 1 %)`);
  }
});

t.test('packets are about bitrate x 20 ms in size, 20-30 times smaller than PCM', async (t) => {
  const means: number[] = [];
  for (const bitrate of [24_000, 32_000]) {
    const { packets } = roundTrip(440, 10_000, bitrate, 55);
    const settled = packets.slice(5).map((p) => p.length);
    const mean = settled.reduce((a, b) => a + b, 0) / settled.length;
    const nominal = (bitrate * FRAME_MS) / 1000 / 8; // 60 bytes at 24 kb/s, 80 at 32 kb/s
    t.ok(Math.abs(mean - nominal) <= nominal * 0.2, `${bitrate} b/s: mean packet ${mean.toFixed(1)} bytes, nominal ${nominal} (within 20 %)`);
    t.ok(mean < 100, `${bitrate} b/s: mean packet ${mean.toFixed(1)} bytes is under 100 (PCM is ${FRAME_BYTES})`);
    t.ok(settled.every((size) => size >= 1 && size <= OPUS_MAX_PACKET_BYTES), 'every packet is 1-1275 bytes');
    means.push(mean);
  }
  t.ok(means[1] > means[0], `32 kb/s packets (${means[1].toFixed(1)} B) are larger than 24 kb/s ones (${means[0].toFixed(1)} B)`);
});

t.test('concealment fills a lost frame with a continuation, not silence', async (t) => {
  const { output, decoder } = roundTrip(440, 10_000, 24_000, 30);
  const toneRms = rms(samplesOf(output.slice(SETTLE_FRAMES)));
  const concealed = decoder.conceal();
  t.equal(concealed.length, FRAME_BYTES, 'a concealed frame is one whole frame');
  const concealedRms = rms(samplesOf([concealed]));
  t.ok(concealedRms >= toneRms * 0.25, `concealed RMS ${concealedRms.toFixed(0)} is at least a quarter of the tone's ${toneRms.toFixed(0)}`);
  const concealedHz = zeroCrossingFrequency(samplesOf([concealed]));
  t.ok(Math.abs(concealedHz - 440) <= 50, `the concealed frame continues the 440 Hz tone (${concealedHz.toFixed(0)} Hz by zero crossings)`);

  // Real concealment fades over a run of losses; a copy of the last frame would not.
  let last = concealed;
  for (let i = 0; i < 10; i++) last = decoder.conceal();
  const fadedRms = rms(samplesOf([last]));
  t.ok(fadedRms < concealedRms / 2, `after 11 lost frames the guess has faded (RMS ${fadedRms.toFixed(0)} < half of ${concealedRms.toFixed(0)})`);

  const encoder = createOpusEncoder({ bitrate: 24_000 });
  t.equal(decoder.decode(encoder.encode(sineFrame(440, 10_000, 0))).length, FRAME_BYTES, 'the decoder decodes real packets again after concealing');
});

t.test('concealment before any packet is silence', async (t) => {
  const silence = createOpusDecoder().conceal();
  t.equal(silence.length, FRAME_BYTES);
  t.ok(silence.every((byte) => byte === 0), 'all zero');
});

t.test('bad packets are refused with a coded error, and the decoder carries on', async (t) => {
  const { decoder } = roundTrip(440, 10_000, 24_000, 5);
  const cases: [string, Buffer, string][] = [
    ['empty', Buffer.alloc(0), 'empty_packet'],
    ['one byte over the limit', Buffer.alloc(OPUS_MAX_PACKET_BYTES + 1, 0x78), 'packet_too_large'],
    // TOC code 3 (arbitrary frame count) with a count byte of 0 frames: RFC 6716 R5 forbids it.
    ['zero frames', Buffer.of(0x7b, 0x00), 'invalid_packet'],
    // Code 3, 63 frames of 20 ms: 1.26 s, over the 120 ms a packet may hold (R5).
    ['too long', Buffer.of(0x7b, 0x3f, 1, 2, 3), 'invalid_packet'],
    // A valid packet (SILK wideband, 60 ms, one empty frame) that is not 20 ms long.
    ['60 ms', Buffer.of(0x58), 'bad_packet_duration'],
  ];
  for (const [name, packet, code] of cases) {
    t.throws(() => decoder.decode(packet), { name: 'OpusCodecError', code }, `${name}: ${code}`);
    try {
      decoder.decode(packet);
    } catch (error) {
      t.match((error as Error).message, /\w.{20,}/, `${name}: the message explains (${(error as Error).message})`);
    }
  }
  const encoder = createOpusEncoder({ bitrate: 24_000 });
  t.equal(decoder.decode(encoder.encode(sineFrame(440, 10_000, 0))).length, FRAME_BYTES, 'good packets still decode afterwards');
});

t.test('the encoder refuses what it cannot encode', async (t) => {
  t.throws(() => createOpusEncoder({ bitrate: 24_000 }).encode(Buffer.alloc(FRAME_BYTES - 2)), { code: 'bad_pcm_frame' }, 'a frame of 958 samples');
  t.throws(() => createOpusEncoder({ bitrate: 24_000 }).encode(Buffer.alloc(FRAME_BYTES * 2)), { code: 'bad_pcm_frame' }, 'two frames at once');
  for (const bitrate of [0, 5_999, 128_001, 24_000.5, Number.NaN]) {
    t.throws(() => createOpusEncoder({ bitrate }), { code: 'bad_bitrate' }, `bitrate ${bitrate}`);
  }
  t.equal(createOpusEncoder({ bitrate: 6_000 }).bitrate, 6_000, 'the lowest allowed bitrate is accepted');
});

t.test('an encoder with FEC on and loss expected still makes 20 ms packets that decode', async (t) => {
  // With in-band FEC on and loss expected, libopus spends part of the bitrate on a low-rate
  // copy of the previous frame; the packet still decodes as one 20 ms frame.
  const encoder = createOpusEncoder({ bitrate: 32_000, fec: true, expectedLossPercent: 10 });
  const decoder = createOpusDecoder();
  for (let f = 0; f < 20; f++) t.equal(decoder.decode(encoder.encode(sineFrame(440, 10_000, f))).length, FRAME_BYTES);
  t.throws(() => createOpusEncoder({ bitrate: 32_000, expectedLossPercent: 101 }), { code: 'bad_bitrate' });
});

t.test('the concealment TOC names one 20 ms frame in the same mode', async (t) => {
  // Values from RFC 6716 table 2: config 0-11 SILK (10/20/40/60 ms), 12-15 hybrid (10/20 ms),
  // 16-31 CELT (2.5/5/10/20 ms); the stereo bit is kept; the frame-count code becomes 0.
  t.equal(concealmentToc((8 << 3) | 0), (9 << 3) | 0, 'SILK WB 10 ms -> SILK WB 20 ms');
  t.equal(concealmentToc((11 << 3) | 2), (9 << 3) | 0, 'SILK WB 60 ms, two frames -> one 20 ms frame');
  t.equal(concealmentToc((15 << 3) | 4 | 3), (15 << 3) | 4, 'hybrid FB 20 ms stereo, code 3 -> code 0, stereo kept');
  t.equal(concealmentToc((14 << 3) | 1), (15 << 3) | 0, 'hybrid FB 10 ms -> 20 ms');
  t.equal(concealmentToc((28 << 3) | 0), (31 << 3) | 0, 'CELT FB 2.5 ms -> 20 ms');
});

// ---- In-band FEC (stage 06): recovering a lost frame from the copy in the next packet ----

/** A voiced, speech-like frame: three harmonics of 220 Hz under a slow 3 Hz swell. */
function harmonicFrame(index: number): Buffer {
  const frame = Buffer.alloc(FRAME_BYTES);
  for (let i = 0; i < FRAME_SAMPLES; i++) {
    const n = index * FRAME_SAMPLES + i;
    const phase = (2 * Math.PI * 220 * n) / SAMPLE_RATE;
    const swell = 0.6 + 0.4 * Math.sin((2 * Math.PI * 3 * n) / SAMPLE_RATE);
    frame.writeInt16LE(Math.round(swell * (5000 * Math.sin(phase) + 3000 * Math.sin(2 * phase) + 1500 * Math.sin(3 * phase))), i * 2);
  }
  return frame;
}

/** Signal-to-noise ratio of `heard` against `reference`, in dB (noise = their difference). */
function snrDb(reference: Buffer, heard: Buffer): number {
  const a = samplesOf([reference]);
  const b = samplesOf([heard]);
  const signal = a.reduce((sum, s) => sum + s * s, 0);
  const noise = a.reduce((sum, s, i) => sum + (s - b[i]) ** 2, 0);
  return 10 * Math.log10(signal / Math.max(noise, 1));
}

const fecPlatformExpected = process.platform === 'linux' || process.platform === 'darwin';

const fecSkip = OPUS_FEC_DECODING.available ? false : `cannot measure FEC: ${OPUS_FEC_DECODING.reason}`;

t.test('decoders reach libopus for FEC where the platform exports it', { skip: fecPlatformExpected ? false : `FEC decoding is only expected on Linux and macOS, not ${process.platform}` }, async (t) => {
  t.ok(OPUS_FEC_DECODING.available, `FEC decoding is available (${OPUS_FEC_DECODING.reason ?? 'ok'})`);
  t.ok(createOpusDecoder().fecAvailable, 'a decoder says so');
});

t.test('FEC recovers a lost frame measurably better than concealment', { skip: fecSkip }, async (t) => {
  const encoder = createOpusEncoder({ bitrate: 24_000, fec: true, expectedLossPercent: 10 });
  const packets = Array.from({ length: 400 }, (_, f) => encoder.encode(harmonicFrame(f)));
  const lossless = createOpusDecoder();
  const reference = packets.map((p) => lossless.decode(p));
  const lost = new Set<number>();
  for (let f = 20; f < packets.length - 1; f += 20) lost.add(f); // every 20th packet: 5 % loss, single losses

  const withFec = createOpusDecoder();
  const withPlc = createOpusDecoder();
  let fecSnr = 0;
  let plcSnr = 0;
  for (let f = 0; f < packets.length; f++) {
    if (lost.has(f)) {
      fecSnr += snrDb(reference[f], withFec.decodeFec(packets[f + 1]));
      plcSnr += snrDb(reference[f], withPlc.conceal());
    } else {
      withFec.decode(packets[f]);
      withPlc.decode(packets[f]);
    }
  }
  fecSnr /= lost.size;
  plcSnr /= lost.size;
  t.ok(fecSnr >= plcSnr + 6, `lost frames: FEC ${fecSnr.toFixed(1)} dB SNR against the lossless decode, concealment ${plcSnr.toFixed(1)} dB (FEC must win by 6 dB or more)`);
  t.ok(fecSnr >= 10, `FEC-recovered frames are close to the original (${fecSnr.toFixed(1)} dB, at least 10 dB)`);
});

t.test('FEC from a packet that carries no copy is concealment', { skip: fecSkip }, async (t) => {
  const encoder = createOpusEncoder({ bitrate: 24_000 }); // no FEC in these packets
  const packets = Array.from({ length: 12 }, (_, f) => encoder.encode(harmonicFrame(f)));
  const a = createOpusDecoder();
  const b = createOpusDecoder();
  for (const packet of packets.slice(0, 10)) {
    a.decode(packet);
    b.decode(packet);
  }
  const viaFec = a.decodeFec(packets[11]);
  const concealed = b.conceal();
  t.equal(viaFec.length, FRAME_BYTES, 'one whole frame');
  t.ok(viaFec.equals(concealed), 'the same samples as conceal() from a decoder in the same state');
  t.ok(rms(samplesOf([viaFec])) > 100, 'and not silence');
  t.equal(a.decode(packets[11]).length, FRAME_BYTES, 'the next packet then decodes as usual');
});

t.test('decodeFec refuses what decode refuses', async (t) => {
  const decoder = createOpusDecoder();
  t.throws(() => decoder.decodeFec(Buffer.alloc(0)), { name: 'OpusCodecError', code: 'empty_packet' });
  t.throws(() => decoder.decodeFec(Buffer.alloc(OPUS_MAX_PACKET_BYTES + 1, 0x78)), { name: 'OpusCodecError', code: 'packet_too_large' });
  if (decoder.fecAvailable) t.throws(() => decoder.decodeFec(Buffer.of(0x7b, 0x00)), { name: 'OpusCodecError', code: 'invalid_packet' });
});
