// shared/jitter-buffer.ts: a talker's frames waiting for the mixer clock, with bounded delay.
import t from 'tap';
import { FRAME_BYTES } from '#shared/audio/format.ts';
import { type JitterDrop, JitterBuffer } from '#shared/jitter-buffer.ts';

/** A frame whose every byte is `n`, so the frame taken out says which one it was. */
function frame(n: number): Buffer {
  return Buffer.alloc(FRAME_BYTES, n);
}

/** Which frame `taken` is (its first byte), or null. */
function which(taken: Buffer | null): number | null {
  return taken === null ? null : taken[0]!;
}

function buffer(capacity = 3, trimAfterTicks = 25): { jitter: JitterBuffer; drops: JitterDrop[] } {
  const drops: JitterDrop[] = [];
  return { jitter: new JitterBuffer({ capacity, trimAfterTicks, onDrop: (reason) => drops.push(reason) }), drops };
}

t.test('take() on an empty buffer is null, and counts nothing', async (t) => {
  const { jitter, drops } = buffer();
  t.equal(jitter.take(), null);
  t.same(drops, []);
});

t.test('frames come out oldest first, one per take()', async (t) => {
  const { jitter } = buffer();
  jitter.push(frame(1));
  jitter.push(frame(2));
  t.same([which(jitter.take()), which(jitter.take()), which(jitter.take())], [1, 2, null]);
});

t.test('a frame is copied in: the caller may reuse its buffer at once', async (t) => {
  const { jitter } = buffer();
  const chunk = frame(7);
  jitter.push(chunk);
  chunk.fill(9);
  t.equal(which(jitter.take()), 7);
});

t.test('overflow drops the OLDEST frame, and says so', async (t) => {
  const { jitter, drops } = buffer(3);
  for (let n = 1; n <= 5; n++) jitter.push(frame(n));
  const taken = [which(jitter.take()), which(jitter.take()), which(jitter.take()), which(jitter.take())];
  t.same(taken, [3, 4, 5, null], 'the newest three are kept, never more than the capacity');
  t.equal(jitter.overflows, 2);
  t.same(drops, ['overflow', 'overflow']);
});

t.test('wrapping around the slots many times keeps the order', async (t) => {
  const { jitter } = buffer(3, 1_000); // no backlog trim in 50 ticks: the reference below has none
  const taken: (number | null)[] = [];
  for (let n = 0; n < 50; n++) {
    jitter.push(frame(n));
    if (n % 2 === 1) jitter.push(frame(100 + n));
    taken.push(which(jitter.take()));
  }
  // Reference: the same pushes and takes on a plain array that drops its head when over 3.
  const queue: number[] = [];
  const expected: (number | null)[] = [];
  for (let n = 0; n < 50; n++) {
    queue.push(n);
    if (n % 2 === 1) queue.push(100 + n);
    while (queue.length > 3) queue.shift();
    expected.push(queue.shift() ?? null);
  }
  t.same(taken, expected);
});

t.test('one frame left waiting tick after tick is normal jitter: nothing is trimmed', async (t) => {
  const { jitter, drops } = buffer(3, 5);
  jitter.push(frame(0));
  for (let tick = 1; tick <= 50; tick++) {
    jitter.push(frame(tick));
    t.equal(which(jitter.take()), tick - 1, `tick ${tick}`);
  }
  t.equal(jitter.trims, 0);
  t.same(drops, []);
});

t.test('a standing backlog (2+ left waiting) for trimAfterTicks ticks loses its oldest frame', async (t) => {
  const trimAfterTicks = 5;
  const { jitter, drops } = buffer(3, trimAfterTicks);
  // A stall: three frames arrive together; then one arrives per tick, so 2 stay waiting after each take.
  jitter.push(frame(0));
  jitter.push(frame(1));
  jitter.push(frame(2));
  const taken: (number | null)[] = [];
  for (let tick = 0; tick < trimAfterTicks; tick++) {
    taken.push(which(jitter.take()));
    jitter.push(frame(3 + tick));
  }
  // Ticks 1..4 took 0..3; tick 5 was the 5th in a row with a backlog: frame 4 was dropped, 5 taken.
  t.same(taken, [0, 1, 2, 3, 5]);
  t.equal(jitter.trims, 1);
  t.same(drops, ['trim']);
  t.same([which(jitter.take()), which(jitter.take()), which(jitter.take())], [6, 7, null], 'one frame less waiting: 20 ms less delay');
});

t.test('clear() forgets every waiting frame and any backlog', async (t) => {
  const { jitter, drops } = buffer(3, 2);
  jitter.push(frame(1));
  jitter.push(frame(2));
  jitter.push(frame(3));
  t.equal(which(jitter.take()), 1); // one tick of backlog counted
  jitter.clear();
  t.equal(jitter.take(), null, 'nothing waits after clear()');
  // A fresh backlog must build up from zero again: one tick of it is not enough to trim.
  jitter.push(frame(4));
  jitter.push(frame(5));
  jitter.push(frame(6));
  t.equal(which(jitter.take()), 4);
  t.same(drops, [], 'the backlog counted before clear() did not carry over');
});

t.test('no onDrop: drops are still counted', async (t) => {
  const jitter = new JitterBuffer({ capacity: 1, trimAfterTicks: 25 });
  jitter.push(frame(1));
  jitter.push(frame(2));
  t.equal(jitter.overflows, 1);
  t.equal(which(jitter.take()), 2);
});

t.test('bad sizes are refused: our own bug, not the peer\'s', async (t) => {
  t.throws(() => new JitterBuffer({ capacity: 0, trimAfterTicks: 25 }), RangeError);
  t.throws(() => new JitterBuffer({ capacity: 3, trimAfterTicks: 0 }), RangeError);
  t.throws(() => buffer().jitter.push(Buffer.alloc(FRAME_BYTES - 1)), RangeError);
});
