// The files we receive: each OFFER the server sends us starts a part file in the downloads folder
// (downloads.ts: a safe name, O_EXCL, never the final name yet); each CHUNK is written in order
// and acknowledged once written (so a slow disk paces the transfer too); TRANSFER_END complete
// checks size and SHA-256 ourselves and only then gives the file its final name. Any other end,
// our own /cancel, a move to another room and leaving remove the part file.
import { printable } from '#shared/user-name.ts';
import { ackFrame, cancelFrame, parseChunk, parseServerOffer, type TransferEnd, type TransferOffer } from './chat-messages.ts';
import { PartFile, PartFileError } from './downloads.ts';
import { Progress } from './progress.ts';
import type { ClientDisplay } from './terminal-display.ts';

/** One transfer we receive: its part file (once created) and the writes queued on it, in order. */
interface Incoming {
  offer: TransferOffer;
  /** Every step (create, each write, keep or discard) runs after the one before. */
  work: Promise<PartFile | null>;
  /** Bytes received so far (CHUNKs accepted; written a moment later). */
  received: number;
  progress: Progress;
  /** Set when we leave the transfer (cancel, a failed write, leaving): chunks still queued are not written. */
  abandoned: boolean;
}

export class FileReceiver {
  private readonly incoming = new Map<number, Incoming>();
  /** Every removal and save still running: leaving waits for them. */
  private readonly settling = new Set<Promise<void>>();

  constructor(
    private readonly socket: { write(frame: Buffer): unknown },
    private readonly display: ClientDisplay,
    private readonly folder: string,
    /** --no-files: cancel every offer at once (we are still told what was offered). */
    private readonly refuseFiles: boolean,
    private readonly onStatusLine: boolean,
  ) {}

  /** OFFER: we are a receiver of this transfer; its CHUNKs follow. */
  onOffer(payload: Buffer): void {
    const offer = parseServerOffer(payload);
    const label = `"${offer.name}" (${offer.size} bytes, sha256 ${offer.sha256.slice(0, 8)}...)`;
    const to = offer.private ? ' to you' : '';
    if (this.refuseFiles) {
      this.socket.write(cancelFrame(offer.transfer));
      this.display.line(`${offer.from.name} offers${to} ${label}: transfer ${offer.transfer}, declined (--no-files)`);
      return;
    }
    this.display.line(`${offer.from.name} offers${to} ${label}: transfer ${offer.transfer}, saving to ${this.folder}`);
    const work = PartFile.create(this.folder, offer.transfer, offer.name, offer.size, offer.sha256).catch((error: Error) => {
      this.display.line(`transfer ${offer.transfer} "${offer.name}": cannot write to ${this.folder} (${error.message}): cancelled`);
      this.socket.write(cancelFrame(offer.transfer));
      this.incoming.delete(offer.transfer);
      return null;
    });
    this.incoming.set(offer.transfer, { offer, work, received: 0, progress: new Progress(`transfer ${offer.transfer} "${offer.name}"`, offer.size), abandoned: false });
  }

  /** CHUNK: written in order, then acknowledged. A chunk for a transfer we are not in is discarded. */
  onChunk(payload: Buffer): void {
    const { transfer, offset, data } = parseChunk(payload);
    const entry = this.incoming.get(transfer);
    if (!entry) return; // after our own CANCEL or a move: it was already on its way
    entry.received += data.length;
    entry.work = entry.work.then(async (part) => {
      if (!part || entry.abandoned) return part;
      try {
        await part.write(offset, data);
      } catch (error) {
        // Out of order or past the size: the file never grows from it; we leave the transfer.
        const why = error instanceof PartFileError ? error.message : (error as Error).message;
        this.abandon(transfer, entry, `failed: ${why}; partial file removed`);
        this.socket.write(cancelFrame(transfer));
        return null;
      }
      this.socket.write(ackFrame(transfer, part.written));
      if (!this.onStatusLine) {
        const line = entry.progress.milestone(part.written);
        if (line) this.display.line(line);
      }
      return part;
    });
  }

  /** TRANSFER_END for a transfer we receive; returns false when we are not receiving it. */
  onEnd(end: TransferEnd): boolean {
    const entry = this.incoming.get(end.transfer);
    if (!entry) return false;
    this.incoming.delete(end.transfer);
    const { offer } = entry;
    if (end.result !== 'complete') {
      entry.abandoned = true; // chunks still queued are not written: the part file goes
      const by = end.by ? ` by ${end.by.name}` : '';
      this.settle(entry, async (part) => {
        await part?.discard();
        this.display.line(`transfer ${end.transfer} "${offer.name}" failed: ${end.result}${by} (${end.message}): partial file removed`);
      });
      return true;
    }
    this.settle(entry, async (part) => {
      if (!part) return;
      try {
        const saved = await part.keep();
        this.display.line(`received "${offer.name}" from ${offer.from.name}: ${offer.size} bytes, SHA-256 verified, saved as ${saved}`);
      } catch (error) {
        const why = error instanceof PartFileError ? `${error.problem} (${error.message})` : (error as Error).message;
        this.display.line(`transfer ${end.transfer} "${offer.name}" failed: ${why}: not kept`);
      }
    });
    return true;
  }

  /** `/cancel ID` for a transfer we receive: CANCEL, and the part file goes at once. */
  cancel(id: number): boolean {
    const entry = this.incoming.get(id);
    if (!entry) return false;
    this.socket.write(cancelFrame(id));
    this.abandon(id, entry, 'cancelled: partial file removed');
    return true;
  }

  ids(): number[] {
    return [...this.incoming.keys()];
  }

  describe(): { id: number; name: string; line: string; field: string }[] {
    return [...this.incoming.values()].map(({ offer, received, progress }) => ({
      id: offer.transfer,
      name: offer.name,
      line: `↓ ${offer.transfer} "${offer.name}" from ${offer.from.name}: ${progress.summary(received)}`,
      field: `↓${offer.transfer} ${offer.name} ${progress.percent(received)}%`,
    }));
  }

  /** Leaving (or moving to another room): every transfer we receive stops and its part file is removed. */
  async stop(why: string): Promise<void> {
    for (const [id, entry] of [...this.incoming]) this.abandon(id, entry, `stopped (${why}): partial file removed`);
    await Promise.all([...this.settling]);
  }

  private abandon(id: number, entry: Incoming, what: string): void {
    entry.abandoned = true;
    if (this.incoming.get(id) === entry) this.incoming.delete(id);
    this.settle(entry, async (part) => {
      await part?.discard();
      this.display.line(`transfer ${id} "${printable(entry.offer.name)}" ${what}`);
    });
  }

  private settle(entry: Incoming, step: (part: PartFile | null) => Promise<void>): void {
    const done = entry.work.then(step).catch((error: Error) => this.display.line(`a received file could not be cleaned up: ${error.message}`));
    entry.work = done.then(() => null);
    this.settling.add(done);
    void done.finally(() => this.settling.delete(done));
  }
}
