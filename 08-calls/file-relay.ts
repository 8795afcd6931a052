// The server's side of file transfers: a file offered to a room is relayed chunk by chunk to the
// members who were in the room at the time of the offer, with memory bounded by construction:
//
//   - credit:  the sender may send only up to the SLOWEST receiver's ACK + 256 KiB (CREDIT), so
//              the server never holds more than 256 KiB (and one chunk) of a transfer;
//   - window:  a receiver is sent only up to its own ACK + 64 KiB, so what waits in the kernel and
//              the network ahead of a control message is bounded whatever its socket buffers;
//   - too_slow: a receiver that holds everyone back (the sender has no credit left) and
//              acknowledged under 256 KiB over 10 s of that is dropped from the transfer, so one
//              never-reader cannot stop the room's file for ever;
//   - hash:    the bytes are hashed as they pass and the last chunk is held back until the hash
//              matches the offer, so no receiver ever has every byte of a lying sender's file.
//
// Chunks leave through each receiver's ChunkScheduler (write-scheduler.ts): at most one chunk in
// Node's queue, so a control message or a TCP VOICE never waits behind more than one chunk.
import { createHash, type Hash } from 'node:crypto';
import { ProtocolError } from '#shared/protocol-error.ts';
import {
  type Chunk,
  CHUNK_BOOKKEEPING_BYTES,
  creditFrame,
  fileNameProblem,
  MAX_HELD_CHUNK_COST,
  MAX_FILE_BYTES,
  MAX_OFFERS_REFUSED,
  MAX_TRANSFERS_PER_SENDER,
  MAX_TRANSFERS_PER_SERVER,
  OFFER_BURST,
  OFFER_REFILL_MS,
  parseClientOffer,
  refusedFrame,
  MAX_TRANSFER_ID,
  MIN_TRANSFER_ID,
  type OfferRequest,
  offeredFrame,
  RECEIVE_WINDOW_BYTES,
  RECENTLY_ENDED_TRANSFERS,
  relayedChunkFrame,
  SENDER_STALL_MS,
  serverOfferFrame,
  TOO_SLOW_MIN_BYTES,
  TOO_SLOW_MS,
  TRANSFER_BUFFER_BYTES,
  type TransferEnd,
  transferEndFrame,
  TransferResult,
} from './chat-messages.ts';
import { ErrorCode, type UserRef } from './protocol.ts';
import { RequestLimit } from './request-limit.ts';
import { type ChunkScheduler, type ChunkSource } from './write-scheduler.ts';

/** What the relay needs of a connected user (the server's User has it all). */
export interface TransferPeer extends UserRef {
  room: string;
  /** Sends a control message at once (never behind more than one chunk). */
  sendControl(frame: Buffer): void;
  /** This user's outgoing chunks: one in Node's queue at most, round-robin over its transfers. */
  chunks: ChunkScheduler;
  /** Transfers this user sends now, by id, and the ids of its last few ended ones (late CHUNKs are discarded). */
  sending: Map<number, Transfer>;
  recentlyEnded: number[];
  /** Transfers this user receives now, by id. */
  receiving: Map<number, Transfer>;
}

/** One receiver's progress in one transfer. */
interface ReceiverState {
  peer: TransferPeer;
  /** Bytes of the file written to its socket so far. */
  sent: number;
  /** Its latest ACK. */
  acked: number;
  /** Whether it has been sent TRANSFER_END complete (it may still ACK the last bytes). */
  toldComplete: boolean;
  /** Time (ms) it has held the transfer back since its last 256 KiB of progress, and its ACK then. */
  heldMs: number;
  ackedAtProgress: number;
  /** What its ChunkScheduler asks for this transfer's next chunk. */
  source: ChunkSource;
}

/** Transfer ids: u16 1-65535, increasing, skipping ids in use, wrapping (the session id rule). */
class TransferIds {
  private next = MIN_TRANSFER_ID;

  take(inUse: ReadonlyMap<number, unknown>): number {
    while (inUse.has(this.next)) this.advance();
    const id = this.next;
    this.advance();
    return id;
  }

  private advance(): void {
    this.next = this.next === MAX_TRANSFER_ID ? MIN_TRANSFER_ID : this.next + 1;
  }
}

export class Transfer {
  readonly receivers = new Map<TransferPeer, ReceiverState>();
  /** Chunks the server holds: relayed frames by file offset, from the slowest ACK to what the sender sent. */
  private readonly chunks = new Map<number, Buffer>();
  private heldBytes = 0;
  private readonly hash: Hash = createHash('sha256');
  /** Bytes received from the sender. */
  received = 0;
  /** The latest CREDIT "until" sent to the sender. */
  creditUntil = 0;
  /** Whether every byte arrived and the hash matched. */
  verified = false;
  lastChunkAt = performance.now();
  private readonly offered: number;

  constructor(
    readonly id: number,
    readonly sender: TransferPeer,
    readonly offer: OfferRequest,
    receivers: TransferPeer[],
    private readonly relay: FileRelay,
  ) {
    for (const peer of receivers) {
      const source = { nextChunk: () => this.nextChunkFor(peer) };
      this.receivers.set(peer, { peer, sent: 0, acked: 0, toldComplete: false, heldMs: 0, ackedAtProgress: 0, source });
    }
    this.offered = receivers.length;
  }

  /** Bytes the server holds for this transfer now (bounded by TRANSFER_BUFFER_BYTES + one chunk). */
  get bufferedBytes(): number {
    return this.heldBytes;
  }

  /** The lowest ACK among the receivers still in (the sender's credit and the buffer start there). */
  private slowestAck(): number {
    let lowest = Infinity;
    for (const receiver of this.receivers.values()) lowest = Math.min(lowest, receiver.acked);
    return lowest === Infinity ? this.received : lowest;
  }

  /** Held back: the sender cannot send (no credit left, or all sent) and waits for receivers only. */
  get heldBack(): boolean {
    return this.received >= Math.min(this.creditUntil, this.offer.size) && this.receivers.size > 0;
  }

  /** A CHUNK from the sender: in order, within size and credit, else ERROR bad_chunk. */
  takeChunk(chunk: Chunk, payload: Buffer): void {
    const end = chunk.offset + chunk.data.length;
    if (chunk.offset !== this.received) {
      throw new ProtocolError(ErrorCode.badChunk, `CHUNK of transfer ${this.id} at offset ${chunk.offset}; the next byte expected is ${this.received} (chunks go in order)`);
    }
    if (end > this.offer.size) {
      throw new ProtocolError(ErrorCode.badChunk, `CHUNK of transfer ${this.id} ends at ${end}, past the offered size ${this.offer.size}`);
    }
    if (end > this.creditUntil) {
      throw new ProtocolError(ErrorCode.badChunk, `CHUNK of transfer ${this.id} ends at ${end}, past your credit (until ${this.creditUntil}); wait for CREDIT`);
    }
    if (this.heldBytes + (this.chunks.size + 1) * CHUNK_BOOKKEEPING_BYTES + payload.length > MAX_HELD_CHUNK_COST) {
      throw new ProtocolError(ErrorCode.badChunk, `transfer ${this.id}: ${this.chunks.size + 1} chunks held at once; send chunks of 16 384 bytes (tiny chunks cost the server more than their bytes)`);
    }
    this.hash.update(chunk.data);
    this.received = end;
    this.lastChunkAt = performance.now();
    if (end === this.offer.size) {
      const digest = this.hash.digest('hex');
      if (digest !== this.offer.sha256) {
        // The last chunk is withheld: no receiver ever has all the bytes of a file that lies.
        this.relay.end(this, { result: TransferResult.hashMismatch, message: `the bytes sent have SHA-256 ${digest}, not the offered ${this.offer.sha256}` }, 'all');
        return;
      }
      this.verified = true;
    }
    const frame = relayedChunkFrame(payload); // one copy, the same bytes for every receiver
    this.chunks.set(chunk.offset, frame);
    this.heldBytes += frame.length;
    for (const receiver of this.receivers.values()) receiver.peer.chunks.pump();
    this.afterProgress();
  }

  /** The next chunk this receiver may be sent (in order, within its window), or null. Called by its scheduler. */
  nextChunkFor(peer: TransferPeer): Buffer | null {
    const receiver = this.receivers.get(peer);
    if (receiver === undefined) return null;
    const frame = this.chunks.get(receiver.sent);
    if (frame === undefined) return null;
    const dataBytes = frame.length - 5 - 6;
    if (receiver.sent + dataBytes > receiver.acked + RECEIVE_WINDOW_BYTES) return null;
    receiver.sent += dataBytes;
    if (receiver.sent === this.offer.size && this.verified) this.tellComplete(receiver);
    return frame;
  }

  /** An ACK from a receiver: never decreasing, never past what it was sent (else ERROR bad_ack). */
  takeAck(peer: TransferPeer, received: number): void {
    const receiver = this.receivers.get(peer);
    if (receiver === undefined) return; // a race with TRANSFER_END: ignored
    if (received < receiver.acked || received > receiver.sent) {
      throw new ProtocolError(ErrorCode.badAck, `ACK of transfer ${this.id} says ${received} bytes; it must be between your last ACK (${receiver.acked}) and the bytes sent to you (${receiver.sent})`);
    }
    receiver.acked = received;
    if (receiver.acked - receiver.ackedAtProgress >= TOO_SLOW_MIN_BYTES) {
      receiver.ackedAtProgress = receiver.acked;
      receiver.heldMs = 0;
    }
    peer.chunks.pump();
    this.afterProgress();
  }

  /** Removes a receiver (moved, left, cancelled, too slow); the transfer goes on for the others. */
  dropReceiver(peer: TransferPeer, end: Omit<TransferEnd, 'transfer'> | null): void {
    const receiver = this.receivers.get(peer);
    if (receiver === undefined) return;
    this.receivers.delete(peer);
    peer.receiving.delete(this.id);
    peer.chunks.remove(receiver.source);
    if (end !== null && !receiver.toldComplete) peer.sendControl(transferEndFrame({ transfer: this.id, ...end }));
    if (this.receivers.size === 0) {
      this.relay.end(this, { result: TransferResult.noReceivers, message: 'every receiver left, moved, cancelled or was dropped' }, 'sender');
      return;
    }
    this.afterProgress();
  }

  /** The 1-second rule check: too_slow receivers and a stalled sender. `elapsedMs` since the last check. */
  tick(now: number, elapsedMs: number): void {
    if (this.received < Math.min(this.creditUntil, this.offer.size) && now - this.lastChunkAt > SENDER_STALL_MS) {
      this.relay.end(this, { result: TransferResult.senderStalled, message: `the sender had credit and sent nothing for ${SENDER_STALL_MS / 1000} s` }, 'all');
      return;
    }
    if (!this.heldBack) return;
    const slowest = this.slowestAck();
    for (const receiver of [...this.receivers.values()]) {
      if (receiver.acked !== slowest) continue;
      receiver.heldMs += elapsedMs;
      if (receiver.heldMs >= TOO_SLOW_MS && receiver.acked - receiver.ackedAtProgress < TOO_SLOW_MIN_BYTES) {
        this.dropReceiver(receiver.peer, {
          result: TransferResult.tooSlow,
          message: `you held the transfer back for ${TOO_SLOW_MS / 1000} s and acknowledged under ${TOO_SLOW_MIN_BYTES / 1024} KiB in that time`,
        });
        if (this.relay.isOver(this)) return;
      }
    }
  }

  /** After an ACK, a chunk or a dropped receiver: free what everyone acknowledged, grant credit, maybe finish. */
  private afterProgress(): void {
    if (this.relay.isOver(this)) return;
    const slowest = this.slowestAck();
    for (const [offset, frame] of this.chunks) {
      if (offset + frame.length - 11 > slowest) break;
      this.chunks.delete(offset);
      this.heldBytes -= frame.length;
    }
    const until = slowest + TRANSFER_BUFFER_BYTES;
    // A CREDIT whenever it grows by a chunk or more (or reaches the end): not one per ACK.
    if (this.creditUntil < this.offer.size && (until - this.creditUntil >= 16 * 1024 || until >= this.offer.size)) {
      this.creditUntil = until;
      this.sender.sendControl(creditFrame(this.id, until));
    }
    if (this.allDelivered()) {
      const delivered = this.receivers.size;
      this.relay.end(this, { result: TransferResult.complete, message: `delivered to ${delivered} of ${this.offered}`, delivered, dropped: this.offered - delivered }, 'sender');
    }
  }

  private allDelivered(): boolean {
    if (!this.verified || this.receivers.size === 0) return false;
    for (const receiver of this.receivers.values()) if (receiver.acked < this.offer.size) return false;
    return true;
  }

  private tellComplete(receiver: ReceiverState): void {
    receiver.toldComplete = true;
    // Written after the last chunk is queued (the scheduler writes the chunk right after this returns,
    // so the TRANSFER_END must not overtake it): deferred to the chunk's own write turn.
    const frame = transferEndFrame({ transfer: this.id, result: TransferResult.complete, message: `all ${this.offer.size} bytes sent; the server's SHA-256 matched the offer (check it yourself)` });
    receiver.peer.chunks.after(frame);
  }

  /** Called once by the relay as the transfer ends: frees the buffer. */
  release(): void {
    this.chunks.clear();
    this.heldBytes = 0;
  }

  /** Sent after OFFERED and every OFFER: the first credit, or at once complete for an empty file. */
  start(): void {
    if (this.offer.size === 0) {
      this.verified = true;
      for (const receiver of this.receivers.values()) {
        receiver.toldComplete = true;
        receiver.peer.sendControl(transferEndFrame({ transfer: this.id, result: TransferResult.complete, message: 'an empty file: nothing to send' }));
      }
      this.afterProgress();
      return;
    }
    this.creditUntil = TRANSFER_BUFFER_BYTES;
    this.sender.sendControl(creditFrame(this.id, this.creditUntil));
  }
}

/** Every transfer on the server, and the 1-second clock of their time rules (runs only while there are any). */
export class FileRelay {
  readonly transfers = new Map<number, Transfer>();
  private readonly ids = new TransferIds();
  private timer: NodeJS.Timeout | null = null;
  private lastTick = 0;

  get count(): number {
    return this.transfers.size;
  }

  /** Bytes held for all transfers (what the memory bound is about). */
  get bufferedBytes(): number {
    let total = 0;
    for (const transfer of this.transfers.values()) total += transfer.bufferedBytes;
    return total;
  }

  /** Starts a transfer the caller has checked: OFFERED to the sender, OFFER to each receiver, then CREDIT. */
  open(sender: TransferPeer, offer: OfferRequest, receivers: TransferPeer[]): Transfer {
    const id = this.ids.take(this.transfers);
    const transfer = new Transfer(id, sender, offer, receivers, this);
    this.transfers.set(id, transfer);
    sender.sending.set(id, transfer);
    sender.sendControl(offeredFrame({ transfer: id, name: offer.name, size: offer.size, sha256: offer.sha256, receivers: receivers.map(userRef) }));
    const offerToReceivers = serverOfferFrame({ transfer: id, from: userRef(sender), name: offer.name, size: offer.size, sha256: offer.sha256, private: offer.to !== undefined });
    for (const receiver of receivers) {
      receiver.receiving.set(id, transfer);
      receiver.sendControl(offerToReceivers);
    }
    transfer.start(); // an empty file ends here, complete
    if (!this.isOver(transfer)) for (const receiver of transfer.receivers.values()) receiver.peer.chunks.add(receiver.source);
    if (this.timer === null && this.transfers.size > 0) {
      this.lastTick = performance.now();
      this.timer = setInterval(() => this.tick(), 250);
      this.timer.unref();
    }
    return transfer;
  }

  isOver(transfer: Transfer): boolean {
    return this.transfers.get(transfer.id) !== transfer;
  }

  /** Ends a transfer: TRANSFER_END to the sender, its receivers, or all; frees its buffer. */
  end(transfer: Transfer, end: Omit<TransferEnd, 'transfer'>, tell: 'all' | 'sender' | 'receivers' | 'nobody'): void {
    if (this.isOver(transfer)) return;
    this.transfers.delete(transfer.id);
    transfer.release();
    const frame = transferEndFrame({ transfer: transfer.id, ...end });
    const sender = transfer.sender;
    sender.sending.delete(transfer.id);
    sender.recentlyEnded.push(transfer.id);
    if (sender.recentlyEnded.length > RECENTLY_ENDED_TRANSFERS) sender.recentlyEnded.shift();
    if (tell === 'all' || tell === 'sender') sender.sendControl(frame);
    for (const receiver of transfer.receivers.values()) {
      receiver.peer.receiving.delete(transfer.id);
      receiver.peer.chunks.remove(receiver.source);
      if ((tell === 'all' || tell === 'receivers') && !receiver.toldComplete) receiver.peer.sendControl(frame);
    }
    transfer.receivers.clear();
    if (this.transfers.size === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /**
   * A user leaves the room (moved) or the server (left): every transfer they send ends
   * sender_left for its receivers; every transfer they receive goes on without them.
   */
  leaveRoom(peer: TransferPeer, how: 'moved' | 'left'): void {
    for (const transfer of [...peer.sending.values()]) {
      this.end(transfer, { result: TransferResult.senderLeft, message: `${peer.name} ${how === 'moved' ? 'moved to another room' : 'left'}` }, 'receivers');
      if (how === 'moved') peer.sendControl(transferEndFrame({ transfer: transfer.id, result: TransferResult.moved, message: 'you left the room: your transfer stops' }));
    }
    for (const transfer of [...peer.receiving.values()]) {
      transfer.dropReceiver(peer, how === 'moved' ? { result: TransferResult.moved, message: 'you left the room: this transfer stops for you' } : null);
    }
    peer.chunks.clear();
  }

  /** CANCEL: the sender ends it for everyone; a receiver leaves it alone. Any other id is ignored. */
  cancel(peer: TransferPeer, id: number): void {
    const by = userRef(peer);
    const sent = peer.sending.get(id);
    if (sent !== undefined) {
      this.end(sent, { result: TransferResult.cancelled, message: `${peer.name} cancelled the transfer`, by }, 'all');
      return;
    }
    peer.receiving.get(id)?.dropReceiver(peer, { result: TransferResult.cancelled, message: 'you cancelled the transfer', by });
  }

  /** A CHUNK from `peer`: for a transfer it sends now, one it ended a moment ago (discarded), or bad_chunk. */
  chunk(peer: TransferPeer, chunk: Chunk, payload: Buffer): void {
    const transfer = peer.sending.get(chunk.transfer);
    if (transfer !== undefined) {
      transfer.takeChunk(chunk, payload);
      return;
    }
    if (peer.recentlyEnded.includes(chunk.transfer)) return; // in flight as it ended: at most one credit of it
    throw new ProtocolError(ErrorCode.badChunk, `CHUNK for transfer ${chunk.transfer}, which is not a transfer you send`);
  }

  ack(peer: TransferPeer, transfer: number, received: number): void {
    peer.receiving.get(transfer)?.takeAck(peer, received);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private tick(): void {
    const now = performance.now();
    const elapsed = now - this.lastTick;
    this.lastTick = now;
    for (const transfer of [...this.transfers.values()]) if (!this.isOver(transfer)) transfer.tick(now, elapsed);
  }
}

function userRef(user: UserRef): UserRef {
  return { id: user.id, name: user.name };
}

/**
 * One user's offers: the checks of an OFFER in the README's order, and their offer bucket
 * (issue 18: an offer notifies the whole room). Fields: ERROR bad_field; then REFUSED
 * bad_file_name, file_too_large, no_such_member / no_receivers, too_many_transfers, server_busy,
 * rate_limited (the MAX_OFFERS_REFUSED-th rate_limited in a row: ERROR rate_limited).
 */
export class OfferGate {
  private readonly limit = new RequestLimit('OFFER', OFFER_BURST, OFFER_REFILL_MS, MAX_OFFERS_REFUSED, { plural: 'offers' });

  handle(sender: TransferPeer, payload: Buffer, room: Iterable<TransferPeer>, relay: FileRelay): void {
    const offer = parseClientOffer(payload);
    const refuse = (code: ErrorCode, message: string) => sender.sendControl(refusedFrame('offer', code, message));
    const nameProblem = fileNameProblem(offer.name);
    if (nameProblem !== null) return refuse(ErrorCode.badFileName, nameProblem);
    if (offer.size > MAX_FILE_BYTES) return refuse(ErrorCode.fileTooLarge, `the file is ${offer.size} bytes; at most ${MAX_FILE_BYTES} (64 MiB) may be sent`);
    let receivers: TransferPeer[];
    if (offer.to !== undefined) {
      receivers = [...room].filter((member) => member.id === offer.to && member !== sender);
      if (receivers.length === 0) return refuse(ErrorCode.noSuchMember, `nobody else in your room has id ${offer.to}`);
    } else {
      receivers = [...room].filter((member) => member !== sender);
      if (receivers.length === 0) return refuse(ErrorCode.noReceivers, 'nobody else is in your room');
    }
    if (sender.sending.size >= MAX_TRANSFERS_PER_SENDER) return refuse(ErrorCode.tooManyTransfers, `you already send ${MAX_TRANSFERS_PER_SENDER} files; wait for one to end`);
    if (relay.count >= MAX_TRANSFERS_PER_SERVER) return refuse(ErrorCode.serverBusy, `${MAX_TRANSFERS_PER_SERVER} transfers are running on this server; try again later`);
    if (!this.limit.take()) return refuse(ErrorCode.rateLimited, this.limit.refusal());
    relay.open(sender, offer, receivers);
  }
}
