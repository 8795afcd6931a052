// `npm run stage:08` with no sub-command (08-calls/main.ts runDemo): a server, the user's client
// calling a robot in another room, and a third user who finds the robot busy, all on this machine.
// It must work without a sound card, end by itself, show the call ringing, going direct (both
// sides) and ending, the third user's "busy", each side's recording at the tone's level, and
// remove its temporary folder.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import t from 'tap';
import { repoRoot } from '../conformance/harness/checks.ts';

const DEMO_LIMIT_MS = 40_000;
/** The tone generator's level (amplitude 0.25 of full scale: RMS 20 log10(0.25 / sqrt 2)). */
const TONE_DBFS = 20 * Math.log10(0.25 / Math.SQRT2);
/** Opus at 24 kb/s keeps a steady tone within a dB or so; 3 dB is half the power. */
const LEVEL_TOLERANCE_DB = 3;

function runDemo(): Promise<{ exitCode: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // No sound card for the demo, whatever this machine has: an empty ALSA configuration lists no device.
    const env = { ...process.env, ALSA_CONFIG_PATH: '/dev/null' };
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, '08-calls', 'main.ts')], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), DEMO_LIMIT_MS);
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      resolve({ exitCode, stdout, stderr });
    });
  });
}

t.test('the stage 08 demo calls the robot, goes direct, finds it busy for a third user, hangs up, and both recordings hold the tones', async (t) => {
  const { exitCode, stdout, stderr } = await runDemo();
  t.equal(exitCode, 0, `exit code 0 (stderr: ${stderr.slice(-300)})`);
  t.match(stdout, /^calling robot \(call (\d+)\): ringing$/mu, 'the call rings');
  t.match(stdout, /^call \d+ with robot: direct to 127\.0\.0\.1:\d+$/mu, 'your side goes direct');
  t.match(stdout, /^ {2}\[robot\] call \d+ with \S+: direct to 127\.0\.0\.1:\d+$/mu, "the robot's side goes direct");
  t.notMatch(stdout, /relayed/u, 'never relayed on this machine');
  t.match(stdout, /^ {2}\[robot-cat\] not called: robot is busy$/mu, 'the third user is told the robot is busy');
  t.match(stdout, /^call \d+ with robot ended: hung up by \S+ \(00:0\d, direct, sent \d+ voice packets, heard \d+, \d+ concealed\)$/mu, 'the call ends with its numbers');
  for (const [who, pattern] of [
    ['the robot', /^robot recorded your voice: ([\d.]+) s at (-?[\d.]+) dBFS/mu],
    ['you', /^you recorded robot's voice: ([\d.]+) s at (-?[\d.]+) dBFS/mu],
  ] as const) {
    const match = pattern.exec(stdout);
    t.ok(match, `${who}: a measured recording`);
    if (!match) continue;
    t.ok(Number(match[1]) >= 3, `${who}: at least 3 s of voice (got ${match[1]} s)`);
    t.ok(Math.abs(Number(match[2]) - TONE_DBFS) <= LEVEL_TOLERANCE_DB, `${who}: at the tone's level, ${TONE_DBFS.toFixed(1)} dBFS ± ${LEVEL_TOLERANCE_DB} (got ${match[2]})`);
  }
  const recording = /what you hear is written to (\S+)/u.exec(stdout)?.[1];
  t.ok(recording, 'the demo names its recording');
  if (recording) t.notOk(existsSync(dirname(recording)), `its temporary folder ${dirname(recording)} is removed`);
});
