// The client's side of a call, as a state machine (README "The call on the client"):
//
//   idle --/call NAME--> looking (LOOKUP) --FOUND available--> calling (INVITE) --RINGING--> ringing-out
//   idle --INVITE--> ringing-in --/accept--> (ACCEPT) --CALL_START--> in call
//   ringing-out --CALL_START--> in call
//   any --CALL_END, REFUSED, or FOUND not available--> idle (then the guard second before room voice)
//
// Races: a client in `calling NAME` that gets an INVITE from NAME (glare: the server took our
// INVITE as the ACCEPT of theirs) waits, without ringing, for the CALL_START that follows; an
// INVITE while we are not idle (a server that does not apply `busy`) is answered with DECLINE.
// Answers to LOOKUP come in the order sent (README), so a queue says which question each FOUND
// answers: /who's, or the look-up before a call.
// CallState only decides: what it sends goes out as requests (the client turns them into frames),
// what it says goes to `line`, and the call's start and end go to hooks, so the tests drive it alone.
import type { Scheduler } from '#shared/audio/frame-clock.ts';
import { acceptFrame, CALL_GUARD_MS, type CallStart, declineFrame, hangupFrame, inviteFrame, lookupFrame } from './call-messages.ts';
import type { UserRef } from './protocol.ts';

/** A user as the server names them in calls: their session id and name. */
export type CallParty = UserRef;

/** What CallState asks the client to send to the server. */
export type CallRequest =
  | { kind: 'lookup'; name: string }
  | { kind: 'invite'; to: string; relayOnly: boolean }
  | { kind: 'accept'; call: number; relayOnly: boolean }
  | { kind: 'decline'; call: number }
  | { kind: 'hangup'; call: number };

export interface CallStateHooks {
  send(request: CallRequest): void;
  line(text: string): void;
  /** Someone calls us: a terminal bell. */
  ring(): void;
  /** CALL_START: the media begins (call-path.ts). */
  started(start: CallStart): void;
  /** CALL_END of an active call that lasted `durationMs`: the media stops; returns what the end line shows in brackets ("02:13, direct, ..."). */
  ended(durationMs: number): string;
}

export interface CallStateOptions {
  /** --relay: relay_only in every INVITE and ACCEPT. */
  relayOnly?: boolean;
  /** --auto-accept: accept every call at once. */
  autoAccept?: boolean;
}

/** --call NAME looks NAME up once a second, for up to 10 s, while NAME is not online. */
export const CALL_LOOKUP_EVERY_MS = 1_000;
export const CALL_LOOKUP_FOR_MS = 10_000;

export type CallPhase =
  | { name: 'idle' }
  | { name: 'looking'; callee: string; retryUntil: number | null }
  | { name: 'calling'; callee: string; call: number | null; cancelled: boolean }
  | { name: 'ringing-out'; call: number; peer: CallParty; since: number }
  | { name: 'ringing-in'; call: number; caller: CallParty; since: number; answered: boolean }
  | { name: 'in call'; call: number; peer: CallParty; since: number };

export class CallState {
  phase: CallPhase = { name: 'idle' };
  /** When the last call ended (for the guard). */
  private endedAt = -Infinity;
  /** Who each LOOKUP sent asked about, and why, oldest first (the answers come in order). */
  private readonly lookups: { name: string; forCall: boolean }[] = [];
  private retryTimer: unknown;

  constructor(
    private readonly hooks: CallStateHooks,
    private readonly clock: Scheduler,
    private readonly options: CallStateOptions = {},
  ) {}

  /** The other party of the call we are in or ringing with (known from RINGING, INVITE, CALL_START), or null. */
  get partner(): CallParty | null {
    const phase = this.phase;
    if (phase.name === 'ringing-out' || phase.name === 'in call') return phase.peer;
    if (phase.name === 'ringing-in') return phase.caller;
    return null;
  }

  /** The active call (after CALL_START, before CALL_END), or null. */
  get activeCall(): { call: number; peer: CallParty; since: number } | null {
    return this.phase.name === 'in call' ? this.phase : null;
  }

  /** Whether our voice may go to the room: not in a call, and not within the guard second after one. */
  get roomVoiceAllowed(): boolean {
    return this.phase.name !== 'in call' && this.clock.now() >= this.endedAt + CALL_GUARD_MS;
  }

  /** The status line's call part: "☎ ringing Bob 12s", "☎ Bob direct 01:23"; '' when idle. `path` is the media path's state. */
  status(path: string): string {
    const phase = this.phase;
    const now = this.clock.now();
    switch (phase.name) {
      case 'idle':
        return '';
      case 'looking':
      case 'calling':
        return `☎ calling ${phase.callee}`;
      case 'ringing-out':
        return `☎ ringing ${phase.peer.name} ${Math.floor((now - phase.since) / 1000)}s`;
      case 'ringing-in':
        return phase.answered ? `☎ ${phase.caller.name} answering` : `☎ ${phase.caller.name} calling (/accept /decline)`;
      case 'in call':
        return `☎ ${phase.peer.name} ${path}${path === 'connecting' ? '' : ` ${clockTime(now - phase.since)}`}`;
    }
  }

  // ------------------------------------------------------------ what the user does

  /** /who NAME: one LOOKUP, its answer printed. */
  who(name: string): void {
    this.lookup(name, false);
  }

  /** /call NAME (and --call NAME, with `retryForMs`: look again every second while NAME is not online). */
  call(name: string, retryForMs?: number): void {
    if (this.phase.name !== 'idle') {
      this.hooks.line(this.phase.name === 'in call' ? 'not called: you are already in a call' : `not called: finish the call you have first (/hangup)`);
      return;
    }
    this.phase = { name: 'looking', callee: name, retryUntil: retryForMs === undefined ? null : this.clock.now() + retryForMs };
    this.lookup(name, true);
  }

  accept(): void {
    const phase = this.phase;
    if (phase.name !== 'ringing-in' || phase.answered) return this.hooks.line('no call to accept');
    phase.answered = true;
    this.hooks.send({ kind: 'accept', call: phase.call, relayOnly: this.options.relayOnly ?? false });
  }

  decline(): void {
    const phase = this.phase;
    if (phase.name !== 'ringing-in' || phase.answered) return this.hooks.line('no call to decline');
    phase.answered = true;
    this.hooks.send({ kind: 'decline', call: phase.call }); // CALL_END declined follows, to both
  }

  /** /hangup: ends the call, cancels the one we make, declines the one that rings us. */
  hangup(): void {
    const phase = this.phase;
    switch (phase.name) {
      case 'idle':
        return this.hooks.line('no call to hang up');
      case 'looking':
        this.clock.clearTimeout(this.retryTimer);
        this.phase = { name: 'idle' };
        return this.hooks.line(`call to ${phase.callee} cancelled`);
      case 'calling':
        // The call has no id until RINGING (or glare's INVITE): hang up as soon as it has.
        if (phase.call === null) phase.cancelled = true;
        else this.hooks.send({ kind: 'hangup', call: phase.call });
        return;
      case 'ringing-in':
        if (!phase.answered) this.decline();
        else this.hooks.send({ kind: 'hangup', call: phase.call });
        return;
      case 'ringing-out':
      case 'in call':
        this.hooks.send({ kind: 'hangup', call: phase.call }); // CALL_END follows
    }
  }

  // ------------------------------------------------------------ what the server says

  /** FOUND {name, online, state?}. */
  onFound(name: string, online: boolean, state: string | undefined): void {
    const question = this.lookups.shift();
    if (question === undefined) return; // an answer to nothing we asked: ignore
    const phase = this.phase;
    if (!question.forCall) {
      this.hooks.line(online ? `${name} is online (${state ?? 'available'})` : `nobody named ${name} is online`);
      return;
    }
    if (phase.name !== 'looking' || phase.callee !== question.name) return; // cancelled meanwhile
    if (online && state !== 'busy') {
      this.phase = { name: 'calling', callee: phase.callee, call: null, cancelled: false };
      this.hooks.send({ kind: 'invite', to: phase.callee, relayOnly: this.options.relayOnly ?? false });
    } else if (online) {
      this.phase = { name: 'idle' };
      this.hooks.line(`not called: ${phase.callee} is busy`);
    } else if (phase.retryUntil !== null && this.clock.now() + CALL_LOOKUP_EVERY_MS <= phase.retryUntil) {
      this.retryTimer = this.clock.setTimeout(() => {
        if (this.phase === phase) this.lookup(phase.callee, true);
      }, CALL_LOOKUP_EVERY_MS);
    } else {
      this.phase = { name: 'idle' };
      this.hooks.line(`not called: nobody named ${phase.callee} is online`);
    }
  }

  /** REFUSED of a LOOKUP: the oldest question gets no answer. */
  onLookupRefused(code: string, message: string): void {
    const question = this.lookups.shift();
    if (question === undefined) return;
    if (question.forCall && this.phase.name === 'looking' && this.phase.callee === question.name) {
      this.phase = { name: 'idle' };
      this.hooks.line(`not called: ${message} (${code})`);
    } else if (!question.forCall) {
      this.hooks.line(`not looked up: ${message} (${code})`);
    }
  }

  /** REFUSED of our INVITE. */
  onInviteRefused(code: string, message: string): void {
    const phase = this.phase;
    if (phase.name !== 'calling') return;
    this.phase = { name: 'idle' };
    const why: Record<string, string> = {
      busy: `${phase.callee} is busy`,
      no_such_user: `nobody named ${phase.callee} is online`,
      calling_yourself: 'you cannot call yourself',
      already_in_call: 'you are already in a call',
    };
    this.hooks.line(`not called: ${why[code] ?? `${message} (${code})`}`);
  }

  /** RINGING {call, to}: our INVITE rings them. */
  onRinging(call: number, to: CallParty): void {
    const phase = this.phase;
    if (phase.name !== 'calling') return;
    this.phase = { name: 'ringing-out', call, peer: to, since: this.clock.now() };
    this.hooks.line(`calling ${to.name} (call ${call}): ringing`);
    if (phase.cancelled) this.hooks.send({ kind: 'hangup', call });
  }

  /** INVITE {call, from}: someone calls us. */
  onInvite(call: number, from: CallParty): void {
    const phase = this.phase;
    if (phase.name === 'calling' && phase.call === null && phase.callee === from.name) {
      // Glare: we call them as they call us; the server takes our INVITE as accepting theirs.
      phase.call = call;
      if (phase.cancelled) this.hooks.send({ kind: 'hangup', call });
      return;
    }
    if (phase.name !== 'idle') {
      this.hooks.send({ kind: 'decline', call });
      this.hooks.line(`${from.name} called you (call ${call}) while you were busy: declined`);
      return;
    }
    this.phase = { name: 'ringing-in', call, caller: from, since: this.clock.now(), answered: false };
    this.hooks.line(`${from.name} is calling you (call ${call}): /accept or /decline`);
    this.hooks.ring();
    if (this.options.autoAccept) {
      this.hooks.line('accepting (--auto-accept)');
      this.accept();
    }
  }

  /** CALL_START: the call we make, accepted, or glare's. */
  onCallStart(start: CallStart): void {
    const phase = this.phase;
    const ours =
      (phase.name === 'ringing-out' && phase.call === start.call) ||
      (phase.name === 'ringing-in' && phase.call === start.call && phase.answered) ||
      (phase.name === 'calling' && (phase.call === start.call || (phase.call === null && phase.callee === start.peer.name)));
    if (!ours) {
      // A call we did not make or accept: refuse to be in it.
      this.hooks.send({ kind: 'hangup', call: start.call });
      return;
    }
    this.phase = { name: 'in call', call: start.call, peer: start.peer, since: this.clock.now() };
    this.hooks.started(start);
    if (phase.name === 'calling' && phase.cancelled) this.hooks.send({ kind: 'hangup', call: start.call });
  }

  /** CALL_END {call, reason, by?}. */
  onCallEnd(call: number, reason: string, by: CallParty | undefined): void {
    const phase = this.phase;
    if (phase.name === 'idle' || phase.name === 'looking' || phase.call !== call) return; // not ours (or already over)
    const peer = phase.name === 'calling' ? phase.callee : phase.name === 'ringing-in' ? phase.caller.name : phase.peer.name;
    const since = phase.name === 'calling' ? this.clock.now() : phase.since;
    const who = by?.name ?? peer;
    const endings: Record<string, string> = {
      declined: `declined by ${who}`,
      cancelled: `cancelled by ${who}`,
      no_answer: `no answer (${Math.round((this.clock.now() - since) / 1000)} s)`,
      hangup: `hung up by ${who}`,
      peer_left: `${who} left`,
    };
    let text = `call ${call} with ${peer} ended: ${endings[reason] ?? reason}`;
    this.phase = { name: 'idle' };
    if (phase.name === 'in call') {
      this.endedAt = this.clock.now();
      text += ` (${this.hooks.ended(this.endedAt - phase.since)})`;
    }
    this.hooks.line(text);
  }

  /** We leave the server (BYE): the call ends with us, so say so, as a CALL_END would. */
  leave(): void {
    const phase = this.phase;
    if (phase.name === 'ringing-out' || phase.name === 'ringing-in' || phase.name === 'in call') {
      const peer = phase.name === 'ringing-in' ? phase.caller : phase.peer;
      this.phase = { name: 'idle' };
      const numbers = phase.name === 'in call' ? ` (${this.hooks.ended(this.clock.now() - phase.since)})` : '';
      this.hooks.line(`call ${phase.call} with ${peer.name} ended: you left${numbers}`);
    }
    this.stop();
  }

  /** No timers left behind. */
  stop(): void {
    this.clock.clearTimeout(this.retryTimer);
  }

  private lookup(name: string, forCall: boolean): void {
    this.lookups.push({ name, forCall });
    this.hooks.send({ kind: 'lookup', name });
  }
}

/** The frame for what the call's state machine asks to send. */
export function callRequestFrame(request: CallRequest): Buffer {
  switch (request.kind) {
    case 'lookup':
      return lookupFrame(request.name);
    case 'invite':
      return inviteFrame(request.to, request.relayOnly);
    case 'accept':
      return acceptFrame(request.call, request.relayOnly);
    case 'decline':
      return declineFrame(request.call);
    case 'hangup':
      return hangupFrame(request.call);
  }
}

/** "01:23" (minutes:seconds; hours add to the minutes). */
export function clockTime(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  return `${String(Math.floor(seconds / 60)).padStart(2, '0')}:${String(seconds % 60).padStart(2, '0')}`;
}
