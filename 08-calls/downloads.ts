// Where received files land, and how: a name that came over the network is never a path.
// safeFileName() turns an offered name into one file name directly inside the downloads folder;
// PartFile receives a transfer's bytes into a temporary `.voice-chat-<transfer>-<hex>.part` file
// (opened so that it cannot follow a symlink or reuse a file), checks size and SHA-256 at the end,
// and only then gives the file its final name, never overwriting anything (`name (2).ext` ...).
// A transfer that does not end verified leaves nothing behind: discard() removes the part file.
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { access, copyFile, link, mkdir, open, stat, unlink, type FileHandle } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, extname, join, resolve } from 'node:path';
import { FORBIDDEN_IN_NAMES } from '#shared/user-name.ts';

/** The longest safe name, in bytes of UTF-8: room for " (99)" and the part file's suffix under 255. */
export const SAFE_NAME_MAX_BYTES = 200;
/** Highest number tried for "name (N).ext" before falling back to a random suffix. */
const MAX_NUMBERED = 99;

/** --downloads' default: ~/Downloads/voice-chat (not the working directory: under npm that is the project). */
export function defaultDownloadsFolder(): string {
  return join(homedir(), 'Downloads', 'voice-chat');
}

/** Forbidden in names (controls, separators, bidi), path separators, and what Windows forbids (`:` names NTFS streams). */
const UNSAFE_CHARACTER = new RegExp(`${FORBIDDEN_IN_NAMES.source}|[/\\\\:*?"<>|]`, 'gu');
/** Windows device names: on Windows `con.txt` opens the console, whatever the extension. */
const WINDOWS_DEVICE = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])$/iu;

/**
 * The offered name made safe, in the README's order: unsafe characters → `_`; dots and spaces
 * removed at both ends; `file` if nothing is left; a Windows device name prefixed with `_`; cut to
 * SAFE_NAME_MAX_BYTES keeping the extension. The result never contains a separator, is never
 * `.` or `..`, and never starts with a dot.
 * Examples: `../../.bashrc` → `_.._.bashrc`; `/etc/passwd` → `_etc_passwd`; `NUL.txt` → `_NUL.txt`.
 */
export function safeFileName(offered: string): string {
  let name = offered.replace(UNSAFE_CHARACTER, '_');
  name = name.replace(/^[. ]+/u, '').replace(/[. ]+$/u, '');
  if (name === '') return 'file';
  const stem = name.split('.')[0]!;
  if (WINDOWS_DEVICE.test(stem)) name = `_${name}`;
  return cutToBytes(name, SAFE_NAME_MAX_BYTES);
}

/** `name` cut to at most `maxBytes` of UTF-8 on a character boundary, its extension kept when it is short. */
function cutToBytes(name: string, maxBytes: number): string {
  if (Buffer.byteLength(name) <= maxBytes) return name;
  let extension = extname(name);
  if (Buffer.byteLength(extension) > maxBytes / 4) extension = ''; // a "extension" that long is just the name
  const stem = name.slice(0, name.length - extension.length);
  const room = maxBytes - Buffer.byteLength(extension);
  let kept = '';
  for (const char of stem) {
    if (Buffer.byteLength(kept + char) > room) break;
    kept += char;
  }
  return kept + extension;
}

/** `name (n).ext` for n = 2..99, as browsers number a second download of the same name. */
function numberedName(name: string, n: number): string {
  const extension = extname(name);
  return `${name.slice(0, name.length - extension.length)} (${n})${extension}`;
}

/**
 * Makes sure `folder` exists (created with mode 0700 if missing) and is a writable folder;
 * returns its absolute path or throws an Error with a one-line reason.
 */
export async function prepareDownloadsFolder(folder: string): Promise<string> {
  const absolute = resolve(folder);
  const info = await stat(absolute).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
    return null;
  });
  if (info === null) await mkdir(absolute, { recursive: true, mode: 0o700 });
  else if (!info.isDirectory()) throw new Error(`${absolute} exists and is not a folder`);
  await access(absolute, constants.W_OK).catch(() => {
    throw new Error(`${absolute} is not writable`);
  });
  return absolute;
}

export type PartFileProblem = 'out_of_order' | 'too_long' | 'short' | 'hash_mismatch';

/** Why a received file was not kept, with a readable reason. */
export class PartFileError extends Error {
  constructor(
    readonly problem: PartFileProblem,
    message: string,
  ) {
    super(message);
    this.name = 'PartFileError';
  }
}

/** One transfer being received: its part file, the bytes so far and their running SHA-256. */
export class PartFile {
  /** Bytes written so far (what the ACK reports). */
  written = 0;
  private readonly hash: Hash = createHash('sha256');
  private closed = false;
  /** Writes run one after another, in the order the chunks came. */
  private queue: Promise<void> = Promise.resolve();

  private constructor(
    private readonly handle: FileHandle,
    readonly partPath: string,
    readonly folder: string,
    readonly safeName: string,
    readonly size: number,
    readonly sha256: string,
  ) {}

  /**
   * Creates `.voice-chat-<transfer>-<suffix: 8 random hex>.part` in `folder` with O_CREAT|O_EXCL|O_NOFOLLOW and
   * mode 0600: it fails rather than follow a symlink planted at that name or reuse any file.
   */
  static async create(folder: string, transfer: number, offeredName: string, size: number, sha256: string, suffix = randomBytes(4).toString('hex')): Promise<PartFile> {
    const safeName = safeFileName(offeredName);
    const partPath = join(folder, `.voice-chat-${transfer}-${suffix}.part`);
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0);
    const handle = await open(partPath, flags, 0o600);
    return new PartFile(handle, partPath, folder, safeName, size, sha256.toLowerCase());
  }

  /**
   * Appends the chunk at `offset`, which must be the bytes written so far (chunks come in order);
   * a chunk past the announced size is refused too. Resolves once the bytes are written (ACK then).
   */
  write(offset: number, data: Buffer): Promise<void> {
    const expected = this.written + this.pending;
    if (offset !== expected) return Promise.reject(new PartFileError('out_of_order', `a chunk at offset ${offset}, expected ${expected}`));
    if (expected + data.length > this.size) {
      return Promise.reject(new PartFileError('too_long', `a chunk that ends at ${expected + data.length}, past the announced ${this.size} bytes`));
    }
    this.pending += data.length;
    this.hash.update(data);
    const done = this.queue.then(async () => {
      let at = 0;
      while (at < data.length) {
        const { bytesWritten } = await this.handle.write(data, at, data.length - at, offset + at);
        at += bytesWritten;
      }
      this.pending -= data.length;
      this.written += data.length;
    });
    this.queue = done.catch(() => undefined);
    return done;
  }

  private pending = 0;

  /**
   * Checks size and SHA-256, then links the part file to its final name in the folder (never over
   * an existing one) and removes the part name. Returns the final path; on a failed check the
   * part file is removed and a PartFileError thrown.
   */
  async keep(): Promise<string> {
    await this.queue;
    await this.close();
    if (this.written !== this.size) {
      await this.discard();
      throw new PartFileError('short', `${this.written} of the announced ${this.size} bytes arrived`);
    }
    const digest = this.hash.digest('hex');
    if (digest !== this.sha256) {
      await this.discard();
      throw new PartFileError('hash_mismatch', `SHA-256 ${digest.slice(0, 16)}... does not match the offered ${this.sha256.slice(0, 16)}...`);
    }
    try {
      return await this.linkToFinalName();
    } finally {
      await unlink(this.partPath).catch(() => undefined);
    }
  }

  /** Closes and removes the part file (cancelled, moved, left, failed); safe to call twice. */
  async discard(): Promise<void> {
    await this.queue;
    await this.close();
    await unlink(this.partPath).catch(() => undefined);
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }

  /** link() fails with EEXIST when anything has the name (a rename would replace it): try the next name. */
  private async linkToFinalName(): Promise<string> {
    const candidates = [this.safeName];
    for (let n = 2; n <= MAX_NUMBERED; n++) candidates.push(numberedName(this.safeName, n));
    const extension = extname(this.safeName);
    candidates.push(`${this.safeName.slice(0, this.safeName.length - extension.length)}-${randomBytes(4).toString('hex')}${extension}`);
    const folder = resolve(this.folder);
    for (const candidate of candidates) {
      const final = resolve(folder, candidate);
      // Belt and braces: the safe name has no separator, so this holds; refuse if it ever does not.
      if (dirname(final) !== folder) throw new Error(`refusing to save outside ${folder}: ${candidate}`);
      try {
        await link(this.partPath, final);
        return final;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') continue;
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV') throw error;
        // No hard links here (FAT, some network drives): copy, failing rather than replace.
        try {
          await copyFile(this.partPath, final, constants.COPYFILE_EXCL);
          return final;
        } catch (copyError) {
          if ((copyError as NodeJS.ErrnoException).code === 'EEXIST') continue;
          throw copyError;
        }
      }
    }
    throw new Error(`no free name for ${this.safeName} in ${folder}`);
  }
}
