// Stage 06's "done when" (issue 15), with the reference programs through their command lines: a
// talker and a listener in one room, the listener's datagrams through a seeded lossy relay at 5 %
// each way, and then a conversation whose UDP is blocked (sent to a closed port). Measured by
// tools/udp-loss.ts, which also prints the README's loss table.
import t, { type Test } from 'tap';
import { runThroughLoss, type LossRun } from '../tools/udp-loss.ts';

t.setTimeout(120_000);

/** 6 s of talk is 300 frames; allow the first and last frames to be cut by the clients' start and end. */
const MIN_TALK_FRAMES = 270;
const LEVEL_TOLERANCE_DB = 3;

function expectWholeVoice(t: Test, run: LossRun, what: string): void {
  const context = { run: { ...run, listenerOutput: run.listenerOutput.slice(-2_000), talkerOutput: run.talkerOutput.slice(-2_000) } };
  t.ok(run.talkFrames >= MIN_TALK_FRAMES, `${what}: the listener heard the talker for ${run.talkFrames} frames of 20 ms (at least ${MIN_TALK_FRAMES})`, context);
  t.ok(run.longestGapFrames <= 1, `${what}: no gap longer than one frame (longest ${run.longestGapFrames}, ${run.silentFrames} silent frames in all)`, context);
  t.ok(Math.abs(run.levelDb - run.toneDb) <= LEVEL_TOLERANCE_DB, `${what}: the talker at full level (${run.levelDb.toFixed(1)} dB heard, ${run.toneDb.toFixed(1)} dB sent)`, context);
}

t.test('5 % random loss each way on the listener\'s UDP path (seed 6): no gap longer than one frame, full level, single losses rebuilt from FEC', async (t) => {
  const run = await runThroughLoss(5, { seed: 6 });
  t.ok(run.relayDropped > 0, `the relay did lose datagrams (${run.relayDropped} of ${run.relayReceived})`);
  expectWholeVoice(t, run, '5 % loss');
  t.ok(run.fecRebuilt > 0, `some lost frames were rebuilt from the FEC copy in the next packet (${run.fecRebuilt})`, { output: run.listenerOutput.slice(-2_000) });
});

t.test('UDP blocked for both clients (datagrams to a closed port): the same conversation works over TCP', async (t) => {
  const run = await runThroughLoss(0, { path: 'blocked' });
  expectWholeVoice(t, run, 'UDP blocked');
  t.match(run.talkerOutput, /tcp/i, 'the talker says its voice goes over TCP');
});
