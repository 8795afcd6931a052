// The stage 08 client's call commands (08-calls/commands.ts with call-state.ts, README "The
// client"): /who, /call, /accept, /decline and /hangup send the README's frames (read back here
// by type byte and JSON), a name that breaks the name rule is refused without a frame, and the
// stage 07 commands and chat lines still work as before.
import t from 'tap';
import type { AudioPipeline } from '../08-calls/audio-pipeline.ts';
import { CallState, type CallStateOptions, callRequestFrame } from '../08-calls/call-state.ts';
import { ClientState } from '../08-calls/client-state.ts';
import { type CommandTarget, commandsHint, runCommand } from '../08-calls/commands.ts';
import { ManualScheduler } from './support/manual-scheduler.ts';

/** README: LOOKUP 0x19, INVITE 0x1B, ACCEPT 0x1D, DECLINE 0x1E, HANGUP 0x1F, TEXT 0x0F. */
const LOOKUP = 0x19;
const INVITE = 0x1b;
const ACCEPT = 0x1d;
const DECLINE = 0x1e;
const HANGUP = 0x1f;
const TEXT = 0x0f;

function target(options: CallStateOptions = {}, joined = true) {
  const frames: { type: number; json: unknown }[] = [];
  const lines: string[] = [];
  const record = (frame: Buffer) => {
    t.equal(frame.readUInt32BE(1), frame.length - 5, 'the frame\'s length field is its payload\'s');
    frames.push({ type: frame[0]!, json: JSON.parse(frame.subarray(5).toString('utf8')) });
  };
  const display = { line: (text: string) => lines.push(text), list: (heading: string, items: readonly string[]) => lines.push(`${heading}: ${items.join(', ')}`), commandTyped() {}, close() {} };
  const calls = new CallState(
    { send: (request) => record(callRequestFrame(request)), line: display.line, ring() {}, started() {}, ended: () => '' },
    new ManualScheduler(),
    options,
  );
  const state = new ClientState('lobby');
  state.ownId = 7;
  const client: CommandTarget = {
    state,
    audio: { muted: false, pushToTalk: false, pushToTalkOn: false } as unknown as AudioPipeline,
    calls,
    display,
    isJoined: () => joined,
    send: record,
    leave() {},
    showStats() {},
    sendFile() {},
    showTransfers() {},
    cancelTransfer() {},
  };
  return { client, calls, frames, lines };
}

t.test('/call NAME sends LOOKUP {"name"}, and INVITE {"to"} once FOUND says available', async (t) => {
  const { client, calls, frames } = target();
  runCommand('/call Bob', client);
  t.same(frames, [{ type: LOOKUP, json: { name: 'Bob' } }]);
  calls.onFound('Bob', true, 'available');
  t.same(frames.at(-1), { type: INVITE, json: { to: 'Bob' } }, 'no relay_only without --relay');
});

t.test('/who NAME sends LOOKUP only, and prints the answer', async (t) => {
  const { client, calls, frames, lines } = target();
  runCommand('/who Bob Smith', client);
  t.same(frames, [{ type: LOOKUP, json: { name: 'Bob Smith' } }], 'the rest of the line is the name (names may hold spaces)');
  calls.onFound('Bob Smith', true, 'available');
  t.same(frames.length, 1);
  t.same(lines, ['Bob Smith is online (available)']);
});

t.test('/accept, /decline and /hangup send the call\'s id; --relay adds relay_only to INVITE and ACCEPT', async (t) => {
  const relay = target({ relayOnly: true });
  relay.calls.onInvite(7, { id: 2, name: 'Ada' });
  runCommand('/accept', relay.client);
  t.same(relay.frames, [{ type: ACCEPT, json: { call: 7, relay_only: true } }]);
  relay.calls.onCallStart({ call: 7, peer: { id: 2, name: 'Ada' }, token: Buffer.alloc(8, 1), peerAddress: null });
  runCommand('/hangup', relay.client);
  t.same(relay.frames.at(-1), { type: HANGUP, json: { call: 7 } });
  relay.calls.onCallEnd(7, 'hangup', { id: 5, name: 'Bob' });
  runCommand('/call Cat', relay.client);
  relay.calls.onFound('Cat', true, 'available');
  t.same(relay.frames.at(-1), { type: INVITE, json: { to: 'Cat', relay_only: true } });

  const plain = target();
  plain.calls.onInvite(9, { id: 2, name: 'Ada' });
  runCommand('/decline', plain.client);
  t.same(plain.frames, [{ type: DECLINE, json: { call: 9 } }]);
});

t.test('a name that breaks the name rule, no name, or not yet joined: nothing sent, and the user is told why', async (t) => {
  const { client, frames, lines } = target();
  runCommand('/call', client);
  runCommand('/who   ', client);
  runCommand(`/call ${'x'.repeat(33)}`, client);
  runCommand('/call Bob\u001b[2J', client);
  t.same(frames, []);
  t.equal(lines.length, 4);
  t.match(lines[0], /^\/call NAME: whom\?/u);
  t.match(lines[2], /^not called: .* at most 32/u);
  const early = target({}, false);
  runCommand('/call Bob', early.client);
  t.same(early.frames, []);
  t.match(early.lines[0], /wait for the server/u);
});

t.test('/accept, /decline, /hangup with no call say so and send nothing', async (t) => {
  const { client, frames, lines } = target();
  runCommand('/accept', client);
  runCommand('/DECLINE', client);
  runCommand('/hangup', client);
  t.same(frames, []);
  t.same(lines, ['no call to accept', 'no call to decline', 'no call to hang up']);
});

t.test('chat lines are still TEXT, and the help names the call commands', async (t) => {
  const { client, frames } = target();
  runCommand('call me later', client);
  t.same(frames, [{ type: TEXT, json: { text: 'call me later' } }], 'a line without "/" is never a command');
  t.match(commandsHint(false), /\/call NAME, \/accept, \/decline, \/hangup, \/who NAME/u);
});
