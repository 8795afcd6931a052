// One connection, many streams: how file chunks share a TCP connection with control messages and
// voice. Control and voice are written at once (server.ts); a CHUNK is written only when no other
// chunk waits in Node's queue for this socket (the previous one's write callback has fired: it
// went to the kernel). So a JOINED, a TEXT or a VOICE written at any moment waits behind at most
// ONE chunk (16 390 + 5 bytes) in Node's queue. The chunk comes from the next transfer in a ring
// that has one ready (round-robin), so a small file is not stuck behind a big one.

/** Where chunks come from: the relay's transfers, asked in turn. */
export interface ChunkSource {
  /** The next chunk for this connection, or null when none is ready (not arrived, or past the window). */
  nextChunk(): Buffer | null;
}

export class ChunkScheduler {
  private readonly sources: ChunkSource[] = [];
  private turn = 0;
  /** Bytes of the one chunk in Node's queue (0 when none): the voice rule does not count them. */
  queuedChunkBytes = 0;
  /** Control frames that must follow the chunk just written (TRANSFER_END complete after the last chunk). */
  private readonly afterChunk: Buffer[] = [];
  private closed = false;

  constructor(
    private readonly write: (frame: Buffer, flushed: () => void) => void,
    private readonly writeControl: (frame: Buffer) => void,
  ) {}

  add(source: ChunkSource): void {
    this.sources.push(source);
    this.pump();
  }

  remove(source: ChunkSource): void {
    const index = this.sources.indexOf(source);
    if (index >= 0) this.sources.splice(index, 1);
  }

  /** A control frame to send right after the chunk being taken now. */
  after(frame: Buffer): void {
    this.afterChunk.push(frame);
  }

  /** Forgets every source (the user left the room or the server). */
  clear(): void {
    this.sources.length = 0;
    this.afterChunk.length = 0;
  }

  close(): void {
    this.closed = true;
    this.clear();
  }

  /** Writes the next ready chunk if none waits in Node's queue; called when a chunk arrives, an ACK opens a window, or a write flushes. */
  pump(): void {
    if (this.closed || this.queuedChunkBytes > 0 || this.sources.length === 0) return;
    for (let tried = 0; tried < this.sources.length; tried++) {
      const index = (this.turn + tried) % this.sources.length;
      const frame = this.sources[index]!.nextChunk();
      if (frame === null) continue;
      this.turn = index + 1; // the next pump starts with the source after this one
      this.queuedChunkBytes = frame.length;
      this.write(frame, () => {
        this.queuedChunkBytes = 0;
        this.pump();
      });
      for (const control of this.afterChunk.splice(0)) this.writeControl(control);
      return;
    }
  }
}
