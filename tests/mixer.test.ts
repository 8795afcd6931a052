import t from 'tap';
import { FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE } from '#shared/audio/format.ts';
import { RoomMixer, clipSample } from '#shared/mixer.ts';

// ---- Independent helpers: sample by sample with Buffer methods, no typed-array tricks ----

/** Reference mix: the sum of every frame except frames[exclude] (-1 excludes none), clipped. */
export function naiveMix(frames: Buffer[], exclude: number): Buffer {
  const out = Buffer.alloc(FRAME_BYTES);
  for (let i = 0; i < FRAME_SAMPLES; i++) {
    let total = 0;
    frames.forEach((frame, k) => {
      if (k !== exclude) total += frame.readInt16LE(i * 2);
    });
    out.writeInt16LE(Math.min(32767, Math.max(-32768, total)), i * 2);
  }
  return out;
}

/** A sine frame; frequencies that are multiples of 50 Hz fit a whole number of cycles in 20 ms. */
function tone(frequencyHz: number, amplitude: number): Buffer {
  const frame = Buffer.alloc(FRAME_BYTES);
  for (let i = 0; i < FRAME_SAMPLES; i++) {
    frame.writeInt16LE(Math.round(amplitude * Math.sin((2 * Math.PI * frequencyHz * i) / SAMPLE_RATE)), i * 2);
  }
  return frame;
}

function constant(value: number): Buffer {
  const frame = Buffer.alloc(FRAME_BYTES);
  for (let i = 0; i < FRAME_SAMPLES; i++) frame.writeInt16LE(value, i * 2);
  return frame;
}

function samples(frame: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i < FRAME_SAMPLES; i++) out.push(frame.readInt16LE(i * 2));
  return out;
}

/** How much of `voice` is in `mix`: 1 = all of it at full level, 0 = none (for orthogonal tones). */
function amountOf(voice: Buffer, mix: Buffer): number {
  let dot = 0;
  let energy = 0;
  for (let i = 0; i < FRAME_SAMPLES; i++) {
    const v = voice.readInt16LE(i * 2);
    dot += v * mix.readInt16LE(i * 2);
    energy += v * v;
  }
  return dot / energy;
}

/** Run one tick: every frame talks, returns each talker's mix then a silent listener's mix. */
function tick(mixer: RoomMixer, frames: Buffer[]): { talkers: Buffer[]; silent: Buffer } {
  mixer.begin();
  for (const frame of frames) mixer.add(frame);
  const talkers = frames.map((frame) => {
    const out = Buffer.alloc(FRAME_BYTES);
    mixer.mixFor(frame, out);
    return out;
  });
  const silent = Buffer.alloc(FRAME_BYTES);
  mixer.mixFor(null, silent);
  return { talkers, silent };
}

// ---- Specification ----

t.test('clipSample saturates to 16 bits instead of wrapping', async (t) => {
  t.equal(clipSample(0), 0);
  t.equal(clipSample(32767), 32767);
  t.equal(clipSample(32768), 32767);
  t.equal(clipSample(100000), 32767);
  t.equal(clipSample(-32768), -32768);
  t.equal(clipSample(-32769), -32768);
  t.equal(clipSample(-100000), -32768);
  t.equal(clipSample(-1234), -1234);
});

t.test('three talkers: each hears exactly the other two, never itself', async (t) => {
  const frames = [tone(300, 8000), tone(500, 8000), tone(700, 8000)];
  const { talkers } = tick(new RoomMixer(), frames);
  talkers.forEach((mix, me) => {
    t.same(samples(mix), samples(naiveMix(frames, me)), `talker ${me}: sample-exact sum of the others`);
    t.ok(Math.abs(amountOf(frames[me], mix)) < 0.001, `talker ${me}: none of its own voice`);
    frames.forEach((other, k) => {
      if (k !== me) t.ok(Math.abs(amountOf(other, mix) - 1) < 0.001, `talker ${me}: talker ${k} at full level`);
    });
  });
});

t.test('a listener who did not talk hears all talkers', async (t) => {
  const frames = [tone(300, 8000), tone(500, 8000), tone(700, 8000)];
  const { silent } = tick(new RoomMixer(), frames);
  t.same(samples(silent), samples(naiveMix(frames, -1)));
  for (const frame of frames) t.ok(Math.abs(amountOf(frame, silent) - 1) < 0.001);
});

t.test('every silent listener gets the same mix', async (t) => {
  const mixer = new RoomMixer();
  const frames = [tone(300, 8000), tone(500, 8000)];
  mixer.begin();
  for (const frame of frames) mixer.add(frame);
  const first = Buffer.alloc(FRAME_BYTES);
  const second = Buffer.alloc(FRAME_BYTES);
  mixer.mixFor(null, first);
  mixer.mixFor(frames[0], Buffer.alloc(FRAME_BYTES)); // a talker in between must not disturb it
  mixer.mixFor(null, second);
  t.same(samples(second), samples(first));
  t.same(samples(first), samples(naiveMix(frames, -1)));
});

t.test('loud sums clip to the 16-bit limits instead of wrapping around', async (t) => {
  const high = tick(new RoomMixer(), [constant(30000), constant(30000)]).silent;
  t.ok(samples(high).every((s) => s === 32767), '30000 + 30000 gives 32767');
  const low = tick(new RoomMixer(), [constant(-30000), constant(-30000)]).silent;
  t.ok(samples(low).every((s) => s === -32768), '-30000 + -30000 gives -32768');
});

t.test('a single talker is heard unchanged: sums, not averages', async (t) => {
  const voice = tone(440, 12000);
  const { talkers, silent } = tick(new RoomMixer(), [voice]);
  t.same(samples(silent), samples(voice), 'listener hears the talker at its own level');
  t.ok(samples(talkers[0]).every((s) => s === 0), 'the talker hears silence, not itself');
});

t.test('a voice keeps its level as others join', async (t) => {
  const voice = tone(300, 8000);
  const alone = tick(new RoomMixer(), [voice]).silent;
  const together = tick(new RoomMixer(), [voice, tone(500, 8000), tone(700, 8000)]).silent;
  t.ok(Math.abs(amountOf(voice, alone) - 1) < 0.001);
  t.ok(Math.abs(amountOf(voice, together) - 1) < 0.001);
});

t.test("own voice is removed from the UNCLIPPED total, even when the total clipped", async (t) => {
  // Total 30000 + 20000 + 10000 = 60000 clips for silent listeners, but each talker's
  // share must come from the true total: clip(32767 - 30000) = 2767 would be wrong.
  const frames = [constant(30000), constant(20000), constant(10000)];
  const { talkers, silent } = tick(new RoomMixer(), frames);
  t.ok(samples(silent).every((s) => s === 32767), 'silent listener: clipped total');
  t.ok(samples(talkers[0]).every((s) => s === 30000), 'talker 0 hears 20000 + 10000');
  t.ok(samples(talkers[1]).every((s) => s === 32767), 'talker 1 hears 30000 + 10000, clipped');
  t.ok(samples(talkers[2]).every((s) => s === 32767), 'talker 2 hears 30000 + 20000, clipped');

  const two = tick(new RoomMixer(), [constant(30000), constant(20000)]);
  t.ok(samples(two.talkers[0]).every((s) => s === 20000), 'of two talkers, each hears exactly the other');
  t.ok(samples(two.talkers[1]).every((s) => s === 30000));
});

t.test('frames at odd byte offsets are read correctly', async (t) => {
  const frames = [tone(300, 8000), tone(500, 8000), tone(700, 8000)];
  const oddCopies = frames.map((frame) => {
    const backing = Buffer.alloc(FRAME_BYTES + 1);
    const odd = backing.subarray(1);
    frame.copy(odd);
    return odd;
  });
  t.ok(oddCopies.every((frame) => frame.byteOffset % 2 === 1), 'test inputs really are at odd offsets');
  const { talkers, silent } = tick(new RoomMixer(), oddCopies);
  talkers.forEach((mix, me) => t.same(samples(mix), samples(naiveMix(frames, me))));
  t.same(samples(silent), samples(naiveMix(frames, -1)));
});

t.test('the mix can be written after a 5-byte header, leaving the header alone', async (t) => {
  const frames = [tone(300, 8000), tone(500, 8000)];
  const mixer = new RoomMixer();
  mixer.begin();
  for (const frame of frames) mixer.add(frame);
  for (const own of [frames[0], null]) {
    const packet = Buffer.alloc(5 + FRAME_BYTES);
    packet.write('HEADR', 0, 'latin1');
    mixer.mixFor(own, packet.subarray(5));
    t.equal(packet.toString('latin1', 0, 5), 'HEADR');
    t.same(samples(packet.subarray(5)), samples(naiveMix(frames, own === null ? -1 : 0)));
  }
});

t.test('the sum starts from zero each tick', async (t) => {
  const mixer = new RoomMixer();
  tick(mixer, [constant(30000), constant(30000)]);
  const quiet = tone(500, 1000);
  const { talkers, silent } = tick(mixer, [quiet]);
  t.same(samples(silent), samples(quiet), 'nothing left over from the previous tick');
  t.ok(samples(talkers[0]).every((s) => s === 0));
  const empty = tick(mixer, []);
  t.ok(samples(empty.silent).every((s) => s === 0), 'a tick with no talkers is silence');
});

t.test('misuse is reported clearly', async (t) => {
  const mixer = new RoomMixer();
  mixer.begin();
  t.throws(() => mixer.add(Buffer.alloc(FRAME_BYTES - 2)), RangeError, 'short frame');
  mixer.add(constant(1));
  t.throws(() => mixer.mixFor(null, Buffer.alloc(FRAME_BYTES + 1)), RangeError, 'wrong output size');
  mixer.mixFor(null, Buffer.alloc(FRAME_BYTES));
  t.throws(() => mixer.add(constant(1)), /begin\(\)/, 'adding after mixing in the same tick');
  mixer.begin();
  t.doesNotThrow(() => mixer.add(constant(1)), 'a new tick accepts frames again');
});
