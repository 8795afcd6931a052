// npm run diff -- A B (tools/stage-diff.ts): after the folder diff come the shared modules the
// newer stage uses and the older does not, in full, as added files. Run as a program with its
// output piped (not a terminal), so it prints plain text and starts no pager.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot } from '../conformance/harness/checks.ts';
import { runCommand } from '../conformance/harness/run-command.ts';

const stageDiff = `"${process.execPath}" --import tsx tools/stage-diff.ts`;

async function diffOf(from: string, to: string): Promise<string> {
  const result = await runCommand(stageDiff, [from, to], { cwd: repoRoot, timeoutMs: 30_000 });
  if (result.exitCode !== 0) throw new Error(`npm run diff -- ${from} ${to} exited ${result.exitCode}: ${result.stderr}`);
  return result.stdout;
}

/** The module as an added file: its header, then every line of it prefixed with "+". */
function showsAdded(output: string, module: string): boolean {
  const added = readFileSync(join(repoRoot, module), 'utf8').trimEnd().split('\n').map((line) => `+${line}`).join('\n');
  const start = output.indexOf(`--- /dev/null\n+++ b/${module}\n`);
  return start >= 0 && output.indexOf(added, start) > start;
}

t.test('01 to 02: the frame parser is shown as an added file, after the folder diff', async (t) => {
  const output = await diffOf('01', '02');
  t.match(output, /\+\+\+ b\/02-echo\/server\.ts/, 'the folder diff');
  t.ok(showsAdded(output, 'shared/framing/frame-parser.ts'), 'shared/framing/frame-parser.ts in full');
  t.ok(output.indexOf('+++ b/02-echo/') < output.indexOf('+++ b/shared/'), 'the folder diff comes first');
  t.notMatch(output, /\u001b\[/, 'no colour codes when not on a terminal');
});

t.test('02 to 03: the mixer and the voice gate are added; a changed use is named', async (t) => {
  const output = await diffOf('02', '03');
  t.ok(showsAdded(output, 'shared/mixer.ts'), 'shared/mixer.ts in full');
  t.ok(showsAdded(output, 'shared/voice-gate.ts'), 'shared/voice-gate.ts in full');
  t.match(output, /^  use changed  shared\/\S+\.ts: now also imports \w/m, 'a shared module used for more is named');
  t.notOk(showsAdded(output, 'shared/framing/frame-parser.ts'), 'the frame parser, already used by 02, is not shown again');
});

t.test('an unknown stage is a usage error', async (t) => {
  const result = await runCommand(stageDiff, ['01', '99'], { cwd: repoRoot, timeoutMs: 30_000 });
  t.equal(result.exitCode, 2);
  t.match(result.stderr, /no stage 99/);
});
