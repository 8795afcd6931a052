// The server's calls (stage 08): the call table and its state machine. A user is idle, ringing (as
// caller or callee) or in a call; one call at a time. The server only introduces the two parties:
// it rings the callee, and when they accept it gives both a fresh per-call token and each the
// OTHER's UDP address (unless either asked for the relay), then gets out of the way. While a call
// is active it relays a party's voice to the peer only (the fallback when no direct path opens),
// keeps room voice from both, and holds every voice of both for CALL_GUARD_MS after CALL_START and
// after CALL_END (the guard). README.md has the state diagram; each rule below is in one place.
//
//   ringing --ACCEPT by the callee, or the callee INVITEs the caller (glare)--> active   CALL_START to both
//   ringing --DECLINE or HANGUP by the callee-->   ended  declined   (by the callee)
//   ringing --HANGUP by the caller-->              ended  cancelled  (by the caller)
//   ringing --the ring timer-->                    ended  no_answer
//   active  --HANGUP by either-->                  ended  hangup     (by that party)
//   any     --either leaves the server-->          ended  peer_left  (by the one who left; told to the other)
//
// The server handles one message at a time, so every race has one order: whatever it handles first
// wins, and an ACCEPT, DECLINE or HANGUP for a call that has ended (or was never yours) is ignored.
import { randomBytes } from 'node:crypto';
import {
  CALL_GUARD_MS,
  callEndFrame,
  type CallEndReason,
  callStartFrame,
  type Found,
  incomingCallFrame,
  type InviteRequest,
  MAX_CALL_ID,
  MIN_CALL_ID,
  presenceFrame,
  ringingFrame,
  type UdpAddress,
} from './call-messages.ts';
import { refusedFrame } from './chat-messages.ts';
import { ErrorCode, TOKEN_BYTES, type UserRef } from './protocol.ts';
import type { RequestLimit } from './request-limit.ts';

/** A joined user as the call table sees them. */
export interface CallParty extends UserRef {
  sendControl(frame: Buffer): void;
  /** The UDP address stage 06 bound for this user, as ADDRESS announced it; null when none is bound (yet). */
  boundAddress(): UdpAddress | null;
  /** True while in an ACTIVE call (after CALL_START, before CALL_END). Set by the call table only; USERS and PRESENCE read it. */
  inCall: boolean;
}

/** Time for the ring timer and the guard; tests pass a fake one. */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const REAL_CLOCK: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** What the call table needs from the rooms. */
export interface CallEvents<Party extends CallParty> {
  /** Sends `frame` (PRESENCE) to the other members of `party`'s room, when a call of theirs starts or ends. */
  tellRoom(party: Party, frame: Buffer): void;
}

/** Where a party's voice (VOICE_UP or TCP VOICE) goes now. */
export type VoiceRoute<Party> = { to: 'room' } | { to: 'peer'; peer: Party } | { to: 'nobody' };

interface Call<Party> {
  id: number;
  caller: Party;
  callee: Party;
  state: 'ringing' | 'active';
  /** The caller's INVITE asked for relay_only. */
  callerRelayOnly: boolean;
  /** The ring timer while ringing (no_answer). */
  ringTimer: unknown;
  /** PRESENCE in_call true went to the parties' rooms (so the end sends in_call false). */
  announced: boolean;
}

/** A fresh call token: 8 crypto-random bytes, never derived from ids, names or time; new for every call. */
export function newCallToken(): Buffer {
  return randomBytes(TOKEN_BYTES);
}

export interface CallTableOptions<Party extends CallParty> {
  /** The user online under this exact name (the directory). */
  find(name: string): Party | undefined;
  /** How long a call rings before CALL_END no_answer (the server's --ring-timeout, in ms). */
  ringTimeoutMs: number;
  events: CallEvents<Party>;
  clock?: Clock;
  /** One line per call event, for the server's log (default console.log). */
  log?: (line: string) => void;
}

export class CallTable<Party extends CallParty> {
  private readonly byId = new Map<number, Call<Party>>();
  /** Each user's one call, ringing or active. */
  private readonly byParty = new Map<Party, Call<Party>>();
  /** Until when (clock ms) the guard holds each party's voice and keeps room voice from them. */
  private readonly guardUntil = new Map<Party, number>();
  private nextId = MIN_CALL_ID;
  private readonly clock: Clock;
  private readonly log: (line: string) => void;

  constructor(private readonly options: CallTableOptions<Party>) {
    this.clock = options.clock ?? REAL_CLOCK;
    this.log = options.log ?? ((line) => console.log(line));
  }

  /** Calls now, ringing or active. */
  get size(): number {
    return this.byId.size;
  }

  /** Ringing or in a call: FOUND says "busy", an INVITE to them is REFUSED busy. */
  isBusy(user: Party): boolean {
    return this.byParty.has(user);
  }

  /** FOUND for a LOOKUP of `name`: online or not, and if online whether they can be called. Nothing else. */
  found(name: string): Found {
    const user = this.options.find(name);
    if (user === undefined) return { name, online: false };
    return { name, online: true, state: this.isBusy(user) ? 'busy' : 'available' };
  }

  /**
   * A parsed INVITE (frame, not_joined, UTF-8, JSON and fields were checked by the caller). The
   * README's order: a token from the invite bucket (taken BEFORE the callee is looked at, so every
   * answer that says something about another user costs one), calling_yourself, no_such_user,
   * glare, already_in_call, busy. Exactly one answer: REFUSED, RINGING, or (glare) CALL_START.
   */
  invite(caller: Party, request: InviteRequest, limit: RequestLimit): void {
    const refuse = (code: ErrorCode, message: string) => caller.sendControl(refusedFrame('invite', code, message));
    if (!limit.take()) return refuse(ErrorCode.rateLimited, limit.refusal());
    if (request.to === caller.name) return refuse(ErrorCode.callingYourself, 'you cannot call yourself');
    const callee = this.options.find(request.to);
    if (callee === undefined) return refuse(ErrorCode.noSuchUser, `nobody called ${JSON.stringify(request.to.slice(0, 64))} is online`);
    const theirs = this.byParty.get(callee);
    // Glare: the one you call is ringing YOU. Both want the same call: this INVITE accepts it.
    if (theirs !== undefined && theirs.state === 'ringing' && theirs.caller === callee && theirs.callee === caller) return this.start(theirs, request.relayOnly);
    if (this.byParty.has(caller)) return refuse(ErrorCode.alreadyInCall, 'you are already ringing or in a call: hang up first');
    if (this.byParty.has(callee)) return refuse(ErrorCode.busy, `${callee.name} is busy (ringing or in a call)`);
    this.ring(caller, callee, request.relayOnly);
  }

  /** ACCEPT: starts the call if it rings `callee`; otherwise (ended, never theirs, already active) ignored. */
  accept(callee: Party, call: number, relayOnly: boolean): void {
    const target = this.byId.get(call);
    if (target === undefined || target.state !== 'ringing' || target.callee !== callee) return;
    this.start(target, relayOnly);
  }

  /** DECLINE: ends a call that rings `callee` (declined); otherwise ignored. */
  decline(callee: Party, call: number): void {
    const target = this.byId.get(call);
    if (target === undefined || target.state !== 'ringing' || target.callee !== callee) return;
    this.end(target, 'declined', callee);
  }

  /**
   * HANGUP: by the caller while it rings, cancelled; by the callee while it rings, declined; by
   * either in a call, hangup. A call that is not `user`'s (or has ended) is ignored.
   */
  hangup(user: Party, call: number): void {
    const target = this.byId.get(call);
    if (target === undefined || (target.caller !== user && target.callee !== user)) return;
    if (target.state === 'active') return this.end(target, 'hangup', user);
    this.end(target, user === target.caller ? 'cancelled' : 'declined', user);
  }

  /** `user` leaves the server (BYE, lost, error): their call ends, peer_left, told to the other only. */
  leave(user: Party): void {
    const call = this.byParty.get(user);
    if (call !== undefined) this.end(call, 'peer_left', user, user);
    this.guardUntil.delete(user);
  }

  // ------------------------------------------------------------ the relay's rules

  /**
   * Where `sender`'s voice goes: in the guard, nowhere; in an active call, to the peer only (the
   * relay; never to the room); otherwise to their room (ringing included).
   */
  voiceRoute(sender: Party): VoiceRoute<Party> {
    if (this.guarded(sender)) return { to: 'nobody' };
    const call = this.byParty.get(sender);
    if (call !== undefined && call.state === 'active') return { to: 'peer', peer: call.caller === sender ? call.callee : call.caller };
    return { to: 'room' };
  }

  /** Whether room voice may be sent to `listener`: never to a party in a call, nor in the guard. */
  receivesRoomVoice(listener: Party): boolean {
    return !listener.inCall && !this.guarded(listener);
  }

  /** Clears the ring timers (the server stops). */
  stop(): void {
    for (const call of this.byId.values()) this.clock.clearTimeout(call.ringTimer);
  }

  // ------------------------------------------------------------ the state machine

  private ring(caller: Party, callee: Party, callerRelayOnly: boolean): void {
    const call: Call<Party> = { id: this.takeId(), caller, callee, state: 'ringing', callerRelayOnly, ringTimer: undefined, announced: false };
    call.ringTimer = this.clock.setTimeout(() => this.end(call, 'no_answer'), this.options.ringTimeoutMs);
    this.byId.set(call.id, call);
    this.byParty.set(caller, call);
    this.byParty.set(callee, call);
    // No address in either: the callee's is not given before they accept, the caller's not to someone who has not.
    callee.sendControl(incomingCallFrame({ call: call.id, from: caller }));
    if (!this.alive(call)) return; // the callee was dropped as it was told (it stopped reading): the caller has CALL_END
    caller.sendControl(ringingFrame({ call: call.id, to: callee }));
    if (!this.alive(call)) return;
    this.log(`call ${call.id}: ${label(caller)} calls ${label(callee)}${callerRelayOnly ? ' (relay only)' : ''}: ringing`);
  }

  /** CALL_START to both: one fresh token, each the OTHER's bound address, or null when either asked for the relay. */
  private start(call: Call<Party>, calleeRelayOnly: boolean): void {
    this.clock.clearTimeout(call.ringTimer);
    call.state = 'active';
    const token = newCallToken();
    const relayOnly = call.callerRelayOnly || calleeRelayOnly;
    const { caller, callee } = call;
    for (const party of [caller, callee]) {
      party.inCall = true;
      this.guard(party);
    }
    // A party dropped as it is told (it stopped reading) ends the call at once (peer_left): stop there.
    caller.sendControl(callStartFrame({ call: call.id, peer: callee, token, peerAddress: relayOnly ? null : callee.boundAddress() }));
    if (!this.alive(call)) return;
    callee.sendControl(callStartFrame({ call: call.id, peer: caller, token, peerAddress: relayOnly ? null : caller.boundAddress() }));
    if (!this.alive(call)) return;
    call.announced = true;
    for (const party of [caller, callee]) {
      // Their room learns THAT they are in a call: their id and name, never with whom.
      this.options.events.tellRoom(party, presenceFrame({ id: party.id, name: party.name, inCall: true }));
    }
    this.log(`call ${call.id}: ${label(callee)} accepted: started${relayOnly ? ', relay only' : ''}`);
  }

  /** CALL_END to both (but not to `gone`, who left the server); an active call also ends in_call and starts the guard. */
  private end(call: Call<Party>, reason: CallEndReason, by?: Party, gone?: Party): void {
    if (!this.alive(call)) return; // ended already (a timer that fired late)
    this.clock.clearTimeout(call.ringTimer);
    this.byId.delete(call.id);
    this.byParty.delete(call.caller);
    this.byParty.delete(call.callee);
    const frame = callEndFrame(by === undefined ? { call: call.id, reason } : { call: call.id, reason, by }); // the same bytes for both
    const wasActive = call.state === 'active';
    const told = [call.caller, call.callee].filter((party) => party !== gone);
    // State first: a party dropped as it is told (it stopped reading) leaves with nothing of this call left behind.
    if (wasActive) {
      for (const party of told) {
        party.inCall = false;
        this.guard(party);
      }
    }
    for (const party of told) party.sendControl(frame);
    if (call.announced) {
      for (const party of told) this.options.events.tellRoom(party, presenceFrame({ id: party.id, name: party.name, inCall: false }));
    }
    this.log(`call ${call.id}: ended, ${reason}${by === undefined ? '' : ` by ${label(by)}`}`);
  }

  /** Whether `call` is still in the table (a send can end it: a party dropped as it is told leaves at once). */
  private alive(call: Call<Party>): boolean {
    return this.byId.get(call.id) === call;
  }

  /** The guard starts (or starts again) for `party`: CALL_GUARD_MS from now. */
  private guard(party: Party): void {
    this.guardUntil.set(party, this.clock.now() + CALL_GUARD_MS);
  }

  private guarded(party: Party): boolean {
    const until = this.guardUntil.get(party);
    if (until === undefined) return false;
    if (this.clock.now() < until) return true;
    this.guardUntil.delete(party); // over: the map holds only guards that run
    return false;
  }

  /** Call ids: increasing, skipping ids in use, wrapping from 65535 to 1 (an old id comes back only after ~65 000 calls). */
  private takeId(): number {
    while (this.byId.has(this.nextId)) this.advance();
    const id = this.nextId;
    this.advance();
    return id;
  }

  private advance(): void {
    this.nextId = this.nextId === MAX_CALL_ID ? MIN_CALL_ID : this.nextId + 1;
  }
}

/** "Ada (id 2)", for the server's log. */
function label(user: UserRef): string {
  return `${user.name} (id ${user.id})`;
}
