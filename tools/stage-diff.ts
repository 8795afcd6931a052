// npm run diff -- 01 02: what one stage adds to another. First the unified diff of the two folders
// (they use the same file names, so it shows only the new idea), then the shared/ modules the
// newer stage uses that the older one does not, as added files (a stage's main idea often lives
// there: the frame parser in 02, the mixer and voice gate in 03), then the shared modules both use
// whose imported names changed. On a terminal the output is coloured and goes through a pager
// ($PAGER, else `less -R`); otherwise (a pipe, a file, a test) it is printed plain.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { sharedChanges, sharedUse } from './shared-imports.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The stage folders, found by their number prefix: "01-hello-world", "02-echo", ... */
function stageFolders(): string[] {
  return readdirSync(root, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && /^\d\d-/.test(entry.name))
    .map((entry) => entry.name)
    .sort();
}

function findStage(number: string, folders: string[]): string {
  const wanted = number.padStart(2, '0');
  const folder = folders.find((name) => name.startsWith(`${wanted}-`));
  if (!folder) {
    console.error(`error: no stage ${wanted}; the stages are: ${folders.map((f) => f.slice(0, 2)).join(', ')}`);
    process.exit(2);
  }
  return folder;
}

const [from, to, ...rest] = process.argv.slice(2);
const folders = stageFolders();
if (!from || !to || rest.length > 0) {
  console.error('usage: npm run diff -- FROM TO   (for example: npm run diff -- 01 02)');
  console.error(`stages: ${folders.join(', ')}`);
  process.exit(2);
}
const fromFolder = findStage(from, folders);
const toFolder = findStage(to, folders);
const terminal = process.stdout.isTTY === true;

/**
 * A unified diff of two paths (a folder pair, or /dev/null and a file for an added file) as text:
 * git diff --no-index works outside a repository and colours; plain `diff -ruN` where git is missing.
 */
function diff(older: string, newer: string, gitOptions: string[] = []): string {
  const options = { cwd: root, encoding: 'utf8' as const, maxBuffer: 64 * 1024 * 1024 };
  const git = spawnSync('git', ['--no-pager', 'diff', '--no-index', terminal ? '--color=always' : '--color=never', ...gitOptions, '--', older, newer], options);
  // Both tools exit 1 when the inputs differ, which is the expected outcome here.
  if (!git.error && (git.status === 0 || git.status === 1)) return git.stdout;
  const plain = spawnSync('diff', ['-ruN', older, newer], options);
  if (plain.error || (plain.status !== 0 && plain.status !== 1)) throw new Error(`cannot diff ${older} and ${newer}: ${git.stderr || plain.stderr || plain.error?.message}`);
  return plain.stdout;
}

const bold = (text: string) => (terminal ? `\u001b[1m${text}\u001b[0m` : text);

function report(): string {
  const parts = [diff(fromFolder, toFolder, ['--stat', '--patch'])];
  const changes = sharedChanges(sharedUse(root, fromFolder), sharedUse(root, toFolder));
  const summary: string[] = ['', bold(`Shared modules (shared/): what ${toFolder} uses that ${fromFolder} does not`)];
  if (changes.added.length === 0) summary.push('  no new shared module');
  for (const { module, firstDirectUse } of changes.added) {
    summary.push(`  added  ${module}${firstDirectUse ? `  (${fromFolder} used it only through other shared modules)` : ''}`);
  }
  for (const { module, gained, lost } of changes.changed) {
    const uses = [gained.length > 0 ? `now also imports ${gained.join(', ')}` : '', lost.length > 0 ? `no longer imports ${lost.join(', ')}` : ''];
    summary.push(`  use changed  ${module}: ${uses.filter(Boolean).join('; ')}`);
  }
  for (const module of changes.dropped) summary.push(`  no longer used  ${module}`);
  if (changes.added.length > 0) summary.push('', `The added modules in full (a new file each):`);
  parts.push(summary.join('\n') + '\n');
  for (const { module } of changes.added) parts.push(diff('/dev/null', module));
  return parts.join('\n');
}

const text = report();
if (terminal) {
  // As git does: $PAGER, else less; LESS=FRX (unless set) quits when it fits one screen, keeps colour.
  const pager = spawnSync(process.env.PAGER || 'less -R', { shell: true, input: text, stdio: ['pipe', 'inherit', 'inherit'], env: { LESS: 'FRX', ...process.env } });
  if (pager.error || pager.status === 127) process.stdout.write(text); // no pager on this machine
} else {
  process.stdout.write(text);
}
