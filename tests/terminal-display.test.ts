// The terminal display of stages 03-05: the status line is redrawn without erasing what the user
// is typing, and cut to the terminal's width in columns. A real readline on stand-in TTY streams.
import t from 'tap';
import { createInterface } from 'node:readline';
import { PassThrough } from 'node:stream';
import { displayWidth } from '#shared/display-width.ts';
import { TerminalDisplay } from '../04-rooms/terminal-display.ts';

// eslint-disable-next-line no-control-regex
const ESCAPES = /\x1b\[[0-9;]*[A-Za-z]|\r/g;

function terminal(columns: number) {
  const input = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => {} });
  const out = Object.assign(new PassThrough(), { isTTY: true, columns });
  let written = '';
  out.on('data', (chunk: Buffer) => (written += chunk.toString()));
  const prompt = createInterface({ input, output: out as unknown as NodeJS.WriteStream, terminal: true, prompt: '> ' });
  return { input, out: out as unknown as NodeJS.WriteStream, prompt, written: () => written };
}

t.test('an event line and a redraw keep the half-typed command and its prompt', async (t) => {
  const { input, out, prompt, written } = terminal(40);
  const display = new TerminalDisplay(() => 'users: Ada, Bob', true, out, prompt);
  t.teardown(() => (display.close(), prompt.close()));
  input.write('join ga');
  await new Promise((resolve) => setImmediate(resolve));
  const before = written().length;
  display.line('joined: Carol');
  const after = written().slice(before);
  t.equal(prompt.line, 'join ga', 'readline still holds what was typed');
  const lines = after.split('\n').map((line) => line.replace(ESCAPES, ''));
  t.same(lines.slice(0, 2), ['joined: Carol', 'users: Ada, Bob'], 'the event, then the status line below it');
  t.match(lines.at(-1), /^> join ga$/, 'then the prompt with the typed text, drawn again');
});

t.test('a status line of wide names is cut to the terminal width in columns', async (t) => {
  const { out, prompt, written } = terminal(30);
  const display = new TerminalDisplay(() => `users: ${'日本語🎧'.repeat(10)} | you: talking`, true, out, prompt);
  t.teardown(() => (display.close(), prompt.close()));
  display.line('connected');
  const status = written().split('\n').map((line) => line.replace(ESCAPES, ''))[1]!;
  t.ok(status.startsWith('users: 日本語🎧'), `the status line: ${status}`);
  t.ok(displayWidth(status) <= 29, `${displayWidth(status)} columns: fits a 30-column terminal without wrapping`);
  t.ok(status.endsWith('…'), 'the cut is marked');
});
