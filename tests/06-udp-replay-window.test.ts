// The server's anti-replay window (06-udp/udp-voice.ts, README "Replays and duplicates"): the highest
// VOICE_UP sequence accepted and a bitmap of the last 64 (the highest and the 63 before it), compared modulo 2^16.
import t from 'tap';
import { ReplayWindow } from '../06-udp/udp-voice.ts';

/** Offers each sequence in turn; returns which were accepted. */
function offer(window: ReplayWindow, sequences: number[]): boolean[] {
  return sequences.map((sequence) => {
    const fresh = window.isNew(sequence);
    if (fresh) window.accept(sequence);
    return fresh;
  });
}

t.test('in order: every sequence is new once', async (t) => {
  t.same(offer(new ReplayWindow(), [5, 6, 7, 6, 7, 8]), [true, true, true, false, false, true]);
});

t.test('late but within 64 and not seen: accepted once; 64 or more behind the highest: dropped', async (t) => {
  const window = new ReplayWindow();
  offer(window, [100, 102, 164]);
  t.same(offer(window, [101, 101, 163, 100, 99, 164]), [true, false, true, false, false, false], '101 and 163 are new once; 100 and 99 are 64 and 65 behind 164; 164 is seen');
});

t.test('across the wrap from 65535 to 0', async (t) => {
  const window = new ReplayWindow();
  t.same(offer(window, [65_534, 65_535, 0, 1, 65_535, 65_533, 0]), [true, true, true, true, false, true, false]);
});

t.test('a jump of more than the window forgets everything before it; half the circle back is "behind", not ahead', async (t) => {
  const window = new ReplayWindow();
  offer(window, [10, 11]);
  t.same(offer(window, [1_000, 11, 999, 1_000 - 64, 1_000 + 0x8000]), [true, false, true, false, false]);
});
