// The hostile-client checks of stages 02-04: each plays one kind of bad client against the server
// under test while a well-behaved conversation goes on (steady-pair.ts), and then requires:
//   - the offender got the README's ERROR code (when it still reads) and was closed;
//   - the others heard about one frame per 20 ms throughout, with no long silence;
//   - a newcomer can join and is told only the users really present (no ghosts);
//   - the server's memory and open files stay bounded (when the server runs on this machine).
// Only the wire protocol is used, so the checks grade a server in any language (SERVER_CMD).
import { callChecks } from './call-checks.ts';
import { datagramChecks } from './datagram-checks.ts';
import { type DocumentedBucket, mostLetThrough } from '../harness/bucket-limit.ts';
import { CheckFailure } from '../harness/check-failure.ts';
import type { Check } from '../harness/checks.ts';
import { floodFrame, memoryLimitFor, playViolations, sendAll, sleep, withSteadyPair } from './check-helpers.ts';
import { expectBoundedGrowth, expectErrorAndClose, expectNoHostileText, expectServerServes, peakGrowthDuring } from './expectations.ts';
import { frame, jsonFrame } from './frames.ts';
import { FUZZ_ROOM, fuzzCase } from './fuzz-case.ts';
import { closeAfterError } from './close-after-error-check.ts';
import { connectionLimit } from './connection-limit-check.ts';
import { userLimit } from './user-limit-check.ts';
import { sendLimit } from './send-limit-check.ts';
import { newsLimit } from './news-limit-check.ts';
import { joinFlood } from './join-flood-check.ts';
import { ListeningUser } from './listening-user.ts';
import { runFuzzCase } from './run-fuzz-case.ts';
import { SeededRandom } from '../harness/seeded-random.ts';
import { findServerProcess, MB } from '../harness/proc-stats.ts';
import { processNotFound, Unmeasured } from '../harness/unmeasured.ts';
import { describeWindow, expectDuration, showMs, timingWindow } from '../harness/tolerance.ts';
import { afterJoining, beforeJoining } from './violations.ts';
import { AUDIO, BYE, ERROR, HANDSHAKE_TIMEOUT_MS, HELLO, LEFT, WELCOME, type StageWire } from './wire-spec.ts';

/** Stage 05's voice bucket (50 VOICE per second, bursts of 10), kept by every later stage. */
const VOICE_BUCKET: DocumentedBucket = { burst: 10, perSecond: 50 };

/** Fuzz cases in `npm test` (the fuzzer plays thousands: npm run fuzz). */
export const SAMPLE_CASES = 30;

function fuzzSample(wire: StageWire): Check {
  return {
    name: `hostile ${wire.id}: ${SAMPLE_CASES} seeded random and mutated streams get the README's answers; the others are not disturbed`,
    run: async (context) => {
      await withSteadyPair(context, wire, 'fz', FUZZ_ROOM, 'random and mutated streams', async () => {
        const problems: string[] = [];
        let next = 1;
        const worker = async () => {
          while (next <= SAMPLE_CASES) {
            const fuzz = fuzzCase(wire, next++);
            const verdict = await runFuzzCase(context.server.host, context.server.port, wire, fuzz);
            if (verdict.problem !== null) problems.push(`seed ${fuzz.seed} (${fuzz.recipe}): ${verdict.problem}; server sent ${verdict.transcript}`);
          }
        };
        await Promise.all(Array.from({ length: 4 }, worker));
        if (problems.length > 0) {
          throw new CheckFailure(`${problems.length} of ${SAMPLE_CASES} fuzz cases got a wrong answer`, {
            expected: 'every stream gets the answer the README gives it: ERROR with the right code and a close, or no complaint',
            actual: problems.slice(0, 5).join('\n'),
            hint: `replay one with: npm run fuzz -- --stage ${wire.id} --seed SEED --cases 1`,
          });
        }
      });
      await expectServerServes(context, wire, 'after-fuzz', FUZZ_ROOM, [], 'the fuzz cases');
    },
  };
}

function violationsBeforeJoining(wire: StageWire): Check {
  const room = 'hostile-a';
  return {
    name: `hostile ${wire.id}: bad frames before joining (types, lengths, UTF-8, JSON, fields, names, audio before HELLO) get their ERROR codes`,
    run: async (context) => {
      await withSteadyPair(context, wire, 'pre', room, 'connections sending bad frames', async (pair) => {
        await playViolations(context, wire, beforeJoining(wire, room));
        expectNoHostileText(pair.listener);
      });
      await expectServerServes(context, wire, 'after-pre', room, [], 'bad frames before joining');
    },
  };
}

function violationsAfterJoining(wire: StageWire): Check {
  const room = 'hostile-b';
  const violations = afterJoining(wire, room);
  const name = (i: number) => `offender-${i}`;
  return {
    name: `hostile ${wire.id}: bad frames after joining (second HELLO, audio of the wrong size, unknown types) get their ERROR codes${wire.mixes ? ' and LEFT "error"' : ''}`,
    run: async (context) => {
      if (!wire.mixes) {
        // One user at a time: each offender takes the slot, misbehaves, and must free it for the next.
        for (const [i, violation] of violations.entries()) await playViolations(context, wire, [violation], () => name(i));
        await expectServerServes(context, wire, 'after-post', room, [], 'bad frames after joining');
        return;
      }
      await withSteadyPair(context, wire, 'post', room, 'joined users sending bad frames', async (pair) => {
        const since = pair.mark();
        await playViolations(context, wire, violations, name, room);
        for (const i of violations.keys()) {
          await pair.listener.waitFor(`LEFT {"name":"${name(i)}","reason":"error"}`, (f) => f.type === LEFT && f.json?.name === name(i) && f.json?.reason === 'error', 2_000, since);
        }
      });
      await expectServerServes(context, wire, 'after-post', room, [], 'bad frames after joining');
    },
  };
}

/**
 * Stage 05 forwards instead of mixing: a flood of VOICE is cut by the rate limit (10 at once, then
 * one per 20 ms; more than 250 dropped within 5 s is ERROR rate_limited), so the listeners get at
 * most the burst and real time of it, and the flooder is disconnected.
 */
function voiceFlood(wire: StageWire): Check {
  const frames = 10_000;
  const packetBytes = 60;
  const room = 'hostile-c';
  return {
    name: `hostile ${wire.id}: a client sending ${frames} VOICE at once gets ERROR rate_limited; the room gets at most the burst of it`,
    run: async (context) => {
      await withSteadyPair(context, wire, 'fl', room, 'a flood of VOICE from another user', async (pair) => {
        const flooder = await ListeningUser.join(context, wire, 'flooder', room);
        const since = pair.mark();
        const flood = Buffer.concat(Array.from({ length: frames }, (_, i) => {
          const payload = Buffer.alloc(2 + packetBytes, 0x5a);
          payload.writeUInt16BE(i & 0xffff, 0);
          return frame(AUDIO, payload);
        }));
        const sentAt = performance.now();
        // No memory limit here: the flood is 0.67 MB and the flooder is cut after ~260 of it, far
        // under what a garbage-collected server holds anyway (8 MB of noise), so no limit could
        // tell a server that keeps what it read from one that drops it. Queuing the flood for the
        // room is what the forwarded count below fails.
        flooder.send(flood);
        await expectErrorAndClose(flooder, 'rate_limited', `${frames} VOICE at once (more than 250 over the rate limit)`, { allowBefore: (type) => type !== ERROR });
        await sleep(300);
        // The flooder's forwarded VOICE are the only ones of 4 + packetBytes payload bytes.
        const forwarded = pair.listener.frames.slice(since).filter((f) => f.type === AUDIO && f.payload.length === 4 + packetBytes && f.at >= sentAt);
        // The server took its last token before the last forwarded VOICE arrived (bucket-limit.ts).
        const allowed = mostLetThrough(VOICE_BUCKET, (forwarded.at(-1)?.at ?? sentAt) - sentAt);
        if (forwarded.length > allowed) {
          throw new CheckFailure('a VOICE flood was forwarded beyond the rate limit', {
            expected: `at most ${allowed} of the flooder's VOICE forwarded (10 at once, then one per 20 ms until the last one forwarded arrived, + 1 for timer granularity)`,
            actual: `${forwarded.length} forwarded`,
            hint: 'a token bucket per user: a VOICE without a token is dropped, not forwarded',
          });
        }
      });
      await expectServerServes(context, wire, 'after-flood', room, [], 'a flood of VOICE');
    },
  };
}

function flood(wire: StageWire): Check {
  if (wire.opusVoice) return voiceFlood(wire);
  const frames = 10_000; // 19 MB, 200 s of audio, sent as fast as TCP takes it
  const floodBytes = frames * floodFrame(0).length;
  const room = 'hostile-c';
  return {
    name: wire.mixes
      ? `hostile ${wire.id}: a client sending ${frames} frames at once adds no latency (at most the jitter buffer), and the server grows by less than 1.5 times the flood`
      : `hostile ${wire.id}: a client sending ${frames} frames at once gets echoes in order, and the server grows by less than 1.5 times the flood`,
    run: async (context) => {
      const server = findServerProcess(context.server.port);
      const unmeasured = new Unmeasured();
      // A garbage-collected server holds much of what it read until its collector runs (the
      // reference grew by up to 0.8 of a JOIN flood), so the limit is the flood and half again:
      // it fails growth past what was sent (echoes or mixes queued for someone), not a server that
      // merely keeps the frames it read; the order (02) and latency (03, 04) assertions judge those.
      const memoryLimit = memoryLimitFor(floodBytes, floodBytes);
      if (!wire.mixes) {
        const flooder = await ListeningUser.join(context, wire, 'flooder', room);
        const growth = await peakGrowthDuring(server, async () => {
          await sendAll(flooder, frames);
          await sleep(500);
        });
        expectBoundedGrowth(growth, memoryLimit, `a flood of ${Math.round(floodBytes / MB)} MB of audio`, unmeasured);
        const echoes = flooder.frames.filter((f) => f.type === AUDIO).map((f) => (f.payload.readInt16LE(0) - 2) / 2);
        const inOrder = echoes.every((seq, i) => i === 0 || seq > echoes[i - 1]!);
        if (!inOrder || echoes.length === 0) {
          throw new CheckFailure('the echoes of a flood are missing or out of order', {
            expected: 'echoes of the frames in the order sent (some may be dropped when the client reads too slowly)',
            actual: `${echoes.length} echoes; first ones: ${echoes.slice(0, 10).join(', ')}`,
          });
        }
        flooder.leave();
        await expectServerServes(context, wire, 'after-flood', room, [], 'a flood');
        unmeasured.settle();
        return;
      }
      await withSteadyPair(context, wire, 'fl', room, 'a flood of audio from another user', async (pair) => {
        const flooder = await ListeningUser.join(context, wire, 'flooder', room);
        const since = pair.mark();
        let sentAllAt = 0;
        const growth = await peakGrowthDuring(server, async () => {
          await sendAll(flooder, frames);
          sentAllAt = performance.now();
          await sleep(1_500);
        });
        expectBoundedGrowth(growth, memoryLimit, `a flood of ${Math.round(floodBytes / MB)} MB of audio`, unmeasured);
        // Which flood frame each mix holds (the talker adds 1, or nothing).
        const heard = pair.listener.frames.slice(since).filter((f) => f.type === AUDIO).map((f) => {
          const sample = f.payload.readInt16LE(0);
          return { at: f.at, seq: sample >= 2 ? (sample - (sample % 2) - 2) / 2 : -1 };
        }).filter((h) => h.seq >= 0);
        const last = heard.at(-1);
        const late = heard.filter((h) => h.at > sentAllAt + 1_000);
        const hint = 'keep at most JITTER_BUFFER_FRAMES frames per talker and drop the OLDEST when one more arrives: a talker sending faster than real time must not build a backlog';
        if (last === undefined || last.seq < frames - 1 - wire.jitterBufferFrames || late.length > 0) {
          throw new CheckFailure('a flooding talker added latency for the listeners', {
            expected: `the listener hears the flood's NEWEST frames (the last one, ${frames - 1}, within ${wire.jitterBufferFrames} frames) and nothing of it more than 1 s after it was all sent`,
            actual: `${heard.length} mixes held the flood; the last held frame ${last?.seq ?? 'none'}; ${late.length} came more than 1 s after the flood was sent (the old frames still queued)`,
            hint,
          });
        }
        flooder.leave();
      });
      unmeasured.settle();
    },
  };
}

function handshakeTimeouts(wire: StageWire): Check {
  const room = 'hostile-e';
  return {
    name: `hostile ${wire.id}: connections that never finish HELLO get handshake_timeout after ${HANDSHAKE_TIMEOUT_MS / 1000} s and are closed`,
    run: async (context) => {
      const partialHello = jsonFrame(HELLO, wire.hello('Slowpoke', room));
      const starts = [Buffer.alloc(0), partialHello.subarray(0, 3), partialHello.subarray(0, 5), partialHello.subarray(0, partialHello.length - 1)];
      const window = timingWindow(HANDSHAKE_TIMEOUT_MS);
      await withSteadyPair(context, wire, 'hs', room, 'connections that never finish their HELLO', async () => {
        const idlers = await Promise.all(Array.from({ length: 40 }, async (_, i) => {
          const user = await ListeningUser.connect(context, wire, `idler ${i}`);
          user.send(starts[i % starts.length]!);
          return user;
        }));
        const opened = performance.now();
        const hint = `a connection without a valid HELLO ${HANDSHAKE_TIMEOUT_MS / 1000} s after it was accepted gets ERROR handshake_timeout`;
        await Promise.all(idlers.map((user, i) =>
          expectErrorAndClose(user, 'handshake_timeout', `a connection that sent ${starts[i % starts.length]!.length} bytes of HELLO`, { timeoutMs: window.latestMs }))).catch((error: unknown) => {
          // Nothing by the end of the window: the timeout is far longer than the README's (or missing).
          if (!(error instanceof CheckFailure) || !/ timed out waiting for /.test(error.summary)) throw error;
          throw new CheckFailure(`the handshake timeout is not ${showMs(HANDSHAKE_TIMEOUT_MS)}: a connection without a valid HELLO got no handshake_timeout within ${showMs(window.latestMs)}`, {
            expected: `ERROR handshake_timeout ${showMs(HANDSHAKE_TIMEOUT_MS)} after connecting (accepted: ${describeWindow(window)}), then a close`,
            actual: error.details.actual ?? error.summary,
            hint,
          });
        });
        expectDuration(performance.now() - opened, window, 'the handshake timeout', 'the last of 40 handshake_timeout errors', hint);
      });
    },
  };
}

function churn(wire: StageWire): Check {
  const room = 'hostile-g';
  const seconds = 5;
  return {
    name: `hostile ${wire.id}: ${seconds} s of joins and leaves (BYE, FIN, reset, mid-HELLO) leak no users, sockets or memory`,
    run: async (context) => {
      const server = findServerProcess(context.server.port);
      const unmeasured = new Unmeasured();
      if (server === undefined) unmeasured.note(processNotFound('open files and idle memory'));
      await withSteadyPair(context, wire, 'ch', room, 'hundreds of joins and leaves', async (pair) => {
        const fdsBefore = server?.openFds();
        const random = new SeededRandom(7);
        const deadline = performance.now() + seconds * 1000;
        let sessions = 0;
        const worker = async (w: number) => {
          while (performance.now() < deadline) {
            const n = sessions++;
            const user = await ListeningUser.connect(context, wire, `churner ${n}`);
            const hello = jsonFrame(HELLO, wire.hello(`churn-${w}-${n}`, room));
            const way = random.int(0, 5);
            if (way === 0) {
              user.socket.destroy(); // connect, then nothing
              continue;
            }
            if (way === 1) {
              user.send(hello.subarray(0, 7)); // half a HELLO, then a reset
              await sleep(random.int(0, 20));
              user.socket.resetAndDestroy();
              continue;
            }
            user.send(hello);
            if (!wire.mixes && random.chance(0.5)) user.send(floodFrame(0));
            await user.waitFor('WELCOME or ERROR', (f) => f.type === WELCOME || f.type === ERROR, 3_000).catch(() => undefined);
            if (wire.mixes) user.send(wire.opusVoice ? wire.talkerFrame() : floodFrame(n));
            await sleep(random.int(0, 30));
            if (way === 2) user.socket.end(frame(BYE));
            else if (way === 3) user.socket.end();
            else if (way === 4) user.socket.resetAndDestroy();
            else {
              user.send(frame(0x99)); // a bad frame: ERROR, then the server closes
              await user.waitForClose('a close after ERROR', 3_000).catch(() => undefined);
            }
            setTimeout(() => user.socket.destroy(), 500).unref();
          }
        };
        await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
        if (sessions < 100) {
          throw new CheckFailure(`only ${sessions} sessions in ${seconds} s`, { expected: 'the server serves hundreds of short sessions in a few seconds', actual: `${sessions}` });
        }
        // Every connection of the churn is gone: the server's open files come back to where they were.
        if (server !== undefined && fdsBefore !== undefined) {
          const settleBy = performance.now() + 8_000;
          let fds = server.openFds();
          while (fds > fdsBefore && performance.now() < settleBy) {
            await sleep(200);
            fds = server.openFds();
          }
          if (fds > fdsBefore) {
            throw new CheckFailure(`the server holds ${fds - fdsBefore} more open files after the churn`, {
              expected: `${fdsBefore} open file descriptors, as before ${sessions} sessions came and went`,
              actual: `${fds} 8 s after the last one left`,
              hint: 'destroy every socket on every way a connection ends, including errors and timeouts',
            });
          }
        }
        // Nobody of the churn is listed: only the pair and the newcomer.
        if (wire.mixes) await expectServerServes(context, wire, 'after-churn', room, pair.names, `${sessions} joins and leaves`);
      });
      if (!wire.mixes) await expectServerServes(context, wire, 'after-churn', room, [], 'the churn');
      if (server !== undefined) {
        // Left idle, the server's memory must not keep growing (no timers or buffers left behind).
        const idleStart = server.rss();
        await sleep(3_000);
        const growth = server.rss() - idleStart;
        if (growth > 16 * MB) {
          throw new CheckFailure(`an idle server's memory grew by ${Math.round(growth / MB)} MB after the churn`, {
            expected: 'stable memory when nobody is connected', actual: `${Math.round(growth / MB)} MB in 3 s`,
            hint: 'look for timers or per-connection state that outlive their connection',
          });
        }
      }
      unmeasured.settle();
    },
  };
}

/** Every hostile check but the slow consumer, which takes a minute (tests/hostile-slow-consumer.test.ts). */
export function hostileChecks(wire: StageWire): Check[] {
  return [
    fuzzSample(wire),
    violationsBeforeJoining(wire),
    violationsAfterJoining(wire),
    flood(wire),
    handshakeTimeouts(wire),
    closeAfterError(wire),
    connectionLimit(wire),
    ...(wire.maxUsers === undefined ? [] : [userLimit({ ...wire, maxUsers: wire.maxUsers })]),
    churn(wire),
    ...(wire.moves === undefined ? [] : [joinFlood(wire)]), // stages with rooms: a flood of moves
    ...(wire.moves === undefined ? [] : [sendLimit(wire)]), // stages with LIST_ROOMS: answers never read
    ...(wire.mixes && wire.moves === undefined ? [newsLimit(wire)] : []), // stage 03: news, its only control messages, never read
    ...(wire.datagrams ? datagramChecks(wire) : []), // stage 06 on: hostile datagrams
    ...(wire.calls ? callChecks(wire) : []), // stage 08 on: hostile callers
  ];
}
