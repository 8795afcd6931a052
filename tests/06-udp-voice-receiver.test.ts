// The stage 06 client's receive side (06-udp/voice-receiver.ts: stage 05's, extended; 05's cases first, then FEC, duplicates and statistics): one decoder and jitter buffer
// per speaker, mixed at the client's own 20 ms clock. Most tests use a stand-in decoder whose
// frames say which packet they came from (every sample = the packet's first byte x 100; a
// concealed frame is all -1), so the order of play can be read off the output. The last ones use
// the real Opus codec.
import t from 'tap';
import { FRAME_BYTES, FRAME_SAMPLES } from '#shared/audio/format.ts';
import { ToneGenerator } from '#shared/audio/tone-source.ts';
import { createOpusDecoder, createOpusEncoder, type OpusVoiceDecoder } from '#shared/codec/opus.ts';
import { MAX_CONCEALED_WAITING, MAX_WAITING_PACKETS, START_WAIT_MS, VoiceReceiver } from '../06-udp/voice-receiver.ts';

const CONCEALED = -1;

function markerDecoder(): OpusVoiceDecoder {
  const frameOf = (value: number) => {
    const frame = Buffer.alloc(FRAME_BYTES);
    for (let i = 0; i < FRAME_SAMPLES; i++) frame.writeInt16LE(value, i * 2);
    return frame;
  };
  return {
    decode(packet) {
      if (packet[0] === 0xff) throw new Error('does not decode');
      return frameOf(packet[0]! * 100);
    },
    conceal: () => frameOf(CONCEALED),
    // Stage 05 never asks for FEC (its voice comes over TCP); the stand-in conceals like the real one without a copy.
    decodeFec: () => frameOf(CONCEALED),
    fecAvailable: false,
  };
}

/** A receiver on a clock the test moves, with the stand-in decoder. */
function receiverAt(clock = { ms: 0 }, createDecoder = markerDecoder) {
  return { clock, receiver: new VoiceReceiver({ createDecoder, now: () => clock.ms }) };
}

/** The first sample of each of the next `ticks` frames, 20 ms apart. */
function play(setup: ReturnType<typeof receiverAt>, ticks: number): number[] {
  const heard: number[] = [];
  for (let i = 0; i < ticks; i++) {
    heard.push(setup.receiver.nextFrame().readInt16LE(0));
    setup.clock.ms += 20;
  }
  return heard;
}

t.test('nobody speaking: every tick is a frame of silence (a recording keeps time)', async (t) => {
  const setup = receiverAt();
  const frame = setup.receiver.nextFrame();
  t.equal(frame.length, FRAME_BYTES);
  t.ok(frame.equals(Buffer.alloc(FRAME_BYTES)));
});

t.test('a stream starts once 2 packets wait, and plays them in sequence order even when they came reordered', async (t) => {
  const setup = receiverAt();
  setup.receiver.receive(1, 11, Buffer.of(2));
  t.same(play(setup, 1), [0], 'one packet waiting, not yet 40 ms old: nothing plays');
  setup.receiver.receive(1, 10, Buffer.of(1)); // came after 11
  setup.receiver.receive(1, 12, Buffer.of(3));
  t.same(play(setup, 6), [100, 200, 300, CONCEALED, CONCEALED, 0], 'in sequence order, then 2 ticks concealed while waiting, then the spurt ends');
});

t.test('a single packet starts playing once it has waited 40 ms', async (t) => {
  const setup = receiverAt();
  setup.receiver.receive(1, 500, Buffer.of(5));
  setup.clock.ms += START_WAIT_MS - 1;
  t.same(play(setup, 1), [0]);
  t.same(play(setup, 4), [500, CONCEALED, CONCEALED, 0]);
});

t.test(`nothing waiting: ${MAX_CONCEALED_WAITING} ticks concealed in case the next packet is only late; it plays when it comes in time`, async (t) => {
  const setup = receiverAt();
  for (const sequence of [1, 2]) setup.receiver.receive(7, sequence, Buffer.of(sequence));
  t.same(play(setup, 3), [100, 200, CONCEALED], 'the slot of 3 is concealed while waiting');
  setup.receiver.receive(7, 4, Buffer.of(4)); // 3 never comes; 4 is in time for its slot
  t.same(play(setup, 2), [400, CONCEALED]);
  t.equal(setup.receiver.counts.late, 0);
});

t.test('a packet whose slot was concealed while waiting is dropped as too late', async (t) => {
  const setup = receiverAt();
  for (const sequence of [1, 2]) setup.receiver.receive(7, sequence, Buffer.of(sequence));
  t.same(play(setup, 3), [100, 200, CONCEALED]);
  setup.receiver.receive(7, 3, Buffer.of(3)); // its slot was concealed
  t.equal(setup.receiver.counts.late, 1, 'counted as late');
  t.same(play(setup, 1), [CONCEALED], 'not played');
});

t.test('after the spurt ends, the next talk spurt (the sequence after the last packet sent) plays from its start', async (t) => {
  const setup = receiverAt();
  for (const sequence of [1, 2]) setup.receiver.receive(7, sequence, Buffer.of(sequence));
  t.same(play(setup, 5), [100, 200, CONCEALED, CONCEALED, 0], 'concealed 2 ticks, then stopped');
  for (const sequence of [3, 4]) setup.receiver.receive(7, sequence, Buffer.of(sequence + 10));
  t.same(play(setup, 2), [1300, 1400], 'a pause in speech is no gap: the sender goes on with 3');
  t.equal(setup.receiver.counts.late, 0);
});

t.test('a missing sequence number is concealed (Opus PLC), not a hole, and play goes on after it', async (t) => {
  const setup = receiverAt();
  for (const sequence of [1, 2, 4, 5]) setup.receiver.receive(7, sequence, Buffer.of(sequence));
  t.same(play(setup, 5), [100, 200, CONCEALED, 400, 500]);
  t.equal(setup.receiver.counts.concealed, 1);
});

t.test('a packet that does not decode is concealed too', async (t) => {
  const setup = receiverAt();
  for (const first of [1, 0xff, 3]) setup.receiver.receive(7, first === 0xff ? 2 : first, Buffer.of(first));
  t.same(play(setup, 3), [100, CONCEALED, 300]);
});

t.test('a packet that comes after its turn is dropped, not played late', async (t) => {
  const setup = receiverAt();
  for (const sequence of [1, 2, 4]) setup.receiver.receive(7, sequence, Buffer.of(sequence));
  t.same(play(setup, 3), [100, 200, CONCEALED], '3 was concealed');
  setup.receiver.receive(7, 3, Buffer.of(3)); // too late now
  setup.receiver.receive(7, 2, Buffer.of(2)); // long gone, and played once already: from stage 06 on, a duplicate
  t.same(play(setup, 4), [400, CONCEALED, CONCEALED, 0]);
  t.equal(setup.receiver.counts.late, 1);
  t.equal(setup.receiver.counts.duplicates, 1);
});

t.test('sequence numbers wrap from 65535 to 0 without a break', async (t) => {
  const setup = receiverAt();
  for (const [sequence, marker] of [[65534, 1], [65535, 2], [0, 3], [1, 4]]) setup.receiver.receive(3, sequence!, Buffer.of(marker!));
  t.same(play(setup, 4), [100, 200, 300, 400]);
});

t.test(`more than ${MAX_WAITING_PACKETS} waiting: the oldest is dropped and play skips past it`, async (t) => {
  const setup = receiverAt();
  for (let sequence = 1; sequence <= MAX_WAITING_PACKETS + 2; sequence++) setup.receiver.receive(3, sequence, Buffer.of(sequence));
  t.equal(setup.receiver.counts.overflow, 2);
  t.same(play(setup, 2), [300, 400]);
});

t.test('two speakers are summed at full level, never averaged, and clipped to 16 bits', async (t) => {
  const setup = receiverAt();
  for (const sequence of [1, 2]) {
    setup.receiver.receive(1, sequence, Buffer.of(100)); // 10 000
    setup.receiver.receive(2, sequence, Buffer.of(150)); // 15 000
  }
  t.same(play(setup, 1), [25_000], '10 000 + 15 000');
  setup.receiver.receive(3, 1, Buffer.of(200)); // 20 000
  setup.receiver.receive(3, 2, Buffer.of(200));
  t.same(play(setup, 1), [32_767], '10 000 + 15 000 + 20 000 clipped, not wrapped');
});

t.test('our own id is never played', async (t) => {
  const setup = receiverAt();
  setup.receiver.ownId = 4;
  setup.receiver.receive(4, 1, Buffer.of(9));
  setup.receiver.receive(4, 2, Buffer.of(9));
  t.same(play(setup, 3), [0, 0, 0]);
  t.equal(setup.receiver.counts.ownVoice, 2);
  t.same(setup.receiver.speakerIds, [], 'no decoder made for it');
});

t.test('a speaker who left is removed with what was waiting; keepOnly() keeps the room', async (t) => {
  const setup = receiverAt();
  for (const id of [1, 2, 3]) {
    setup.receiver.receive(id, 1, Buffer.of(id));
    setup.receiver.receive(id, 2, Buffer.of(id));
  }
  setup.receiver.removeSpeaker(2);
  t.same(play(setup, 1), [400], 'speakers 1 and 3 only');
  setup.receiver.keepOnly(new Set([3]));
  t.same(setup.receiver.speakerIds, [3]);
});

/** RMS level of a frame in dBFS. */
function levelDb(frame: Buffer): number {
  let sum = 0;
  for (let i = 0; i < FRAME_SAMPLES; i++) sum += frame.readInt16LE(i * 2) ** 2;
  return 20 * Math.log10(Math.sqrt(sum / FRAME_SAMPLES) / 32768);
}

t.test('with real Opus: each speaker decoded at full level, the mix is their sum', async (t) => {
  const setup = receiverAt({ ms: 0 }, createOpusDecoder);
  const speakers = [
    { id: 1, tone: new ToneGenerator(300), encoder: createOpusEncoder({ bitrate: 24_000 }), decoder: createOpusDecoder() },
    { id: 2, tone: new ToneGenerator(500), encoder: createOpusEncoder({ bitrate: 24_000 }), decoder: createOpusDecoder() },
  ];
  const expectedMixes: Int32Array[] = [];
  let worst = 0;
  let heard = -Infinity;
  for (let sequence = 0; sequence < 50; sequence++) {
    const expected = new Int32Array(FRAME_SAMPLES);
    for (const speaker of speakers) {
      const packet = speaker.encoder.encode(speaker.tone.nextFrame());
      setup.receiver.receive(speaker.id, sequence, packet);
      // The test's own decode of the same packets: what the receiver should add up.
      const pcm = speaker.decoder.decode(packet);
      for (let i = 0; i < FRAME_SAMPLES; i++) expected[i]! += pcm.readInt16LE(i * 2);
    }
    expectedMixes.push(expected);
    const mix = setup.receiver.nextFrame();
    // Play starts once 2 packets wait: the first tick is silence, then the mix lags by one frame.
    if (sequence === 0) {
      t.equal(levelDb(mix), -Infinity, 'first tick: buffering, silence');
      continue;
    }
    const due = expectedMixes.shift()!;
    heard = Math.max(heard, levelDb(mix));
    for (let i = 0; i < FRAME_SAMPLES; i++) {
      const clipped = Math.max(-32768, Math.min(32767, due[i]!));
      worst = Math.max(worst, Math.abs(mix.readInt16LE(i * 2) - clipped));
    }
  }
  t.equal(worst, 0, 'sample for sample the clipped sum of the two decodes');
  t.ok(heard > -20, `the mix is loud (${heard.toFixed(1)} dBFS)`);
});

// ---------------------------------------------------------------- stage 06: datagrams

const FEC_MARK = 50;

/** The stand-in decoder with FEC: a frame rebuilt from packet P's FEC copy is P's marker x 100 - 50. */
function fecDecoder(): OpusVoiceDecoder {
  const base = markerDecoder();
  const frameOf = (value: number) => {
    const frame = Buffer.alloc(FRAME_BYTES);
    for (let i = 0; i < FRAME_SAMPLES; i++) frame.writeInt16LE(value, i * 2);
    return frame;
  };
  return { ...base, fecAvailable: true, decodeFec: (next) => frameOf(next[0]! * 100 - FEC_MARK) };
}

t.test('one lost packet with the next one waiting is rebuilt from that packet\'s FEC copy; a burst is concealed', async (t) => {
  const setup = receiverAt({ ms: 0 }, fecDecoder);
  for (const sequence of [1, 2, 4, 5, 8, 9]) setup.receiver.receive(3, sequence, Buffer.of(sequence), 'udp');
  t.same(play(setup, 9), [100, 200, 400 - FEC_MARK, 400, 500, CONCEALED, 800 - FEC_MARK, 800, 900]);
  t.match(setup.receiver.counts, { fecRecovered: 2, concealed: 1, decoded: 6 });
  t.match(setup.receiver.speakerStats(), [{ id: 3, received: 6, lost: 3, fecRecovered: 2, concealed: 1 }]);
});

t.test('where the decoder cannot read FEC (fecAvailable false), a single loss is concealed and counted so', async (t) => {
  const setup = receiverAt();
  for (const sequence of [1, 2, 4]) setup.receiver.receive(3, sequence, Buffer.of(sequence), 'udp');
  t.same(play(setup, 4), [100, 200, CONCEALED, 400]);
  t.match(setup.receiver.counts, { fecRecovered: 0, concealed: 1 });
});

t.test('a packet that comes twice (the network, or both paths during a switch) is played once and counted as a duplicate', async (t) => {
  const setup = receiverAt({ ms: 0 }, fecDecoder);
  setup.receiver.receive(3, 1, Buffer.of(1), 'udp');
  setup.receiver.receive(3, 1, Buffer.of(1), 'tcp'); // waiting: a duplicate
  setup.receiver.receive(3, 2, Buffer.of(2), 'udp');
  t.same(play(setup, 2), [100, 200]);
  setup.receiver.receive(3, 1, Buffer.of(1), 'udp'); // long played: still a duplicate, not late
  setup.receiver.receive(3, 3, Buffer.of(3), 'udp');
  t.same(play(setup, 1), [300]);
  t.match(setup.receiver.counts, { duplicates: 2, late: 0, received: 3 });
  t.match(setup.receiver.speakerStats(), [{ duplicates: 2, lost: 0 }]);
});

t.test('loss per speaker counts sequences never received, across the 65535 -> 0 wrap', async (t) => {
  const setup = receiverAt();
  for (const sequence of [65533, 65534, 0, 1, 3]) setup.receiver.receive(4, sequence, Buffer.of(1), 'udp');
  t.match(setup.receiver.speakerStats(), [{ id: 4, received: 5, lost: 2 }], '65535 and 2 never came');
});

t.test('jitter (RFC 3550): 0 for datagrams exactly 20 ms apart, about the mean deviation otherwise; TCP arrivals do not count', async (t) => {
  const steady = receiverAt();
  for (let sequence = 0; sequence < 50; sequence++) {
    steady.receiver.receive(1, sequence, Buffer.of(1), 'udp');
    steady.clock.ms += 20;
  }
  t.equal(steady.receiver.speakerStats()[0]!.jitterMs, 0);
  const jittery = receiverAt();
  for (let sequence = 0; sequence < 400; sequence++) {
    jittery.clock.ms = sequence * 20 + (sequence % 2) * 10; // every other one 10 ms late: |D| = 10 each time
    jittery.receiver.receive(1, sequence, Buffer.of(1), 'udp');
    jittery.receiver.receive(2, sequence, Buffer.of(1), 'tcp');
  }
  const [udp, tcp] = jittery.receiver.speakerStats();
  t.ok(Math.abs(udp!.jitterMs - 10) < 0.5, `jitter ${udp!.jitterMs} ms, expected about 10`);
  t.equal(tcp!.jitterMs, 0);
});
