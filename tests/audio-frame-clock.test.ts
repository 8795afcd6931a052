// FrameClock: ticks are due at start + n * period, whatever the event loop does.
import t from 'tap';
import { FrameClock } from '#shared/audio/frame-clock.ts';
import { SeededRandom } from '../conformance/harness/seeded-random.ts';
import { ManualScheduler } from './support/manual-scheduler.ts';

interface Tick {
  index: number;
  time: number;
  lateness: number;
}

t.test('late timers do not make the clock drift over five minutes', async (t) => {
  const random = new SeededRandom(42); // the same jitter on every run, so a failure reproduces
  // Every timer fires 0..3 ms late and every tick costs 0.5 ms of work.
  const scheduler = new ManualScheduler(() => random.next() * 3);
  const ticks: Tick[] = [];
  const clock = new FrameClock(
    (index, lateness) => {
      ticks.push({ index, time: scheduler.now(), lateness });
      scheduler.spend(0.5);
    },
    { scheduler },
  );
  clock.start();
  const fiveMinutes = 5 * 60 * 1000;
  scheduler.advance(fiveMinutes);
  clock.stop();

  // One tick per 20 ms: ticks 0 .. 15000 are due by the end; the last one may
  // still be waiting for its (late) timer.
  t.ok(ticks.length >= fiveMinutes / 20, `${ticks.length} ticks in five minutes`);
  t.ok(ticks.length <= fiveMinutes / 20 + 1);
  t.ok(ticks.every((tick, i) => tick.index === i), 'no tick skipped or repeated');
  // Each tick ran right after its own due time: the error does not accumulate.
  const worst = Math.max(...ticks.map((tick) => tick.time - tick.index * 20));
  t.ok(worst >= 0 && worst < 3.6, `every tick within 3.6 ms of its due time (worst ${worst.toFixed(2)} ms)`);
  t.ok(
    ticks.every((tick) => Math.abs(tick.lateness - (tick.time - tick.index * 20)) < 1e-9),
    'lateness is the time since the due time',
  );
});

t.test('for contrast: chained setTimeout(20) on the same timers falls seconds behind', async (t) => {
  const random = new SeededRandom(42); // the same jitter on every run, so a failure reproduces
  const scheduler = new ManualScheduler(() => random.next() * 3);
  let count = 0;
  const tick = (): void => {
    count++;
    scheduler.spend(0.5);
    scheduler.setTimeout(tick, 20);
  };
  scheduler.setTimeout(tick, 0);
  scheduler.advance(5 * 60 * 1000);
  const behindMs = (15001 - count) * 20;
  t.ok(behindMs > 10_000, `the naive loop is ${behindMs / 1000} s behind`);
});

t.test('after a short stall the overdue ticks run back to back', async (t) => {
  const scheduler = new ManualScheduler();
  const ticks: Tick[] = [];
  const clock = new FrameClock(
    (index, lateness) => {
      ticks.push({ index, time: scheduler.now(), lateness });
      if (index === 10) scheduler.spend(90); // the process stalls for 90 ms
    },
    { scheduler },
  );
  clock.start();
  scheduler.advance(300);
  clock.stop();

  // The stall ends at 200 + 90 = 290 ms; ticks 11..14 (due 220..280) are overdue.
  const afterStall = ticks.slice(11, 16).map(({ index, time, lateness }) => [index, time, lateness]);
  t.same(afterStall, [
    [11, 290, 70],
    [12, 290, 50],
    [13, 290, 30],
    [14, 290, 10],
    [15, 300, 0],
  ]);
});

t.test('runIfDue runs an overdue tick at once, and does nothing before its due time', async (t) => {
  const scheduler = new ManualScheduler(() => 15); // every timer fires 15 ms late: a busy event loop
  const ticks: Tick[] = [];
  const clock = new FrameClock((index, lateness) => ticks.push({ index, time: scheduler.now(), lateness }), { scheduler });
  clock.start();
  scheduler.advance(15); // tick 0's timer fires (15 ms late)
  t.same(ticks.map((tick) => tick.index), [0]);
  scheduler.spend(4); // t = 19: tick 1 is due at 20
  clock.runIfDue();
  t.equal(ticks.length, 1, 'nothing runs before its due time');
  scheduler.spend(2); // t = 21: tick 1 is 1 ms overdue; its timer would fire at 15 + 5 + 15 = 35
  clock.runIfDue();
  t.same(ticks.map(({ index, time, lateness }) => [index, time, lateness]), [[0, 15, 15], [1, 21, 1]], 'tick 1 ran at once');
  t.equal(scheduler.pendingTimers, 1, 'one timer stays armed, for tick 2');
  scheduler.advance(19); // t = 40: tick 2 (due 40) has a timer for 40 + 15 = 55
  scheduler.advance(15);
  t.same(ticks.map((tick) => tick.index), [0, 1, 2], 'no tick runs twice, none is lost');
  clock.stop();
  clock.runIfDue();
  t.equal(ticks.length, 3, 'a stopped clock does not tick');
});

t.test('after a long stall the clock skips ahead and reports how many ticks it skipped', async (t) => {
  const scheduler = new ManualScheduler();
  const indexes: number[] = [];
  const skips: number[] = [];
  const clock = new FrameClock(
    (index) => {
      indexes.push(index);
      if (index === 5) scheduler.spend(1000); // a one-second stall
    },
    { scheduler, onSkip: (skipped) => skips.push(skipped) },
  );
  clock.start();
  scheduler.advance(1200);
  clock.stop();

  // Stall ends at 100 + 1000 = 1100 ms: ticks 6..55 are due (50 > 10).
  // All but the latest (55) are skipped, and the clock keeps its timeline.
  t.same(skips, [49]);
  t.same(indexes.slice(0, 8), [0, 1, 2, 3, 4, 5, 55, 56]);
  t.equal(indexes.at(-1), 60, 'tick 60 is due at 1200 ms');
});

t.test('maxCatchUpTicks is the most overdue ticks that are still played', async (t) => {
  for (const [stallMs, expectSkips] of [
    [60, []], // ticks 1, 2, 3 overdue: 3 = the limit, all played
    [80, [3]], // ticks 1..4 overdue: 4 > 3, skip to tick 4
  ] as const) {
    const scheduler = new ManualScheduler();
    const skips: number[] = [];
    const indexes: number[] = [];
    const clock = new FrameClock(
      (index) => {
        indexes.push(index);
        if (index === 0) scheduler.spend(stallMs);
      },
      { scheduler, maxCatchUpTicks: 3, onSkip: (n) => skips.push(n) },
    );
    clock.start();
    scheduler.advance(100);
    clock.stop();
    t.same(skips, expectSkips, `stall of ${stallMs} ms`);
    t.equal(indexes.at(-1), 5, 'tick 5 is due at 100 ms either way');
  }
});

t.test('a custom period and stop() from inside a tick', async (t) => {
  const scheduler = new ManualScheduler();
  const times: number[] = [];
  const clock = new FrameClock(
    (index) => {
      times.push(scheduler.now());
      if (index === 3) clock.stop();
    },
    { scheduler, periodMs: 5 },
  );
  clock.start();
  scheduler.advance(100);
  t.same(times, [0, 5, 10, 15]);
  t.equal(clock.isRunning, false);
  t.equal(scheduler.pendingTimers, 0, 'no timer left behind');
});

t.test('real timers: the tick index follows the wall clock', async (t) => {
  const ticks: number[] = [];
  const started = performance.now();
  const clock = new FrameClock((index) => ticks.push(index), { periodMs: 10 });
  clock.start();
  await new Promise((resolve) => setTimeout(resolve, 300));
  clock.stop();
  const elapsedTicks = Math.floor((performance.now() - started) / 10);
  const last = ticks.at(-1) ?? -1;
  // Tolerant of a loaded machine: catch-up and skipping keep the index in step.
  t.ok(Math.abs(last - elapsedTicks) <= 1, `last tick ${last}, ${elapsedTicks} periods elapsed`);
  t.ok(ticks.every((index, i) => i === 0 || index > ticks[i - 1]!), 'indexes increase');
});
