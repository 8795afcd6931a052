// Received files (07-chat-files/downloads.ts, README "Received files: where they land"): the safe
// name rule, part files that cannot follow a symlink, size and SHA-256 checked before the final
// name, never overwriting, and nothing left behind by a failed or cancelled transfer. Real files
// in a temporary folder.
import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import t, { type Test } from 'tap';
import { PartFile, PartFileError, prepareDownloadsFolder, safeFileName, SAFE_NAME_MAX_BYTES } from '../07-chat-files/downloads.ts';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** A fresh temporary folder holding a `downloads` folder; removed after the test. */
async function sandbox(t: Test): Promise<{ root: string; downloads: string }> {
  const root = await mkdtemp(join(tmpdir(), 'vc07-downloads-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const downloads = await prepareDownloadsFolder(join(root, 'downloads'));
  return { root, downloads };
}

/** Receives `data` in 16 KiB chunks as transfer `transfer` named `name`, announcing `announced` (default: the real size and hash). */
async function receive(folder: string, transfer: number, name: string, data: Buffer, announced: { size?: number; sha256?: string } = {}): Promise<PartFile> {
  const part = await PartFile.create(folder, transfer, name, announced.size ?? data.length, announced.sha256 ?? sha256(data));
  for (let offset = 0; offset < data.length; offset += 16_384) await part.write(offset, data.subarray(offset, offset + 16_384));
  return part;
}

t.test('the safe name rule, with the README examples', async (t) => {
  const cases: [string, string][] = [
    ['../../.bashrc', '_.._.bashrc'],
    ['/etc/passwd', '_etc_passwd'],
    ['C:\\Windows\\x.dll', 'C__Windows_x.dll'],
    ['report\u202Efdp.exe', 'report_fdp.exe'],
    ['NUL.txt', '_NUL.txt'],
    ['CON.txt', '_CON.txt'],
    ['con', '_con'],
    ['com1.tar.gz', '_com1.tar.gz'],
    ['LPT¹.txt', '_LPT¹.txt'],
    ['console.txt', 'console.txt'],
    ['...', 'file'],
    ['..', 'file'],
    ['.', 'file'],
    ['', 'file'],
    ['.bashrc', 'bashrc'],
    ['x.exe. ', 'x.exe'],
    ['a\x1b[2Jb.txt', 'a_[2Jb.txt'],
    ['a\u2066b\u2069.txt', 'a_b_.txt'],
    ['tab\there', 'tab_here'],
    ['what?<x>|"y":z*.txt', 'what__x___y__z_.txt'],
    ['report.pdf', 'report.pdf'],
    ['عربي.txt', 'عربي.txt'],
  ];
  for (const [offered, expected] of cases) t.equal(safeFileName(offered), expected, JSON.stringify(offered));
});

t.test('a long name is cut to 200 bytes on a character boundary, keeping the extension', async (t) => {
  const long = `${'é'.repeat(300)}.txt`;
  const safe = safeFileName(long);
  t.ok(Buffer.byteLength(safe) <= SAFE_NAME_MAX_BYTES, `${Buffer.byteLength(safe)} bytes`);
  t.ok(safe.endsWith('.txt'), 'the extension is kept');
  t.match(safe, /^é+\.txt$/u, 'no broken character');
  t.equal(Buffer.byteLength(safe), 196 + 4, '98 two-byte characters and ".txt": 200 bytes');
});

t.test('no safe name ever leaves the folder or hides', async (t) => {
  for (const offered of ['../../x', '/etc/x', '..\\..\\x', 'a/../../b', '\u0000/x', ' ../x ', '.', '..']) {
    const safe = safeFileName(offered);
    t.notMatch(safe, /[/\\]/u, `${JSON.stringify(offered)} → ${safe}: no separator`);
    t.notOk(safe.startsWith('.'), `${JSON.stringify(offered)} → ${safe}: not hidden`);
    t.equal(dirname(join('/downloads', safe)), '/downloads', `${JSON.stringify(offered)} stays in the folder`);
  }
});

t.test('a verified file lands under its safe name inside the folder, with the right bytes, and the part file is gone', async (t) => {
  const { root, downloads } = await sandbox(t);
  const data = Buffer.alloc(40_000, 7);
  const part = await receive(downloads, 7, '../../.bashrc', data);
  t.match(part.partPath, /\/\.voice-chat-7-[0-9a-f]{8}\.part$/u, 'a recognisable part name');
  t.same(await readdir(downloads), [part.partPath.split('/').pop()], 'before keep(): only the part file, no final name');
  const saved = await part.keep();
  t.equal(saved, join(downloads, '_.._.bashrc'));
  t.same(await readFile(saved), data, 'the bytes');
  t.same(await readdir(downloads), ['_.._.bashrc'], 'the part file is removed');
  t.same((await readdir(root)).sort(), ['downloads'], 'nothing outside the folder');
  t.equal((await lstat(saved)).mode & 0o777, 0o600, 'mode 0600, never executable');
});

t.test('never overwrites: an existing name gets "(2)", then "(3)"', async (t) => {
  const { downloads } = await sandbox(t);
  await writeFile(join(downloads, 'notes.txt'), 'mine');
  const first = await (await receive(downloads, 1, 'notes.txt', Buffer.from('theirs 1'))).keep();
  const second = await (await receive(downloads, 2, 'notes.txt', Buffer.from('theirs 2'))).keep();
  t.equal(first, join(downloads, 'notes (2).txt'));
  t.equal(second, join(downloads, 'notes (3).txt'));
  t.equal(await readFile(join(downloads, 'notes.txt'), 'utf8'), 'mine', 'the existing file is untouched');
  t.equal(await readFile(second, 'utf8'), 'theirs 2');
});

t.test('a symlink with the final name is not followed or replaced', async (t) => {
  const { root, downloads } = await sandbox(t);
  const target = join(root, 'target');
  await writeFile(target, 'precious');
  await symlink(target, join(downloads, 'x'));
  const saved = await (await receive(downloads, 3, 'x', Buffer.from('payload'))).keep();
  t.equal(saved, join(downloads, 'x (2)'));
  t.equal(await readFile(target, 'utf8'), 'precious', 'the symlink target is untouched');
  t.equal(await readlink(join(downloads, 'x')), target, 'the symlink is still there');
});

t.test('a symlink planted at the part name makes the transfer fail rather than write through it', async (t) => {
  const { root, downloads } = await sandbox(t);
  const target = join(root, 'target');
  await writeFile(target, 'precious');
  const partPath = join(downloads, '.voice-chat-9-deadbeef.part');
  await symlink(target, partPath);
  await t.rejects(PartFile.create(downloads, 9, 'a', 1, sha256(Buffer.from('a')), 'deadbeef'), { code: 'EEXIST' }, 'O_EXCL refuses the planted symlink');
  t.equal(await readlink(partPath), target, 'the planted link is left as it was');
  t.equal(await readFile(target, 'utf8'), 'precious', 'the target is untouched');
});

t.test('a wrong SHA-256: no file under the final name, and no part file', async (t) => {
  const { downloads } = await sandbox(t);
  const data = Buffer.from('hello world');
  const part = await receive(downloads, 4, 'hello.txt', data, { sha256: sha256(Buffer.from('something else')) });
  await t.rejects(part.keep(), { name: 'PartFileError', problem: 'hash_mismatch' });
  t.same(await readdir(downloads), [], 'nothing left');
});

t.test('fewer bytes than announced: not kept', async (t) => {
  const { downloads } = await sandbox(t);
  const data = Buffer.from('hello');
  const part = await receive(downloads, 5, 'hello.txt', data, { size: 10 });
  await t.rejects(part.keep(), { name: 'PartFileError', problem: 'short' });
  t.same(await readdir(downloads), []);
});

t.test('chunks out of order or past the size are refused and never grow the file', async (t) => {
  const { downloads } = await sandbox(t);
  const part = await PartFile.create(downloads, 6, 'x.bin', 10, sha256(Buffer.alloc(10)));
  await part.write(0, Buffer.alloc(4));
  await t.rejects(part.write(8, Buffer.alloc(2)), { name: 'PartFileError', problem: 'out_of_order' });
  await t.rejects(part.write(4, Buffer.alloc(7)), { name: 'PartFileError', problem: 'too_long' });
  t.equal(part.written, 4);
  t.equal((await lstat(part.partPath)).size, 4, 'the part file holds only the good chunk');
  await part.discard();
});

t.test('cancel (discard) removes the partial file; twice is harmless', async (t) => {
  const { downloads } = await sandbox(t);
  const part = await PartFile.create(downloads, 8, 'big.bin', 100_000, sha256(Buffer.alloc(100_000)));
  await part.write(0, Buffer.alloc(16_384));
  await part.discard();
  await part.discard();
  t.same(await readdir(downloads), []);
});

t.test('an empty file (size 0) is kept once verified', async (t) => {
  const { downloads } = await sandbox(t);
  const saved = await (await PartFile.create(downloads, 10, 'empty', 0, sha256(Buffer.alloc(0)))).keep();
  t.same(await readFile(saved), Buffer.alloc(0));
});

t.test('the downloads folder: created if missing; a file in its place is refused', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'vc07-folder-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const made = await prepareDownloadsFolder(join(root, 'a', 'b'));
  t.ok((await lstat(made)).isDirectory());
  await writeFile(join(root, 'file'), 'x');
  await t.rejects(prepareDownloadsFolder(join(root, 'file')), /exists and is not a folder/u);
});
