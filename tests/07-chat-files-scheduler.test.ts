// The chunk scheduler (07-chat-files/write-scheduler.ts) with a test double for the socket: at
// most one chunk is ever handed to the socket before its write completes, control frames go at
// once (so they wait behind at most that one chunk), transfers alternate round-robin, and a
// control frame queued "after" a chunk follows it.
import t from 'tap';
import { ChunkScheduler, type ChunkSource } from '../07-chat-files/write-scheduler.ts';

function harness() {
  const written: string[] = [];
  const pending: (() => void)[] = [];
  const scheduler = new ChunkScheduler(
    (frame, flushed) => {
      written.push(frame.toString());
      pending.push(flushed);
    },
    (frame) => written.push(frame.toString()),
  );
  const flushOne = () => pending.shift()!();
  return { written, pending, scheduler, flushOne };
}

function source(name: string, count: number): ChunkSource {
  let sent = 0;
  return { nextChunk: () => (sent < count ? Buffer.from(`${name}${sent++}`) : null) };
}

t.test('one chunk at a time: the next goes only when the previous write completed', async (t) => {
  const { written, pending, scheduler, flushOne } = harness();
  scheduler.add(source('a', 3));
  t.same(written, ['a0'], 'one chunk written');
  t.equal(scheduler.queuedChunkBytes, 2, 'its bytes are known (the voice rule ignores them)');
  scheduler.pump();
  scheduler.pump();
  t.same(written, ['a0'], 'pumping again writes nothing while it waits');
  flushOne();
  t.same(written, ['a0', 'a1']);
  flushOne();
  flushOne();
  t.same(written, ['a0', 'a1', 'a2']);
  t.equal(pending.length, 0);
  t.equal(scheduler.queuedChunkBytes, 0);
});

t.test('round-robin between transfers: a small one is not stuck behind a big one', async (t) => {
  const { written, scheduler, flushOne } = harness();
  scheduler.add(source('big', 100));
  scheduler.add(source('small', 2));
  for (let i = 0; i < 5; i++) flushOne();
  t.same(written, ['big0', 'small0', 'big1', 'small1', 'big2', 'big3']);
});

t.test('a control frame queued after a chunk follows it; clear and close stop everything', async (t) => {
  const { written, scheduler, flushOne } = harness();
  let sent = false;
  scheduler.add({
    nextChunk: () => {
      if (sent) return null;
      sent = true;
      scheduler.after(Buffer.from('END'));
      return Buffer.from('last');
    },
  });
  t.same(written, ['last', 'END'], 'TRANSFER_END after the last chunk, never before');
  scheduler.add(source('x', 5));
  scheduler.close();
  flushOne();
  t.same(written, ['last', 'END'], 'nothing after close');
});
