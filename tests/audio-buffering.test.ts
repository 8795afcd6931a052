// The small pure pieces between devices and the network: the playback
// (jitter) buffer, the frame chunker and the token bucket.
import t from 'tap';
import { FRAME_BYTES } from '#shared/audio/format.ts';
import { FrameChunker } from '#shared/audio/frame-chunker.ts';
import { PlaybackBuffer } from '#shared/audio/playback-buffer.ts';
import { TokenBucket } from '#shared/token-bucket.ts';

/** A frame filled with one byte value, easy to tell apart. */
const frame = (n: number): Buffer => Buffer.alloc(FRAME_BYTES, n);
const silence = Buffer.alloc(FRAME_BYTES);

t.test('the playback buffer plays frames in arrival order', async (t) => {
  const buffer = new PlaybackBuffer(3);
  buffer.push(frame(1));
  buffer.push(frame(2));
  t.equal(buffer.length, 2);
  t.same(buffer.pull(), frame(1));
  t.same(buffer.pull(), frame(2));
  t.equal(buffer.underruns, 0);
  t.equal(buffer.droppedFrames, 0);
});

t.test('an empty playback buffer plays silence and counts an underrun', async (t) => {
  const buffer = new PlaybackBuffer(3);
  t.same(buffer.pull(), silence);
  t.same(buffer.pull(), silence);
  t.equal(buffer.underruns, 2);
  buffer.push(frame(7));
  t.same(buffer.pull(), frame(7), 'playing resumes with the next frame');
  t.equal(buffer.underruns, 2);
});

t.test('a full playback buffer drops the OLDEST frame, bounding the delay', async (t) => {
  const buffer = new PlaybackBuffer(3);
  for (let n = 1; n <= 5; n++) buffer.push(frame(n));
  t.equal(buffer.length, 3, 'never more than maxFrames');
  t.equal(buffer.droppedFrames, 2);
  t.same([buffer.pull(), buffer.pull(), buffer.pull()], [frame(3), frame(4), frame(5)], 'the newest three remain');
  t.same(buffer.pull(), silence);
  // Going round the ring many times keeps the order.
  const played: number[] = [];
  for (let n = 1; n <= 100; n++) {
    buffer.push(frame(n));
    played.push(buffer.pull()[0]!);
  }
  t.same(played, Array.from({ length: 100 }, (_, i) => i + 1), 'in order after many wraps');
  t.throws(() => new PlaybackBuffer(0), RangeError);
});

t.test('the chunker turns chunks of any size into whole frames', async (t) => {
  // A stream of 5 frames' worth of numbered bytes, cut at awkward places.
  const stream = Buffer.alloc(5 * FRAME_BYTES);
  for (let i = 0; i < stream.length; i++) stream[i] = (i * 31 + (i >> 8)) & 0xff;
  const cuts = [0, 1, 700, 1920, 1921, 5000, 5760, 9000, 9500];
  const chunker = new FrameChunker();
  const frames: Buffer[] = [];
  for (let i = 1; i < cuts.length; i++) chunker.push(stream.subarray(cuts[i - 1], cuts[i]), (f) => frames.push(f));
  t.equal(frames.length, 4, 'four complete frames');
  // Checked after all pushes: earlier frames were not overwritten by later chunks.
  t.same(Buffer.concat(frames), stream.subarray(0, 4 * FRAME_BYTES), 'bytes unchanged, in order');
  t.equal(chunker.bufferedBytes, 9500 - 4 * FRAME_BYTES, 'the rest waits for more');
  chunker.push(stream.subarray(9500), (f) => frames.push(f));
  t.same(frames[4], stream.subarray(4 * FRAME_BYTES), 'and completes the fifth frame');
  t.equal(chunker.bufferedBytes, 0);
});

t.test('the token bucket allows a burst, then one token per period', async (t) => {
  let now = 0;
  const bucket = new TokenBucket(20, 5, () => now);
  const burst = Array.from({ length: 7 }, () => bucket.tryTake());
  t.same(burst, [true, true, true, true, true, false, false], 'starts full: 5 at once');
  t.equal(bucket.msUntilNextToken(), 20);
  now = 10;
  t.equal(bucket.tryTake(), false, 'half a period is not enough');
  t.equal(bucket.msUntilNextToken(), 10);
  now = 20;
  t.equal(bucket.tryTake(), true);
  // A source 30x faster than real time for one second gets 50 frames through.
  let passed = 0;
  for (let i = 0; i < 1500; i++) {
    now = 20 + (i * 1000) / 1500;
    if (bucket.tryTake()) passed++;
  }
  t.ok(passed >= 49 && passed <= 50, `${passed} of 1500 frames passed in one second`);
  now = 1_000_000;
  t.equal([1, 2, 3, 4, 5, 6].filter(() => bucket.tryTake()).length, 5, 'never stores more than the capacity');
});
