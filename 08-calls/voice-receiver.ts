// The receiving half of client-side mixing: the server forwards each speaker's Opus packets as they
// come (as UDP datagrams or TCP VOICE, both fed here), and this client decodes and mixes them
// itself, on its own 20 ms playback clock.
//
// One SpeakerStream per speaker id: its own Opus decoder (a decoder carries that one stream's
// history, so two speakers can never share one) and a jitter buffer of packets ordered by sequence
// number. Datagrams come lost, late, twice or out of order; the buffer puts them back in order and
// plays around what is missing. On each packet:
//
//   a sequence seen before (the network duplicated it, or it came both ways during a path switch) -> dropped (duplicate)
//   a sequence at or before the one due next (its slot was played, rebuilt or concealed)          -> dropped (late)
//   otherwise stored in order; more than 8 waiting: the oldest is dropped and playing skips past it.
//
// Each tick of the playback clock takes at most one 20 ms frame from every stream and mixes them:
//
//   not playing: start when 2 packets wait (40 ms of voice) or the oldest has waited 40 ms
//   playing:     the next sequence is waiting     -> decode it (a packet that does not decode is concealed)
//                the one after it waits           -> decodeFec(that packet): one lost packet, rebuilt from
//                                                    the low-rate copy Opus in-band FEC put in the next one
//                a later one waits                -> conceal (Opus packet-loss concealment: a burst of losses)
//                nothing waits                    -> conceal too, for at most 2 ticks (40 ms): the next
//                                                    packet may only be late; then stop playing (the talk
//                                                    spurt is over) and rebuffer when voice comes again
//   mix = clip(sum of this tick's frames): never an average, and never our own voice.
//
// Per speaker it also keeps the statistics the `stats` command shows: packets lost on the way
// (sequences never received), and RFC 3550's interarrival jitter over the datagrams.
import { FRAME_BYTES, FRAME_MS } from '#shared/audio/format.ts';
import type { OpusVoiceDecoder } from '#shared/codec/opus.ts';
import { RoomMixer } from '#shared/mixer.ts';
import { isSequenceAfter, nextSequence, sequenceDistance, type VoicePath } from './protocol.ts';

/** A stream starts playing once this many packets wait (40 ms of voice)... */
export const START_PACKETS = 2;
/** ...or once its oldest packet has waited this long. */
export const START_WAIT_MS = 2 * FRAME_MS;
/**
 * While playing, with nothing waiting, a stream conceals this many ticks (40 ms) in case the next
 * packet is only late, then stops: a pause in speech then costs 40 ms of fading concealment, and
 * a packet that is a little late costs one concealed frame instead of a hole and a rebuffer.
 */
export const MAX_CONCEALED_WAITING = 2;
/** Most packets waiting per speaker (160 ms); one more drops the oldest. */
export const MAX_WAITING_PACKETS = 8;
/**
 * Most speakers with a decoder at once. The server names who speaks, so a broken server could
 * name thousands; past this, the stream heard least recently gives its decoder up.
 */
export const MAX_SPEAKER_STREAMS = 64;
/** How many recent sequences per speaker are remembered to recognise a duplicate. */
export const SEEN_WINDOW = 64;
/**
 * VOICE carries no timestamp, only a sequence that stands still while the speaker is silent, so
 * jitter is measured within talk spurts: a packet arriving more than this long after the previous
 * one starts a new spurt and is not compared with it.
 */
export const JITTER_SPURT_GAP_MS = 200;

interface WaitingPacket {
  sequence: number;
  packet: Buffer;
  arrivedAt: number;
}

/** What happened to the packets received, for the status line and the tests. */
export interface ReceiverCounts {
  /** VOICE accepted into a jitter buffer, and the Opus bytes they carried. */
  received: number;
  receivedBytes: number;
  /** Frames decoded from a packet. */
  decoded: number;
  /** Frames made up by packet-loss concealment (a gap, or a packet that did not decode). */
  concealed: number;
  /** Lost frames rebuilt from the FEC copy in the packet after them. */
  fecRecovered: number;
  /** Packets that came after their turn, dropped. */
  late: number;
  /** Packets that came a second time, dropped. */
  duplicates: number;
  /** Packets dropped because MAX_WAITING_PACKETS already waited. */
  overflow: number;
  /** VOICE carrying our own id, ignored. */
  ownVoice: number;
}

/** What the `stats` command shows for one speaker. */
export interface SpeakerStats {
  id: number;
  /** Distinct packets received, by either path. */
  received: number;
  /** Sequences between the first and the highest received that never arrived (by either path). */
  lost: number;
  /** RFC 3550 interarrival jitter over the speaker's datagrams, in ms (0 until two arrived). */
  jitterMs: number;
  fecRecovered: number;
  concealed: number;
  late: number;
  duplicates: number;
}

class SpeakerStream {
  readonly waiting: WaitingPacket[] = []; // in sequence order, all after `next` - 1
  /** seen[sequence % 64] === sequence for the recent sequences received: duplicates are found here. */
  private readonly seen = new Int32Array(SEEN_WINDOW).fill(-1);
  /** The first sequence received, and how far the highest one is after it (for the loss count). */
  private first: number | undefined;
  private highestOffset = 0;
  /** RFC 3550 6.4.1: J += (|D| - J) / 16, with D the change in transit time between two datagrams. */
  jitterMs = 0;
  private lastUdp: { sequence: number; arrivedAt: number } | undefined;
  readonly stats = { received: 0, fecRecovered: 0, concealed: 0, late: 0, duplicates: 0 };
  /** The sequence due next; undefined until the stream first plays. */
  next: number | undefined;
  playing = false;
  /** Ticks concealed in a row while nothing waited (at most MAX_CONCEALED_WAITING). */
  concealedWaiting = 0;
  lastHeardAt = 0;

  constructor(readonly decoder: OpusVoiceDecoder) {}

  /** Whether `sequence` is too late: at or before a sequence already played or skipped. */
  isLate(sequence: number): boolean {
    return this.next !== undefined && sequence !== this.next && !isSequenceAfter(sequence, this.next);
  }

  /**
   * Whether `sequence` came before (within the last SEEN_WINDOW sequences); marks it seen. A
   * sequence more than 64 before the highest counts as seen: far too late to play anyway.
   */
  seenBefore(sequence: number): boolean {
    if (this.first === undefined) {
      this.first = sequence;
    } else {
      const offset = this.offsetOf(sequence);
      if (offset > this.highestOffset) {
        this.highestOffset = offset;
      } else if (this.highestOffset - offset >= SEEN_WINDOW) {
        return true;
      }
    }
    const slot = sequence % SEEN_WINDOW;
    if (this.seen[slot] === sequence) return true;
    this.seen[slot] = sequence;
    return false;
  }

  /** Sequences lost: the span from the first to the highest received, less those received. */
  get lost(): number {
    return this.first === undefined ? 0 : Math.max(0, this.highestOffset + 1 - this.stats.received - this.stats.late);
  }

  /** One datagram's arrival for the jitter estimate: its sequence stands for its send time (20 ms apart). */
  measureJitter(sequence: number, arrivedAt: number): void {
    const last = this.lastUdp;
    this.lastUdp = { sequence, arrivedAt };
    if (last === undefined || arrivedAt - last.arrivedAt > JITTER_SPURT_GAP_MS) return;
    const sentApart = signedDistance(last.sequence, sequence) * FRAME_MS;
    const d = arrivedAt - last.arrivedAt - sentApart;
    this.jitterMs += (Math.abs(d) - this.jitterMs) / 16;
  }

  // Distance from the first sequence, unwrapped: sequences run on past 65535 in a long talk.
  private offsetOf(sequence: number): number {
    const highest = (this.first! + this.highestOffset) & 0xffff;
    return this.highestOffset + signedDistance(highest, sequence);
  }

  /** Puts a packet in sequence order; false if that sequence already waits. */
  insert(entry: WaitingPacket): boolean {
    let index = this.waiting.length;
    while (index > 0 && isSequenceAfter(this.waiting[index - 1]!.sequence, entry.sequence)) index--;
    if (index > 0 && this.waiting[index - 1]!.sequence === entry.sequence) return false;
    this.waiting.splice(index, 0, entry);
    return true;
  }
}

export interface VoiceReceiverOptions {
  /** One decoder per speaker (createOpusDecoder in the client; tests may pass their own). */
  createDecoder: () => OpusVoiceDecoder;
  /** A monotonic clock in milliseconds (default performance.now). */
  now?: () => number;
}

export class VoiceReceiver {
  /** Our own session id, from WELCOME: VOICE carrying it is never played. */
  ownId: number | undefined;
  readonly counts: ReceiverCounts = { received: 0, receivedBytes: 0, decoded: 0, concealed: 0, fecRecovered: 0, late: 0, duplicates: 0, overflow: 0, ownVoice: 0 };
  private readonly streams = new Map<number, SpeakerStream>();
  private readonly mixer = new RoomMixer();
  private readonly createDecoder: () => OpusVoiceDecoder;
  private readonly now: () => number;

  constructor(options: VoiceReceiverOptions) {
    this.createDecoder = options.createDecoder;
    this.now = options.now ?? (() => performance.now());
  }

  /**
   * One VOICE from the server, by `path` (UDP datagrams also feed the jitter estimate). `packet` is
   * copied: it may be a view into a network chunk.
   */
  receive(speaker: number, sequence: number, packet: Buffer, path: VoicePath = 'tcp'): void {
    if (speaker === this.ownId) {
      this.counts.ownVoice++; // the server must never send it; be safe anyway
      return;
    }
    const stream = this.streamOf(speaker);
    const now = this.now();
    stream.lastHeardAt = now;
    if (stream.seenBefore(sequence)) {
      this.counts.duplicates++;
      stream.stats.duplicates++;
      return;
    }
    if (path === 'udp') stream.measureJitter(sequence, now);
    if (stream.isLate(sequence) || !stream.insert({ sequence, packet: Buffer.from(packet), arrivedAt: now })) {
      this.counts.late++;
      stream.stats.late++;
      return;
    }
    stream.stats.received++;
    this.counts.received++;
    this.counts.receivedBytes += packet.length;
    if (stream.waiting.length > MAX_WAITING_PACKETS) {
      const dropped = stream.waiting.shift()!;
      this.counts.overflow++;
      if (stream.next !== undefined) stream.next = nextSequence(dropped.sequence);
    }
  }

  /** A speaker left (LEFT) or is no longer in our room: forget their stream and decoder. */
  removeSpeaker(id: number): void {
    this.streams.delete(id);
  }

  /** Keeps only the streams of these ids (after USERS: a move, or the room as it is now). */
  keepOnly(ids: ReadonlySet<number>): void {
    for (const id of this.streams.keys()) if (!ids.has(id)) this.streams.delete(id);
  }

  /** Per speaker: received, lost, jitter, FEC-recovered, concealed, late and duplicate packets. */
  speakerStats(): SpeakerStats[] {
    return [...this.streams].map(([id, stream]) => ({ id, ...stream.stats, lost: stream.lost, jitterMs: stream.jitterMs }));
  }

  /** Speakers with a stream now (for tests and the status line). */
  get speakerIds(): number[] {
    return [...this.streams.keys()];
  }

  /**
   * One tick of the playback clock: the next 20 ms of every playing stream, summed and clipped
   * into a new 1920-byte frame. Silence when nobody plays, so a recording keeps time.
   */
  nextFrame(): Buffer {
    const now = this.now();
    this.mixer.begin();
    for (const stream of this.streams.values()) {
      const pcm = this.takeFrame(stream, now);
      if (pcm !== null) this.mixer.add(pcm);
    }
    const out = Buffer.alloc(FRAME_BYTES);
    this.mixer.mixFor(null, out);
    return out;
  }

  /** This tick's 20 ms of one speaker, or null when the stream is not playing. */
  private takeFrame(stream: SpeakerStream, now: number): Buffer | null {
    const oldest = stream.waiting[0];
    if (!stream.playing) {
      if (oldest === undefined) return null;
      if (stream.waiting.length < START_PACKETS && now - oldest.arrivedAt < START_WAIT_MS) return null;
      stream.playing = true;
      stream.next = oldest.sequence;
    }
    let pcm: Buffer;
    if (oldest === undefined) {
      if (stream.concealedWaiting === MAX_CONCEALED_WAITING) {
        // Talk spurt over: stop, and rewind past the concealed slots, since the sender's next
        // packet (when it talks again) carries the sequence after the last one it sent.
        stream.playing = false;
        stream.next = (stream.next! - stream.concealedWaiting) & 0xffff;
        stream.concealedWaiting = 0;
        return null;
      }
      stream.concealedWaiting++; // the next packet may only be late: conceal its slot meanwhile
      pcm = this.conceal(stream);
    } else if (oldest.sequence === stream.next) {
      stream.waiting.shift();
      stream.concealedWaiting = 0;
      pcm = this.decodeOrConceal(stream, oldest.packet);
    } else if (oldest.sequence === nextSequence(stream.next!)) {
      // Exactly one packet missing and the one after it here: its FEC copy rebuilds the lost frame.
      stream.concealedWaiting = 0;
      pcm = this.recoverFromFec(stream, oldest.packet);
    } else {
      stream.concealedWaiting = 0;
      pcm = this.conceal(stream); // a burst lost: what probably came next, not a hole
    }
    stream.next = nextSequence(stream.next!);
    return pcm;
  }

  private decodeOrConceal(stream: SpeakerStream, packet: Buffer): Buffer {
    try {
      const pcm = stream.decoder.decode(packet);
      this.counts.decoded++;
      return pcm;
    } catch {
      // Not a valid 20 ms Opus packet: the server does not look inside packets, so this is
      // the speaker's fault, and costs only this frame.
      return this.conceal(stream);
    }
  }

  private recoverFromFec(stream: SpeakerStream, nextPacket: Buffer): Buffer {
    if (!stream.decoder.fecAvailable) return this.conceal(stream); // decodeFec would only conceal: say so
    try {
      const pcm = stream.decoder.decodeFec(nextPacket);
      this.counts.fecRecovered++;
      stream.stats.fecRecovered++;
      return pcm;
    } catch {
      return this.conceal(stream); // the next packet is broken: its own turn will be concealed too
    }
  }

  private conceal(stream: SpeakerStream): Buffer {
    this.counts.concealed++;
    stream.stats.concealed++;
    return stream.decoder.conceal();
  }

  private streamOf(speaker: number): SpeakerStream {
    let stream = this.streams.get(speaker);
    if (stream === undefined) {
      if (this.streams.size >= MAX_SPEAKER_STREAMS) this.dropQuietestStream();
      stream = new SpeakerStream(this.createDecoder());
      this.streams.set(speaker, stream);
    }
    return stream;
  }

  private dropQuietestStream(): void {
    let quietest: [number, SpeakerStream] | undefined;
    for (const entry of this.streams) if (quietest === undefined || entry[1].lastHeardAt < quietest[1].lastHeardAt) quietest = entry;
    if (quietest !== undefined) this.streams.delete(quietest[0]);
  }
}

/** (b - a) mod 2^16 as a signed step: -32768..32767. */
function signedDistance(a: number, b: number): number {
  const distance = sequenceDistance(a, b);
  return distance >= 0x8000 ? distance - 0x1_0000 : distance;
}
