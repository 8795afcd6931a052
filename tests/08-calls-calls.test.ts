// The server's call table (08-calls/calls.ts) on a fake clock, with fake parties that record every
// frame they are sent: each ending of a call with its reason and `by`, the ring timeout, glare,
// the refusals in the README's order, late messages, the relay's rules and the guard. What goes on
// the wire is read back with the protocol's own parsers, and held to README.md's tables.
import t, { type Test } from 'tap';
import { CALL_GUARD_MS, INVITE_BURST, INVITE_REFILL_MS, LOOKUP_BURST, LOOKUP_REFILL_MS, MAX_INVITES_REFUSED, MAX_LOOKUPS_REFUSED, type UdpAddress } from '../08-calls/call-messages.ts';
import { CallTable, type CallParty, type Clock } from '../08-calls/calls.ts';
import { RequestLimit } from '../08-calls/request-limit.ts';
import { MessageType } from '../08-calls/protocol.ts';

const RING_MS = 2_000;

/** A clock that moves only when the test says so; timers fire in order of their due time. */
class FakeClock implements Clock {
  time = 0;
  private timers: { due: number; callback: () => void; id: number }[] = [];
  private nextId = 1;

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.push({ due: this.time + ms, callback, id });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((timer) => timer.id !== handle);
  }

  get pending(): number {
    return this.timers.length;
  }

  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      this.timers.sort((a, b) => a.due - b.due);
      const next = this.timers[0];
      if (next === undefined || next.due > until) break;
      this.timers.shift();
      this.time = next.due;
      next.callback();
    }
    this.time = until;
  }
}

const NAMES: Record<number, string> = {
  [MessageType.invite]: 'INVITE',
  [MessageType.ringing]: 'RINGING',
  [MessageType.callStart]: 'CALL_START',
  [MessageType.callEnd]: 'CALL_END',
  [MessageType.refused]: 'REFUSED',
};

interface Message {
  type: string;
  body: Record<string, unknown>;
}

class Party implements CallParty {
  inCall = false;
  readonly sent: Message[] = [];
  /** PRESENCE frames sent to this party's room. */
  readonly told: Record<string, unknown>[] = [];

  constructor(
    readonly id: number,
    readonly name: string,
    public address: UdpAddress | null = { address: '127.0.0.1', port: 40000 + id },
  ) {}

  sendControl(frame: Buffer): void {
    const length = frame.readUInt32BE(1);
    if (frame.length !== 5 + length) throw new Error('one frame per sendControl');
    this.sent.push({ type: NAMES[frame[0]!] ?? `0x${frame[0]!.toString(16)}`, body: JSON.parse(frame.subarray(5).toString('utf8')) });
  }

  boundAddress(): UdpAddress | null {
    return this.address;
  }

  /** Everything sent since the last take(). */
  take(): Message[] {
    return this.sent.splice(0);
  }
}

function setup(clock = new FakeClock()) {
  const users = new Map<string, Party>();
  const add = (id: number, name: string, address?: UdpAddress | null) => {
    const party = new Party(id, name, address);
    users.set(name, party);
    return party;
  };
  const table = new CallTable<Party>({
    find: (name) => users.get(name),
    ringTimeoutMs: RING_MS,
    clock,
    events: { tellRoom: (party, frame) => party.told.push(JSON.parse(frame.subarray(5).toString())) },
    log: () => {},
  });
  const limit = () => new RequestLimit('INVITE', INVITE_BURST, INVITE_REFILL_MS, MAX_INVITES_REFUSED, { now: () => clock.now() });
  const ada = add(2, 'Ada');
  const bob = add(5, 'Bob');
  const cat = add(7, 'Cat');
  const limits = new Map([ada, bob, cat].map((party) => [party, limit()]));
  const invite = (from: Party, to: string, relayOnly = false) => table.invite(from, { to, relayOnly }, limits.get(from)!);
  /** Ada calls Bob: returns the call id after checking INVITE and RINGING. */
  const ring = (t: Test): number => {
    invite(ada, 'Bob');
    const [rang] = bob.take();
    const [ringing] = ada.take();
    t.same(rang, { type: 'INVITE', body: { call: rang!.body.call, from: { id: 2, name: 'Ada' } } }, 'the callee is rung with the caller\'s id and name, and no address');
    t.same(ringing, { type: 'RINGING', body: { call: rang!.body.call, to: { id: 5, name: 'Bob' } } }, 'the caller hears RINGING with the same call id, and no address');
    return rang!.body.call as number;
  };
  return { clock, table, users, add, ada, bob, cat, invite, ring, limits };
}

const callEnd = (call: number, reason: string, by?: Party) => ({ type: 'CALL_END', body: by === undefined ? { call, reason } : { call, reason, by: { id: by.id, name: by.name } } });

t.test('accept: CALL_START to both, one fresh token, each the OTHER\'s address', async (t) => {
  const { table, ada, bob, ring } = setup();
  const call = ring(t);
  t.equal(table.isBusy(ada) && table.isBusy(bob), true, 'both are busy while it rings');
  t.equal(ada.inCall || bob.inCall, false, 'ringing is not in_call');
  table.accept(bob, call, false);
  const [toAda] = ada.take();
  const [toBob] = bob.take();
  t.equal(toAda!.type, 'CALL_START');
  t.match(toAda!.body.token, /^[0-9a-f]{16}$/);
  t.equal(toAda!.body.token, toBob!.body.token, 'the same token for both');
  t.same(toAda!.body, { call, peer: { id: 5, name: 'Bob' }, token: toAda!.body.token, peer_address: { address: '127.0.0.1', port: 40005 } }, 'Ada gets Bob\'s address');
  t.same(toBob!.body, { call, peer: { id: 2, name: 'Ada' }, token: toAda!.body.token, peer_address: { address: '127.0.0.1', port: 40002 } }, 'Bob gets Ada\'s address');
  t.equal(ada.inCall && bob.inCall, true);
  t.same(ada.told, [{ id: 2, name: 'Ada', in_call: true }], 'Ada\'s room is told once: her id, name and in_call, never the peer');
  t.same(bob.told, [{ id: 5, name: 'Bob', in_call: true }], 'Bob\'s room likewise');

  table.hangup(ada, call);
  t.same(ada.take(), [callEnd(call, 'hangup', ada)]);
  t.same(bob.take(), [callEnd(call, 'hangup', ada)]);
  t.equal(ada.inCall || bob.inCall, false);
  t.same(ada.told.at(-1), { id: 2, name: 'Ada', in_call: false }, 'and of the end');
  t.same(bob.told.at(-1), { id: 5, name: 'Bob', in_call: false });
  t.equal(table.size, 0);

  const second = ring(t);
  t.not(second, call, 'a new call id');
  table.accept(bob, second, false);
  t.not(ada.take()[0]!.body.token, toAda!.body.token, 'a new token for every call');
  bob.take();
});

t.test('relay_only in the INVITE, or in the ACCEPT, or no binding: null addresses', async (t) => {
  const { table, ada, bob, invite } = setup();
  invite(ada, 'Bob', true);
  const call = bob.take()[0]!.body.call as number;
  ada.take();
  table.accept(bob, call, false);
  t.equal(ada.take()[0]!.body.peer_address, null, 'caller asked: Ada gets null');
  t.equal(bob.take()[0]!.body.peer_address, null, 'caller asked: Bob gets null too');
  table.hangup(bob, call);
  ada.take();
  bob.take();

  invite(ada, 'Bob');
  const second = bob.take()[0]!.body.call as number;
  ada.take();
  table.accept(bob, second, true);
  t.equal(ada.take()[0]!.body.peer_address, null, 'callee asked: null for Ada');
  t.equal(bob.take()[0]!.body.peer_address, null, 'callee asked: null for Bob');
  table.hangup(ada, second);
  ada.take();
  bob.take();

  bob.address = null;
  invite(ada, 'Bob');
  const third = bob.take()[0]!.body.call as number;
  ada.take();
  table.accept(bob, third, false);
  t.equal(ada.take()[0]!.body.peer_address, null, 'Bob has no binding: Ada gets null');
  t.same(bob.take()[0]!.body.peer_address, { address: '127.0.0.1', port: 40002 }, 'Bob still gets Ada\'s');
});

t.test('every ending while it rings, with its reason and by', async (t) => {
  const { clock, table, ada, bob, ring } = setup();
  let call = ring(t);
  table.decline(bob, call);
  t.same(ada.take(), [callEnd(call, 'declined', bob)], 'DECLINE: declined by the callee');
  t.same(bob.take(), [callEnd(call, 'declined', bob)]);

  call = ring(t);
  table.hangup(bob, call);
  t.same(ada.take(), [callEnd(call, 'declined', bob)], 'the callee\'s HANGUP while it rings is a decline');
  bob.take();

  call = ring(t);
  table.hangup(ada, call);
  t.same(bob.take(), [callEnd(call, 'cancelled', ada)], 'the caller\'s HANGUP while it rings: cancelled');
  t.same(ada.take(), [callEnd(call, 'cancelled', ada)]);

  call = ring(t);
  clock.advance(RING_MS - 1);
  t.same(ada.take(), [], 'still ringing 1 ms before the timeout');
  clock.advance(1);
  t.same(ada.take(), [callEnd(call, 'no_answer')], 'no answer: no by');
  t.same(bob.take(), [callEnd(call, 'no_answer')]);
  t.equal(table.size, 0);
  t.same([ada.told, bob.told], [[], []], 'a call that never started changes no presence');

  call = ring(t);
  table.leave(ada);
  t.same(bob.take(), [callEnd(call, 'peer_left', ada)], 'the caller left while it rang');
  t.same(ada.take(), [], 'nothing to the one who left');
  t.equal(clock.pending, 0, 'the ring timer is gone with the call');
});

t.test('endings of an active call', async (t) => {
  const { table, ada, bob, ring } = setup();
  let call = ring(t);
  table.accept(bob, call, false);
  ada.take();
  bob.take();
  table.hangup(bob, call);
  t.same(ada.take(), [callEnd(call, 'hangup', bob)], 'hung up by the callee');
  t.same(bob.take(), [callEnd(call, 'hangup', bob)]);

  call = ring(t);
  table.accept(bob, call, false);
  ada.take();
  bob.take();
  table.leave(bob);
  t.same(ada.take(), [callEnd(call, 'peer_left', bob)]);
  t.same(bob.take(), []);
  t.equal(ada.inCall, false);
  t.same(ada.told.map((presence) => presence.in_call), [true, false, true, false], 'Ada\'s room hears the start and end of both calls');
  t.same(bob.told.map((presence) => presence.in_call), [true, false, true], 'nothing to the room of the one who left (LEFT says it)');
  t.equal(table.isBusy(ada), false, 'Ada can be called again');
});

t.test('late and foreign ACCEPT, DECLINE, HANGUP are ignored', async (t) => {
  const { clock, table, ada, bob, cat, ring } = setup();
  const call = ring(t);
  table.accept(ada, call, false);
  table.decline(ada, call);
  table.accept(cat, call, false);
  table.decline(cat, call);
  table.hangup(cat, call);
  table.accept(bob, call + 1, false);
  t.same([ada.take(), bob.take(), cat.take()], [[], [], []], 'the caller cannot accept or decline; strangers change nothing');
  t.equal(table.size, 1);
  clock.advance(RING_MS);
  ada.take();
  bob.take();
  table.accept(bob, call, false);
  table.decline(bob, call);
  table.hangup(ada, call);
  t.same([ada.take(), bob.take()], [[], []], 'after no_answer: a late ACCEPT, DECLINE, HANGUP get nothing');

  const second = ring(t);
  table.accept(bob, second, false);
  ada.take();
  bob.take();
  table.accept(bob, second, false);
  table.decline(bob, second);
  t.same([ada.take(), bob.take()], [[], []], 'ACCEPT or DECLINE of an active call is ignored');
  table.hangup(ada, second);
  table.hangup(bob, second);
  t.same(ada.take(), [callEnd(second, 'hangup', ada)], 'both hang up: the first ends it');
  t.same(bob.take(), [callEnd(second, 'hangup', ada)], 'the second is ignored');
});

t.test('glare: the second INVITE accepts the first call', async (t) => {
  const { invite, ada, bob, table } = setup();
  invite(ada, 'Bob');
  invite(bob, 'Ada', true);
  const toBob = bob.take();
  const toAda = ada.take();
  t.same(toBob.map((m) => m.type), ['INVITE', 'CALL_START'], 'Bob: rung, then the call starts');
  t.same(toAda.map((m) => m.type), ['RINGING', 'CALL_START'], 'Ada: ringing, then the call starts');
  t.equal(toBob[1]!.body.call, toBob[0]!.body.call, 'one call');
  t.equal(toAda[1]!.body.peer_address, null, 'Bob\'s INVITE said relay_only: taken as his ACCEPT\'s');
  t.equal(table.size, 1);
  t.equal(ada.inCall && bob.inCall, true);
});

t.test('refusals, in the README\'s order', async (t) => {
  const { table, invite, ada, bob, cat, add, ring } = setup();
  invite(ada, 'Ada');
  t.match(ada.take(), [{ type: 'REFUSED', body: { request: 'invite', code: 'calling_yourself' } }]);
  invite(ada, 'Nobody');
  t.match(ada.take(), [{ type: 'REFUSED', body: { request: 'invite', code: 'no_such_user' } }]);
  const call = ring(t);
  invite(cat, 'Bob');
  t.match(cat.take(), [{ type: 'REFUSED', body: { code: 'busy' } }], 'the callee is ringing: busy');
  invite(cat, 'Ada');
  t.match(cat.take(), [{ type: 'REFUSED', body: { code: 'busy' } }], 'the caller is ringing: busy');
  t.same([ada.take(), bob.take()], [[], []], 'the busy ones are not told');
  invite(ada, 'Cat');
  t.match(ada.take(), [{ type: 'REFUSED', body: { code: 'already_in_call' } }], 'the caller calls someone else');
  invite(bob, 'Cat');
  t.match(bob.take(), [{ type: 'REFUSED', body: { code: 'already_in_call' } }], 'the callee calls someone else');
  table.accept(bob, call, false);
  ada.take();
  bob.take();
  invite(cat, 'Bob');
  t.match(cat.take(), [{ type: 'REFUSED', body: { code: 'busy' } }], 'in a call: busy');
  invite(bob, 'Ada');
  t.match(bob.take(), [{ type: 'REFUSED', body: { code: 'already_in_call' } }], 'no glare once the call is active');
  const dan = add(9, 'Dan');
  t.same(table.found('Dan'), { name: 'Dan', online: true, state: 'available' });
  t.same(table.found('Bob'), { name: 'Bob', online: true, state: 'busy' });
  t.same(table.found('Eve'), { name: 'Eve', online: false });
  t.equal(dan.sent.length, 0);
  const busyRefusal = JSON.stringify(cat.sent);
  t.notMatch(busyRefusal, /Ada/, 'a busy refusal never says with whom');
});

t.test('the invite bucket: 5 at once, 1 per 10 s, taken before the callee is looked at; the 20th refusal in a row closes', async (t) => {
  t.same([INVITE_BURST, INVITE_REFILL_MS, MAX_INVITES_REFUSED, CALL_GUARD_MS], [5, 10_000, 20, 1_000], 'the README\'s numbers');
  const { clock, invite, ada, bob } = setup();
  for (let i = 0; i < 5; i++) invite(ada, 'Nobody');
  t.equal(ada.take().filter((m) => m.body.code === 'no_such_user').length, 5, 'refusals that reveal something cost a token');
  invite(ada, 'Bob');
  t.match(ada.take(), [{ type: 'REFUSED', body: { request: 'invite', code: 'rate_limited' } }], 'no token: Bob is not rung');
  t.same(bob.take(), []);
  clock.advance(10_000);
  invite(ada, 'Bob');
  t.equal(ada.take()[0]!.type, 'RINGING', 'one token 10 s later');
  bob.take();
  for (let i = 1; i < 20; i++) invite(ada, 'Bob');
  t.equal(ada.take().filter((m) => m.body.code === 'rate_limited').length, 19);
  t.throws(() => invite(ada, 'Bob'), { code: 'rate_limited' }, 'the 20th refusal in a row is an ERROR');
});

t.test('voice: room, peer, or nobody (the guard)', async (t) => {
  const { clock, table, ada, bob, cat, ring } = setup();
  const call = ring(t);
  t.same(table.voiceRoute(ada), { to: 'room' }, 'ringing: voice still goes to the room');
  t.equal(table.receivesRoomVoice(ada), true);
  table.accept(bob, call, false);
  t.same(table.voiceRoute(ada), { to: 'nobody' }, 'the guard right after CALL_START');
  t.same(table.voiceRoute(bob), { to: 'nobody' });
  t.equal(table.receivesRoomVoice(bob), false);
  clock.advance(999);
  t.same(table.voiceRoute(ada), { to: 'nobody' }, 'still 1 ms before the guard ends');
  clock.advance(1);
  t.same(table.voiceRoute(ada), { to: 'peer', peer: bob }, 'then to the peer only');
  t.same(table.voiceRoute(bob), { to: 'peer', peer: ada });
  t.equal(table.receivesRoomVoice(ada), false, 'no room voice to a party in a call');
  t.same(table.voiceRoute(cat), { to: 'room' }, 'others are untouched');
  t.equal(table.receivesRoomVoice(cat), true);
  table.hangup(bob, call);
  t.same(table.voiceRoute(ada), { to: 'nobody' }, 'the guard right after CALL_END');
  t.equal(table.receivesRoomVoice(ada), false, 'no room voice in the guard after CALL_END');
  clock.advance(1_000);
  t.same(table.voiceRoute(ada), { to: 'room' }, 'room voice again after the guard');
  t.equal(table.receivesRoomVoice(ada), true);
});

t.test('call ids: increasing, 1-65535, never two calls with one id', async (t) => {
  const { table, ada, bob, ring } = setup();
  const ids = new Set<number>();
  for (let i = 0; i < 3; i++) {
    const call = ring(t);
    t.ok(call >= 1 && call <= 65535);
    ids.add(call);
    table.hangup(ada, call);
    ada.take();
    bob.take();
  }
  t.equal(ids.size, 3, 'three calls, three ids');
  t.same([...ids], [...ids].sort((a, b) => a - b), 'increasing');
});

t.test('a party dropped as it is told (it stopped reading) ends the call cleanly', async (t) => {
  const { table, ada, bob, ring } = setup();
  const call = ring(t);
  // The server drops a slow reader inside sendControl, and its leave() runs at once.
  ada.sendControl = (frame: Buffer) => {
    Party.prototype.sendControl.call(ada, frame);
    table.leave(ada);
  };
  table.accept(bob, call, false);
  const toBob = bob.take();
  t.same(toBob, [callEnd(call, 'peer_left', ada)], 'Bob: CALL_END peer_left, and no CALL_START for a call that is over');
  t.equal(bob.inCall, false, 'Bob is not left in_call');
  t.same(table.voiceRoute(bob), { to: 'nobody' }, 'Bob\'s guard runs');
  t.same(bob.told, [], 'no PRESENCE true for a call that never got going');
  t.equal(table.size, 0);
  t.equal(table.isBusy(bob), false, 'Bob can be called again');
});

t.test('the look-up bucket: 10 at once, 1 a second; refusals in a row reset by one let through', async (t) => {
  t.same([LOOKUP_BURST, LOOKUP_REFILL_MS, MAX_LOOKUPS_REFUSED], [10, 1000, 20], 'the README\'s numbers');
  const clock = new FakeClock();
  const lookups = new RequestLimit('LOOKUP', LOOKUP_BURST, LOOKUP_REFILL_MS, MAX_LOOKUPS_REFUSED, { now: () => clock.now() });
  for (let i = 0; i < 10; i++) t.equal(lookups.take(), true, `look-up ${i + 1} of the burst`);
  for (let i = 1; i < 20; i++) t.equal(lookups.take(), false);
  t.match(lookups.refusal(), /at most 10 at once, then 1 every 1 s; try again in 1000 ms/);
  clock.advance(1_000);
  t.equal(lookups.take(), true, 'one a second later: the refusals in a row start again');
  for (let i = 1; i < 20; i++) t.equal(lookups.take(), false, `refusal ${i} in a row`);
  t.throws(() => lookups.take(), { code: 'rate_limited', message: /20 LOOKUP in a row/ }, 'the 20th in a row: ERROR');
});
