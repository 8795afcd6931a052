// What the user types (07-chat-files/commands.ts, README "Chat lines and commands"): a line starting
// with "/" is a command, any other is a chat line sent as TEXT; the old bare words still run their
// command (with a hint once); an unknown /word and an empty line are never sent.
import { homedir } from 'node:os';
import t from 'tap';
import type { AudioPipeline } from '../07-chat-files/audio-pipeline.ts';
import { ClientState } from '../07-chat-files/client-state.ts';
import { type CommandTarget, runCommand } from '../07-chat-files/commands.ts';
import { MessageType } from '../07-chat-files/protocol.ts';

/** A command target that records what a command did: frames sent, lines shown, calls made. */
function target() {
  const frames: { type: number; json: Record<string, unknown> | null }[] = [];
  const lines: string[] = [];
  const calls: string[] = [];
  const state = new ClientState('lobby');
  state.ownId = 7;
  state.users = [{ id: 1, name: 'Bob' }, { id: 7, name: 'Ada' }];
  const audio = { muted: false, pushToTalk: false, pushToTalkOn: false } as unknown as AudioPipeline;
  const client: CommandTarget = {
    state,
    audio,
    display: { line: (text) => lines.push(text), list: (heading, items) => lines.push(`${heading}: ${items.join(', ')}`), commandTyped() {}, close() {} },
    isJoined: () => true,
    send: (frame) => {
      const payload = frame.subarray(5).toString('utf8');
      let json: Record<string, unknown> | null = null;
      try {
        json = JSON.parse(payload) as Record<string, unknown>;
      } catch {
        json = null;
      }
      frames.push({ type: frame[0]!, json });
    },
    leave: (why) => calls.push(`leave ${why}`),
    showStats: () => calls.push('stats'),
    sendFile: (path, to) => calls.push(`send ${path}${to === undefined ? '' : ` to ${to}`}`),
    showTransfers: () => calls.push('transfers'),
    cancelTransfer: (id) => calls.push(`cancel ${id ?? '(only one)'}`),
  };
  const texts = () => frames.filter((frame) => frame.type === MessageType.text).map((frame) => frame.json);
  return { client, frames, lines, calls, texts };
}

t.test('a line that does not start with "/" is a chat line, sent as TEXT as typed (a TAB becomes a space)', async (t) => {
  const { client, texts } = target();
  for (const line of ['hello room', 'join us at 8', 'exit now', 'a\tb', ' mute it ']) runCommand(line, client);
  t.same(texts(), [{ text: 'hello room' }, { text: 'join us at 8' }, { text: 'exit now' }, { text: 'a b' }, { text: ' mute it ' }]);
});

t.test('a "/" command is never sent as TEXT; an unknown /word says so and sends nothing', async (t) => {
  const { client, frames, lines, calls } = target();
  runCommand('/frobnicate now', client);
  runCommand('/users', client);
  runCommand('/stats', client);
  runCommand('/transfers', client);
  t.same(frames, [], 'nothing sent');
  t.match(lines[0], /^unknown command \/frobnicate; \/help lists them$/u);
  t.same(calls, ['stats', 'transfers']);
});

t.test('/say sends a line that starts with "/" or is an old word; /msg sends to one member by name', async (t) => {
  const { client, texts, lines } = target();
  runCommand('/say /join is a command', client);
  runCommand('/say exit', client);
  runCommand('/msg Bob see you', client);
  runCommand('/msg Nobody hi', client);
  t.same(texts(), [{ text: '/join is a command' }, { text: 'exit' }, { text: 'see you', to: 1 }]);
  t.match(lines.join('\n'), /nobody else called "Nobody"/u);
});

t.test('the old bare words still run their command, with a hint the first time only', async (t) => {
  const { client, frames, lines, calls } = target();
  runCommand('mute', client);
  runCommand('join game-42', client);
  runCommand('exit', client);
  t.equal(client.audio.muted, true);
  t.same(frames.map((frame) => [frame.type, frame.json]), [[MessageType.join, { room: 'game-42' }]], 'join ROOM sends JOIN, not TEXT');
  t.same(calls, ['leave exit']);
  t.equal(lines.filter((line) => line.includes('commands start with /')).length, 1, 'one hint');
});

t.test('lines the server would refuse, and empty lines, are not sent', async (t) => {
  const { client, frames, lines } = target();
  runCommand('', client);
  runCommand('   ', client);
  runCommand('\u001b[2J', client);
  runCommand('abc\u202Etxt', client);
  runCommand('x'.repeat(1001), client);
  t.same(frames, []);
  t.equal(lines.filter((line) => line.startsWith('not sent:')).length, 3);
});

t.test('/send, /sendto and /cancel', async (t) => {
  const { client, calls, lines } = target();
  runCommand('/send ~/my notes.txt', client);
  runCommand('/sendto Bob /tmp/x', client);
  runCommand('/cancel', client);
  runCommand('/cancel 7', client);
  runCommand('/cancel seven', client);
  runCommand('/send', client);
  t.same(calls, [`send ${homedir()}/my notes.txt`, 'send /tmp/x to 1', 'cancel (only one)', 'cancel 7']);
  t.match(lines.join('\n'), /give a transfer id/u);
  t.match(lines.join('\n'), /which file/u);
});
