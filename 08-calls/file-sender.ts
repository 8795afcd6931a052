// The files we send: `/send FILE` (or --send) hashes the file (a first pass, 16 KiB at a time,
// never whole in memory), sends OFFER with its name, size and SHA-256, learns the transfer id from
// OFFERED (answers come in the order of our offers), then sends CHUNKs in order, only within the
// server's CREDIT, and only when the socket holds nothing else (the scheduler's rule: a JOIN, a
// TEXT or a VOICE never waits behind more than one chunk), round-robin over our transfers.
import { createHash } from 'node:crypto';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Socket } from 'node:net';
import { FORBIDDEN_IN_NAMES } from '#shared/user-name.ts';
import { cancelFrame, chunkFrame, MAX_CHUNK_DATA_BYTES, offerFrame, parseCredit, parseOffered, type TransferEnd } from './chat-messages.ts';
import { Progress } from './progress.ts';
import type { ClientDisplay } from './terminal-display.ts';

const HASH_READ_BYTES = 64 * 1024;
/** How often to look again when the socket still holds voice or control bytes ahead of a chunk. */
const BUSY_RETRY_MS = 2;

/** One file we offered: first waiting for OFFERED, then sending within credit, then waiting for TRANSFER_END. */
interface Outgoing {
  path: string;
  name: string;
  size: number;
  sha256: string;
  handle: FileHandle;
  id?: number;
  sent: number;
  until: number;
  receivers: number;
  progress?: Progress;
}

/** The file's name on the wire: its base name made to pass the server's file name rule (forbidden characters → `_`). */
export function offeredName(path: string): string {
  let name = basename(path).replace(new RegExp(`${FORBIDDEN_IN_NAMES.source}|[\\\\]`, 'gu'), '_');
  if (name === '.' || name === '..' || name === '') name = 'file';
  while (Buffer.byteLength(name) > 255) name = name.slice(0, -1);
  return name;
}

/** Reads the whole file once, 64 KiB at a time: its size and SHA-256 (hex). */
export async function hashFile(path: string): Promise<{ size: number; sha256: string }> {
  const handle = await open(path, 'r');
  try {
    const hash = createHash('sha256');
    const buffer = Buffer.alloc(HASH_READ_BYTES);
    let size = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, size);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      size += bytesRead;
    }
    return { size, sha256: hash.digest('hex') };
  } finally {
    await handle.close();
  }
}

/** A readable regular file, or the reason it is not one (for --send, checked before connecting). */
export async function sendableProblem(path: string): Promise<string | null> {
  try {
    const info = await stat(path);
    if (!info.isFile()) return `${path} is not a file`;
    const handle = await open(path, 'r');
    await handle.close();
    return null;
  } catch (error) {
    return `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
  }
}

export class FileSender {
  /** OFFERs sent and not yet answered, oldest first (OFFERED and REFUSED answer them in order). */
  private readonly waiting: Outgoing[] = [];
  /** Transfers the server took, by id, in the order we round-robin over them. */
  private readonly active = new Map<number, Outgoing>();
  private writing = false;
  private retry: NodeJS.Timeout | null = null;
  private stopped = false;
  private nextTurn = 0;

  constructor(
    private readonly socket: Pick<Socket, 'write' | 'writableLength'>,
    private readonly display: ClientDisplay,
    /** True when progress goes to the status line (a terminal); false: plain lines at 25, 50, 75 %. */
    private readonly onStatusLine: boolean,
  ) {}

  /** `/send FILE`: hash it, then OFFER it (to one member with `to`). */
  async offer(path: string, to?: number): Promise<void> {
    const problem = await sendableProblem(path);
    if (problem) return this.display.line(`not sent: ${problem}`);
    const { size, sha256 } = await hashFile(path);
    if (this.stopped) return;
    const handle = await open(path, 'r');
    const name = offeredName(path);
    this.waiting.push({ path, name, size, sha256, handle, sent: 0, until: 0, receivers: 0 });
    this.socket.write(offerFrame({ name, size, sha256, ...(to === undefined ? {} : { to }) }));
  }

  /** OFFERED: our oldest offer was taken. */
  onOffered(payload: Buffer, roomName: string): void {
    const offered = parseOffered(payload);
    const outgoing = this.waiting.shift();
    if (!outgoing) return;
    outgoing.id = offered.transfer;
    outgoing.receivers = offered.receivers.length;
    outgoing.progress = new Progress(`transfer ${offered.transfer} "${outgoing.name}"`, outgoing.size);
    this.active.set(offered.transfer, outgoing);
    this.display.line(`offered "${outgoing.name}" to ${offered.receivers.length} in ${roomName}: transfer ${offered.transfer}`);
  }

  /** REFUSED of an offer: our oldest offer was not taken. */
  onRefused(code: string, message: string): void {
    const outgoing = this.waiting.shift();
    if (outgoing) void outgoing.handle.close();
    this.display.line(`not sent${outgoing ? ` "${outgoing.name}"` : ''}: ${code} (${message})`);
  }

  /** CREDIT: we may send the bytes before `until`. */
  onCredit(payload: Buffer): void {
    const { transfer, until } = parseCredit(payload);
    const outgoing = this.active.get(transfer);
    if (!outgoing || until <= outgoing.until) return;
    outgoing.until = until;
    this.pump();
  }

  /** TRANSFER_END for a transfer we send; returns false if it is not ours. */
  onEnd(end: TransferEnd): boolean {
    const outgoing = this.active.get(end.transfer);
    if (!outgoing) return false;
    this.active.delete(end.transfer);
    void outgoing.handle.close();
    if (end.result === 'complete') {
      const delivered = end.delivered ?? 0;
      const dropped = end.dropped ?? 0;
      this.display.line(`sent "${outgoing.name}": delivered to ${delivered} of ${outgoing.receivers}${dropped > 0 ? ` (${dropped} dropped)` : ''}`);
    } else {
      this.display.line(`transfer ${end.transfer} "${outgoing.name}" failed: ${end.result} (${end.message})`);
    }
    return true;
  }

  /** `/cancel ID` for one of ours: CANCEL (the server's TRANSFER_END cancelled confirms it). */
  cancel(id: number): boolean {
    if (!this.active.has(id)) return false;
    this.socket.write(cancelFrame(id));
    return true;
  }

  ids(): number[] {
    return [...this.active.keys()];
  }

  /** For /transfers and the status line. */
  describe(): { id: number; name: string; line: string; field: string }[] {
    return [...this.active.values()].map((outgoing) => ({
      id: outgoing.id!,
      name: outgoing.name,
      line: `↑ ${outgoing.id} "${outgoing.name}" to ${outgoing.receivers}: ${outgoing.progress!.summary(outgoing.sent)}`,
      field: `↑${outgoing.id} ${outgoing.name} ${outgoing.progress!.percent(outgoing.sent)}%`,
    }));
  }

  /** Leaving: nothing more is sent; files are closed. */
  stop(): void {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    for (const outgoing of [...this.waiting, ...this.active.values()]) void outgoing.handle.close().catch(() => undefined);
    this.waiting.length = 0;
    this.active.clear();
  }

  /** Sends the next chunk if one may go: nothing else in the socket, credit left, round-robin. */
  private pump(): void {
    if (this.writing || this.stopped || this.retry) return;
    const ready = [...this.active.values()].filter((outgoing) => outgoing.sent < outgoing.size && outgoing.sent < outgoing.until);
    if (ready.length === 0) return;
    if (this.socket.writableLength > 0) {
      // Voice or control bytes are still in Node's buffer: they go first.
      this.retry = setTimeout(() => {
        this.retry = null;
        this.pump();
      }, BUSY_RETRY_MS);
      return;
    }
    const outgoing = ready[this.nextTurn++ % ready.length]!;
    const offset = outgoing.sent;
    const length = Math.min(MAX_CHUNK_DATA_BYTES, outgoing.size - offset, outgoing.until - offset);
    this.writing = true;
    outgoing.sent += length; // reserved now: the read below is asynchronous
    void readExactly(outgoing.handle, offset, length).then(
      (data) => {
        if (this.stopped || !this.active.has(outgoing.id!)) {
          this.writing = false;
          return;
        }
        this.socket.write(chunkFrame(outgoing.id!, offset, data), () => {
          this.writing = false;
          this.report(outgoing);
          this.pump();
        });
      },
      (error: Error) => {
        this.writing = false;
        if (this.stopped || !this.active.has(outgoing.id!)) return; // it ended meanwhile and its file was closed
        this.display.line(`cannot read "${outgoing.name}" (${error.message}): cancelling transfer ${outgoing.id}`);
        this.cancel(outgoing.id!);
      },
    );
  }

  private report(outgoing: Outgoing): void {
    if (this.onStatusLine) return;
    const line = outgoing.progress!.milestone(outgoing.sent);
    if (line) this.display.line(line);
  }
}

/** `length` bytes of the file at `offset`; a file that shrank meanwhile is an error (the hash would not match). */
async function readExactly(handle: FileHandle, offset: number, length: number): Promise<Buffer> {
  const data = Buffer.alloc(length);
  let at = 0;
  while (at < length) {
    const { bytesRead } = await handle.read(data, at, length - at, offset + at);
    if (bytesRead === 0) throw new Error('the file is shorter than when it was offered');
    at += bytesRead;
  }
  return data;
}
