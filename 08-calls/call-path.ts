// The client's side of a call's media path (README "Hole punching and the path"): probes to the
// peer from the same UDP socket we use for the server, and which way our voice goes.
//
//   CALL_START with an address:  connecting; CALL_PROBE to the peer at once, then every 200 ms
//   connecting -> direct:        a valid direct datagram from the peer AND the peer's probe says
//                                received > 0 (both directions proven)
//   connecting -> relayed:       3 s without that
//   direct -> relayed:           3 s without a valid direct datagram, or without growth of the
//                                peer's `received` (our packets stopped reaching them)
//   relayed -> direct:           the same proof again, after the fall (a path that opens late)
//   --relay, or no peer address: relayed from the start, and no probe at all
//
// Probes go every 1 s once direct or relayed (they keep the NATs' mappings open). Each probe
// carries how many valid direct datagrams we have had from the peer (`received`); when that first
// becomes 1 the next probe goes at once (once per call), so the peer learns "you reach me" sooner.
//
// Datagrams from anyone but the server come to DirectDatagrams, which checks them in the README's
// order (type and size, the call's token, a new datagram, the voice bucket, --block-direct), drops
// a failure silently and counts it; a datagram that passes goes to the call's CallPath. The peer's
// bound address starts as CALL_START's peer_address and is re-learned like the server's binding in
// stage 06: a NEW datagram (a higher probe number, a sequence the replay window has not seen)
// with the token from another address moves it there, once it has passed every check.
// Both classes run on an injected clock and send through an injected function, so the tests run
// them on a manual clock and read what they send.
import { timingSafeEqual } from 'node:crypto';
import type { Scheduler } from '#shared/audio/frame-clock.ts';
import { hostPort } from '#shared/host-port.ts';
import { TokenBucket } from '#shared/token-bucket.ts';
import {
  CALL_VOICE_BURST,
  CALL_VOICE_PER_SECOND,
  callProbeDatagram,
  callVoiceDatagram,
  DIRECT_TIMEOUT_MS,
  type PeerDatagram,
  type PeerDropReason,
  parsePeerDatagram,
  PROBE_INTERVAL_MS,
  PROBE_KEEPALIVE_MS,
} from './datagrams.ts';
import { MAX_EXPECTED_LOSS_PERCENT, MIN_EXPECTED_LOSS_PERCENT } from './udp-path.ts';
import type { UdpAddress } from './call-messages.ts';
import { ReplayWindow } from './udp-voice.ts';

// ---------------------------------------------------------------- the path of one call

export type CallPathState = 'connecting' | 'direct' | 'relayed';

/** A UDP address as CALL_START and ADDRESS give it. */
export type PeerAddress = UdpAddress;

export interface CallPathHooks {
  /** Sends a datagram to the peer, from the socket we use for the server. */
  sendTo(datagram: Buffer, to: PeerAddress): void;
  /** The path changed: `line` is what the user is told ("direct to 198.51.100.4:40001"). */
  pathChanged(state: CallPathState, line: string): void;
  /** A CALL_VOICE from the peer passed every check: into the peer's jitter buffer. */
  voice(sequence: number, packet: Buffer): void;
  /** The loss measured on the direct path changed what the encoder should expect (5-30 %). */
  expectedLoss?(percent: number): void;
}

export interface CallPathOptions {
  /** The call's 8-byte token (CALL_START's, as bytes). */
  token: Buffer;
  /** CALL_START's peer_address: null when either party asked for the relay or the peer has no UDP. */
  peerAddress: PeerAddress | null;
  /** Why we relay from the start whatever the address ('--relay', '--tcp': no UDP socket): said in the line. */
  relayBecause?: string;
}

/** What /stats and the end of the call show about the direct path. */
export interface CallPathStats {
  state: CallPathState;
  probesSent: number;
  voiceSent: number;
  /** Valid direct datagrams from the peer (what our probes say as `received`). */
  received: number;
  /** The peer's `received` in its latest probe: how many of ours reached it. */
  peerReceived: number;
  peerAddress: PeerAddress | null;
}

export class CallPath {
  private currentState: CallPathState = 'connecting';
  private probeNumber = 0;
  /** Datagrams (probes and voice) we sent to the peer. */
  private sent = 0;
  private voiceSent = 0;
  /** Valid direct datagrams from the peer in this call. */
  private received = 0;
  /** The highest probe number accepted, and the peer's `received` in it. */
  private lastProbe = 0;
  private peerReceived = 0;
  /** The proof of a direct path counts what came after this moment: entering connecting or relayed. */
  private receivedAtFall = 0;
  private peerReceivedAtFall = 0;
  /** While direct: when a valid direct datagram last came, and when the peer's `received` last grew. */
  private lastValidAt = 0;
  private lastGrowthAt = 0;
  /** For the encoder's expected loss: our count sent and the peer's `received` at its last probe. */
  private lossMark: { sent: number; received: number } | null = null;
  private expectedLossPercent = MIN_EXPECTED_LOSS_PERCENT;
  private bound: PeerAddress | null;
  private readonly replay = new ReplayWindow();
  private readonly voiceBucket: TokenBucket;
  private sentEarlyProbe = false;
  private probeTimer: unknown;
  private deadline: unknown;
  private stopped = false;

  constructor(
    private readonly options: CallPathOptions,
    private readonly hooks: CallPathHooks,
    private readonly clock: Scheduler,
  ) {
    this.bound = options.peerAddress;
    this.voiceBucket = new TokenBucket(1000 / CALL_VOICE_PER_SECOND, CALL_VOICE_BURST, () => clock.now());
  }

  get token(): Buffer {
    return this.options.token;
  }

  get state(): CallPathState {
    return this.currentState;
  }

  /** At CALL_START: relayed at once (--relay, --tcp, no address), else connecting with a probe at once. */
  start(): void {
    const { relayBecause, peerAddress } = this.options;
    if (relayBecause !== undefined || peerAddress === null) {
      const why = relayBecause ?? 'no direct address: the peer asked for the relay, or has no UDP';
      this.switchTo('relayed', `relayed through the server (${why})`);
      return;
    }
    this.hooks.pathChanged('connecting', 'connecting');
    this.probe();
    this.deadline = this.clock.setTimeout(() => this.fall(`no direct packet within ${DIRECT_TIMEOUT_MS / 1000} s`), DIRECT_TIMEOUT_MS);
  }

  /** At CALL_END (or when we leave): no probe and no voice from now on. */
  stop(): void {
    this.stopped = true;
    this.clock.clearTimeout(this.probeTimer);
    this.clock.clearTimeout(this.deadline);
  }

  /** Our voice as CALL_VOICE to the peer's bound address; the caller sends it only while `state` is direct. */
  sendVoice(sequence: number, packet: Buffer): void {
    if (this.stopped || this.bound === null) return;
    this.sent++;
    this.voiceSent++;
    this.hooks.sendTo(callVoiceDatagram(this.options.token, sequence, packet), this.bound);
  }

  get stats(): CallPathStats {
    return { state: this.currentState, probesSent: this.probeNumber, voiceSent: this.voiceSent, received: this.received, peerReceived: this.peerReceived, peerAddress: this.bound };
  }

  /**
   * Checks 3-5 of the README's table for a datagram with this call's token (DirectDatagrams did 1
   * and 2); returns the reason it is dropped, or null when it was taken.
   */
  take(datagram: PeerDatagram, from: PeerAddress, blockDirect: boolean): 'replayed' | 'rate_limited' | 'blocked' | null {
    if (this.stopped) return 'replayed'; // cannot happen: DirectDatagrams forgets the call at stop
    // Check 3 (and 4's window): only a NEW datagram counts, from anywhere; from a new address it rebinds.
    const fresh = datagram.type === 'call_probe' ? datagram.probe > this.lastProbe : this.replay.isNew(datagram.sequence);
    if (!fresh) return 'replayed';
    if (datagram.type === 'call_voice' && !this.voiceBucket.tryTake()) return 'rate_limited'; // check 4
    if (blockDirect) return 'blocked'; // check 5: the test hook behaves as a filtering NAT
    if (this.bound === null || this.bound.address !== from.address || this.bound.port !== from.port) this.bound = { address: from.address, port: from.port };
    const now = this.clock.now();
    this.received++;
    this.lastValidAt = now;
    if (datagram.type === 'call_probe') {
      this.lastProbe = datagram.probe;
      if (datagram.received > this.peerReceived) this.lastGrowthAt = now;
      this.peerReceived = datagram.received;
      this.measureLoss();
    } else {
      this.replay.accept(datagram.sequence);
      this.hooks.voice(datagram.sequence, datagram.packet);
    }
    if (this.received === 1 && !this.sentEarlyProbe && this.probing) {
      // The first sign that the peer reaches us: tell it at once rather than at the next tick.
      this.sentEarlyProbe = true;
      this.sendProbe();
    }
    this.checkProof();
    return null;
  }

  private get probing(): boolean {
    return !this.stopped && this.options.relayBecause === undefined && this.options.peerAddress !== null;
  }

  /** Both directions proven since the last fall: direct. */
  private checkProof(): void {
    if (this.currentState === 'direct') {
      this.armDirectWatch();
      return;
    }
    if (!this.probing) return;
    if (this.received > this.receivedAtFall && this.peerReceived > this.peerReceivedAtFall) {
      const now = this.clock.now();
      this.lastValidAt = now;
      this.lastGrowthAt = now;
      this.lossMark = null;
      this.clock.clearTimeout(this.deadline);
      this.switchTo('direct', `direct to ${hostPort(this.bound!.address, this.bound!.port)}`);
      this.armDirectWatch();
      // Probes every 1 s from now: the 200 ms ones were only to open the path.
      this.clock.clearTimeout(this.probeTimer);
      this.probeTimer = this.clock.setTimeout(() => this.probe(), PROBE_KEEPALIVE_MS);
    }
  }

  /** While direct: fall to the relay 3 s after the older of the last valid datagram and the last growth. */
  private armDirectWatch(): void {
    this.clock.clearTimeout(this.deadline);
    const since = Math.min(this.lastValidAt, this.lastGrowthAt);
    const wait = Math.max(0, since + DIRECT_TIMEOUT_MS - this.clock.now());
    this.deadline = this.clock.setTimeout(() => {
      const why = this.lastValidAt <= this.lastGrowthAt ? 'no direct packet' : 'our packets stopped reaching the peer';
      this.fall(`${why} for ${DIRECT_TIMEOUT_MS / 1000} s`);
    }, wait);
  }

  private fall(why: string): void {
    if (this.stopped) return;
    this.receivedAtFall = this.received;
    this.peerReceivedAtFall = this.peerReceived;
    this.switchTo('relayed', `relayed through the server (${why})`);
  }

  private switchTo(state: CallPathState, line: string): void {
    this.currentState = state;
    this.hooks.pathChanged(state, line);
  }

  /** One probe now, and the next one by the state's interval. */
  private probe(): void {
    if (!this.probing) return;
    this.sendProbe();
    this.probeTimer = this.clock.setTimeout(() => this.probe(), this.currentState === 'connecting' ? PROBE_INTERVAL_MS : PROBE_KEEPALIVE_MS);
  }

  private sendProbe(): void {
    if (this.bound === null) return;
    this.probeNumber++;
    this.sent++;
    this.hooks.sendTo(callProbeDatagram(this.options.token, this.probeNumber, this.received), this.bound);
  }

  /** The peer's `received` grew by so much against what we sent between two of its probes: the direct path's loss. */
  private measureLoss(): void {
    const mark = { sent: this.sent, received: this.peerReceived };
    const before = this.lossMark;
    this.lossMark = mark;
    if (before === null || this.currentState !== 'direct' || !this.hooks.expectedLoss) return;
    const windowSent = mark.sent - before.sent;
    if (windowSent <= 0) return;
    const windowLoss = (100 * (windowSent - (mark.received - before.received))) / windowSent;
    const expected = Math.min(MAX_EXPECTED_LOSS_PERCENT, Math.max(MIN_EXPECTED_LOSS_PERCENT, Math.round(windowLoss)));
    if (expected !== this.expectedLossPercent) {
      this.expectedLossPercent = expected;
      this.hooks.expectedLoss(expected);
    }
  }
}

// ---------------------------------------------------------------- every direct datagram, call or not

export interface DirectCounters extends Record<PeerDropReason, number> {
  accepted: number;
}

/** The client's inbox for datagrams from anyone but the server: checks 1 and 2 here, 3-5 in the call's CallPath. */
export class DirectDatagrams {
  readonly counters: DirectCounters = { accepted: 0, bad_type: 0, bad_size: 0, bad_token: 0, replayed: 0, rate_limited: 0, blocked: 0 };
  /** The active call's path (after CALL_START, before CALL_END), or null. */
  call: CallPath | null = null;

  /** @param blockDirect --block-direct: every direct datagram is dropped at check 5 (a test hook). */
  constructor(private readonly blockDirect = false) {}

  receive(datagram: Buffer, from: PeerAddress): void {
    const parsed = parsePeerDatagram(datagram); // check 1
    if ('drop' in parsed) return void this.counters[parsed.drop]++;
    const call = this.call; // check 2: a call is active, and this is its token
    if (call === null || !timingSafeEqual(call.token, parsed.token)) return void this.counters.bad_token++;
    const dropped = call.take(parsed, from, this.blockDirect); // checks 3-5
    if (dropped === null) this.counters.accepted++;
    else this.counters[dropped]++;
  }

  /** "direct datagrams: accepted 310, bad_type 0, ..." for /stats. */
  get line(): string {
    return `direct datagrams: ${Object.entries(this.counters).map(([name, count]) => `${name} ${count}`).join(', ')}`;
  }
}
