// `npm run stage:07` with no sub-command (07-chat-files/main.ts runDemo): a server, two robots and
// the user's client on this machine. It must work without a sound card, end by itself, show the
// robots' chat lines, receive robot-low's file verified, and remove its temporary folder.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import t from 'tap';
import { repoRoot } from '../conformance/harness/checks.ts';

const DEMO_LIMIT_MS = 40_000;

function runDemo(): Promise<{ exitCode: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, '07-chat-files', 'main.ts')], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
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

t.test('the stage 07 demo ends by itself with the chat lines shown and the file received, verified, and its folder removed', async (t) => {
  const { exitCode, stdout, stderr } = await runDemo();
  t.equal(exitCode, 0, `exit code 0 (stderr: ${stderr.slice(-300)})`);
  t.match(stdout, /^robot-low: hello from robot-low/mu, "robot-low's chat line, with its name");
  t.match(stdout, /^robot-high: robot-high here/mu, "robot-high's chat line");
  t.match(stdout, /^received "notes from robot-low\.txt" from robot-low: \d+ bytes, SHA-256 verified, saved as .*notes from robot-low\.txt$/mu, 'the file, verified');
  t.match(stdout, /"notes from robot-low\.txt": "Stage 07: this file came in 16 KiB chunks/u, 'its content, read back from the downloads folder');
  const downloads = /^downloads: (\S+) /mu.exec(stdout)?.[1];
  t.ok(downloads, 'the demo names its downloads folder');
  if (downloads) t.notOk(existsSync(dirname(downloads)), `its temporary folder ${dirname(downloads)} is removed`);
});
