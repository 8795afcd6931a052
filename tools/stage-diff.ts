// npm run diff -- 01 02: shows what one stage adds to another, as a unified diff of the two folders.
// Stage folders use the same file names, so the diff shows only the new idea.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

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

// git diff --no-index works on any two folders, colours a terminal and pages long output;
// plain `diff -ru` is the fallback where git is missing.
const colour = process.stdout.isTTY ? '--color=always' : '--color=never';
let result = spawnSync('git', ['--no-pager', 'diff', '--no-index', colour, '--stat', '--patch', fromFolder, toFolder], {
  cwd: root,
  stdio: 'inherit',
});
if (result.error) {
  result = spawnSync('diff', ['-ru', '-N', fromFolder, toFolder], { cwd: root, stdio: 'inherit' });
}
// Both tools exit 1 when the folders differ, which is the expected outcome here.
process.exit(result.status === 0 || result.status === 1 ? 0 : (result.status ?? 2));
