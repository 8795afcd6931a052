// The stage 08 client's call state machine (08-calls/call-state.ts, README "The call on the
// client"): what it asks to send and what it prints for each path through idle, looking, calling,
// ringing-out, ringing-in and in call, with the races the README names (glare, INVITE while
// busy, hang-up before RINGING), on a manual clock.
import t from 'tap';
import type { CallStart } from '../08-calls/call-messages.ts';
import { type CallRequest, CallState, type CallStateOptions } from '../08-calls/call-state.ts';
import { ManualScheduler } from './support/manual-scheduler.ts';

const ada = { id: 2, name: 'Ada' };
const bob = { id: 5, name: 'Bob' };
const start = (call: number, peer = bob): CallStart => ({ call, peer, token: Buffer.from('7e21c4095b3af0d2', 'hex'), peerAddress: { address: '198.51.100.4', port: 40001 } });

function machine(options: CallStateOptions = {}) {
  const clock = new ManualScheduler();
  const sent: CallRequest[] = [];
  const lines: string[] = [];
  const events: string[] = [];
  const calls = new CallState(
    {
      send: (request) => sent.push(request),
      line: (text) => lines.push(text),
      ring: () => events.push('ring'),
      started: (s) => events.push(`started ${s.call} with ${s.peer.name}`),
      ended: (durationMs) => {
        events.push(`ended after ${durationMs} ms`);
        return '00:05, direct, sent 250 voice packets, heard 248, 2 concealed';
      },
    },
    clock,
    options,
  );
  return { clock, calls, sent, lines, events };
}

t.test('/call NAME: LOOKUP, then INVITE when FOUND says available; RINGING rings; CALL_START starts; HANGUP; CALL_END ends', async (t) => {
  const { clock, calls, sent, lines, events } = machine();
  calls.call('Bob');
  t.same(sent, [{ kind: 'lookup', name: 'Bob' }]);
  t.equal(calls.phase.name, 'looking');
  calls.onFound('Bob', true, 'available');
  t.same(sent.at(-1), { kind: 'invite', to: 'Bob', relayOnly: false });
  calls.onRinging(7, bob);
  t.same(lines, ['calling Bob (call 7): ringing']);
  clock.advance(12_400);
  t.equal(calls.status('connecting'), '☎ ringing Bob 12s');
  calls.onCallStart(start(7));
  t.same(events, ['started 7 with Bob']);
  t.equal(calls.status('connecting'), '☎ Bob connecting');
  t.notOk(calls.roomVoiceAllowed, 'no room voice in a call');
  clock.advance(83_000);
  t.equal(calls.status('direct'), '☎ Bob direct 01:23');
  calls.hangup();
  t.same(sent.at(-1), { kind: 'hangup', call: 7 });
  calls.onCallEnd(7, 'hangup', ada);
  t.equal(lines.at(-1), 'call 7 with Bob ended: hung up by Ada (00:05, direct, sent 250 voice packets, heard 248, 2 concealed)');
  t.equal(events.at(-1), 'ended after 83000 ms', 'the media stops, told how long the call lasted');
  t.equal(calls.phase.name, 'idle');
  t.equal(calls.status(''), '');
  t.notOk(calls.roomVoiceAllowed, 'the guard second after CALL_END');
  clock.advance(999);
  t.notOk(calls.roomVoiceAllowed);
  clock.advance(1);
  t.ok(calls.roomVoiceAllowed, 'room voice again 1 s after CALL_END');
});

t.test('FOUND busy or offline, and each REFUSED of the INVITE: "not called: ..." and idle again', async (t) => {
  const cases: [string, (c: CallState) => void, string][] = [
    ['busy (FOUND)', (c) => c.onFound('Bob', true, 'busy'), 'not called: Bob is busy'],
    ['offline (FOUND)', (c) => c.onFound('Bob', false, undefined), 'not called: nobody named Bob is online'],
    ['busy', (c) => (c.onFound('Bob', true, 'available'), c.onInviteRefused('busy', 'Bob is busy')), 'not called: Bob is busy'],
    ['no_such_user', (c) => (c.onFound('Bob', true, 'available'), c.onInviteRefused('no_such_user', 'x')), 'not called: nobody named Bob is online'],
    ['calling_yourself', (c) => (c.onFound('Bob', true, 'available'), c.onInviteRefused('calling_yourself', 'x')), 'not called: you cannot call yourself'],
    ['already_in_call', (c) => (c.onFound('Bob', true, 'available'), c.onInviteRefused('already_in_call', 'x')), 'not called: you are already in a call'],
    ['rate_limited', (c) => (c.onFound('Bob', true, 'available'), c.onInviteRefused('rate_limited', 'too many invites')), 'not called: too many invites (rate_limited)'],
  ];
  for (const [name, answer, line] of cases) {
    const { calls, lines } = machine();
    calls.call('Bob');
    answer(calls);
    t.same(lines, [line], name);
    t.equal(calls.phase.name, 'idle', name);
  }
});

t.test('--call NAME looks NAME up once a second while offline, up to 10 s, then gives up', async (t) => {
  const { clock, calls, sent, lines } = machine();
  calls.call('Bob', 10_000);
  for (let i = 0; i < 30; i++) {
    if (sent.length > i) calls.onFound('Bob', false, undefined);
    clock.advance(1000);
  }
  t.equal(sent.length, 11, 'at t = 0, 1, ... 10 s');
  t.ok(sent.every((request) => request.kind === 'lookup'));
  t.same(lines, ['not called: nobody named Bob is online']);
});

t.test('--call NAME calls as soon as NAME comes online', async (t) => {
  const { clock, calls, sent } = machine();
  calls.call('Bob', 10_000);
  calls.onFound('Bob', false, undefined);
  clock.advance(1000);
  calls.onFound('Bob', true, 'available');
  t.same(sent, [{ kind: 'lookup', name: 'Bob' }, { kind: 'lookup', name: 'Bob' }, { kind: 'invite', to: 'Bob', relayOnly: false }]);
});

t.test('/who NAME prints the answer and never calls; answers are matched to questions in order', async (t) => {
  const { calls, sent, lines } = machine();
  calls.who('Bob');
  calls.call('Cat');
  calls.who('Dan');
  calls.onFound('Bob', true, 'busy');
  calls.onFound('Cat', true, 'available');
  calls.onFound('Dan', false, undefined);
  t.same(lines, ['Bob is online (busy)', 'nobody named Dan is online']);
  t.same(sent.map((r) => r.kind), ['lookup', 'lookup', 'lookup', 'invite']);
  calls.who('Eve');
  calls.onFound('Eve', true, 'available');
  t.equal(lines.at(-1), 'Eve is online (available)');
});

t.test('an INVITE rings (line and bell); /accept sends ACCEPT; CALL_START starts the call', async (t) => {
  const { calls, sent, lines, events } = machine();
  calls.onInvite(7, ada);
  t.same(lines, ['Ada is calling you (call 7): /accept or /decline']);
  t.same(events, ['ring']);
  t.equal(calls.status(''), '☎ Ada calling (/accept /decline)');
  calls.accept();
  t.same(sent, [{ kind: 'accept', call: 7, relayOnly: false }]);
  calls.onCallStart(start(7, ada));
  t.equal(calls.phase.name, 'in call');
});

t.test('--auto-accept accepts at once; --relay puts relay_only in every INVITE and ACCEPT', async (t) => {
  const { calls, sent } = machine({ autoAccept: true, relayOnly: true });
  calls.onInvite(7, ada);
  t.same(sent, [{ kind: 'accept', call: 7, relayOnly: true }]);
  calls.onCallStart(start(7, ada));
  calls.onCallEnd(7, 'hangup', ada);
  calls.call('Bob');
  calls.onFound('Bob', true, 'available');
  t.same(sent.at(-1), { kind: 'invite', to: 'Bob', relayOnly: true });
});

t.test('each ending prints its line, on both sides', async (t) => {
  const caller = (reason: string, by?: typeof bob) => {
    const m = machine();
    m.calls.call('Bob');
    m.calls.onFound('Bob', true, 'available');
    m.calls.onRinging(7, bob);
    m.clock.advance(5000);
    m.calls.onCallEnd(7, reason, by);
    return m;
  };
  t.equal(caller('declined', bob).lines.at(-1), 'call 7 with Bob ended: declined by Bob');
  t.equal(caller('no_answer').lines.at(-1), 'call 7 with Bob ended: no answer (5 s)');
  t.equal(caller('cancelled', ada).lines.at(-1), 'call 7 with Bob ended: cancelled by Ada');
  t.equal(caller('peer_left', bob).lines.at(-1), 'call 7 with Bob ended: Bob left');
  const callee = machine();
  callee.calls.onInvite(7, ada);
  callee.calls.decline();
  t.same(callee.sent, [{ kind: 'decline', call: 7 }]);
  callee.calls.onCallEnd(7, 'declined', bob);
  t.equal(callee.lines.at(-1), 'call 7 with Ada ended: declined by Bob');
  t.equal(callee.calls.phase.name, 'idle');
  t.same(callee.events, ['ring'], 'a call that never started does not "end" the media');
});

t.test('glare: calling Bob, an INVITE from Bob does not ring; the CALL_START that follows starts the call', async (t) => {
  const { calls, sent, lines, events } = machine();
  calls.call('Bob');
  calls.onFound('Bob', true, 'available');
  calls.onInvite(9, bob);
  t.same(events, [], 'no ring');
  t.same(lines, []);
  t.same(sent.map((r) => r.kind), ['lookup', 'invite'], 'no DECLINE, no ACCEPT: the server already took our INVITE as one');
  calls.onCallStart(start(9));
  t.same(events, ['started 9 with Bob']);
});

t.test('an INVITE while not idle is declined (a server that does not apply busy)', async (t) => {
  const { calls, sent, events } = machine();
  calls.onInvite(7, ada);
  calls.accept();
  calls.onCallStart(start(7, ada));
  calls.onInvite(8, { id: 9, name: 'Cat' });
  t.same(sent.at(-1), { kind: 'decline', call: 8 });
  t.equal(calls.activeCall?.call, 7, 'the call goes on');
  t.same(events, ['ring', 'started 7 with Ada']);
});

t.test('/hangup before RINGING cancels as soon as the call has an id; /hangup while looking stops the look-up', async (t) => {
  const { calls, sent, lines } = machine();
  calls.call('Bob');
  calls.onFound('Bob', true, 'available');
  calls.hangup();
  t.same(sent.map((r) => r.kind), ['lookup', 'invite']);
  calls.onRinging(7, bob);
  t.same(sent.at(-1), { kind: 'hangup', call: 7 });
  calls.onCallEnd(7, 'cancelled', ada);
  t.equal(lines.at(-1), 'call 7 with Bob ended: cancelled by Ada');
  const looking = machine();
  looking.calls.call('Bob');
  looking.calls.hangup();
  looking.calls.onFound('Bob', true, 'available');
  t.same(looking.sent.map((r) => r.kind), ['lookup'], 'no INVITE after the cancel');
  t.equal(looking.calls.phase.name, 'idle');
});

t.test('late and foreign messages are ignored; a CALL_START we never asked for is hung up', async (t) => {
  const { calls, sent, lines, events } = machine();
  calls.onCallEnd(3, 'hangup', bob);
  calls.onRinging(3, bob);
  calls.accept();
  calls.decline();
  calls.hangup();
  t.same(lines, ['no call to accept', 'no call to decline', 'no call to hang up']);
  calls.onCallStart(start(4));
  t.same(sent, [{ kind: 'hangup', call: 4 }]);
  t.same(events, []);
  t.equal(calls.phase.name, 'idle');
  calls.call('Bob');
  calls.onFound('Bob', true, 'available');
  calls.onRinging(7, bob);
  calls.onCallEnd(6, 'hangup', bob);
  t.equal(calls.phase.name, 'ringing-out', 'the CALL_END of another call ends nothing');
});

t.test('leaving the server during a call (or while it rings) says the call ended with us; the partner is known meanwhile', async (t) => {
  const { clock, calls, lines, events } = machine();
  t.equal(calls.partner, null);
  calls.onInvite(7, ada);
  t.same(calls.partner, ada, 'ringing: the caller');
  calls.accept();
  calls.onCallStart(start(7, ada));
  clock.advance(2000);
  calls.leave();
  t.equal(lines.at(-1), 'call 7 with Ada ended: you left (00:05, direct, sent 250 voice packets, heard 248, 2 concealed)');
  t.same(events.at(-1), 'ended after 2000 ms', 'the media stops');
  t.equal(calls.partner, null);
  const ringing = machine();
  ringing.calls.call('Bob');
  ringing.calls.onFound('Bob', true, 'available');
  ringing.calls.onRinging(3, bob);
  ringing.calls.leave();
  t.equal(ringing.lines.at(-1), 'call 3 with Bob ended: you left');
  const idle = machine();
  idle.calls.leave();
  t.same(idle.lines, [], 'nothing to say when idle');
});
