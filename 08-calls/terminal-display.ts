// What the client shows. Two forms, chosen by where standard output goes:
//   - a terminal: event lines scroll up, and one status line at the bottom is redrawn in place
//     ("room game-42 | users: Ada, Bob*, Carol  (*speaking) | you: talking, level -23 dBFS");
//   - a file or a pipe: plain lines, one per event, stable and greppable ("joined: Carol").
// A list (the rooms) is one line in plain form ("rooms: game-42 (3), lobby (1)") and one item
// per line on a terminal, where there is room to read it.
// On a terminal the commands are typed on a prompt line below the status line ("> join game-42"),
// which readline draws and edits: every redraw writes the status line above it and then has
// readline draw the prompt again with what is typed so far and the cursor where it was, so the
// level meter never erases a half-typed command. The status line is cut to the terminal's width
// in columns (display-width.ts), so wide names (CJK, emoji) never wrap it.
// Everything printed passes through printable(): names come from the server, and a hostile
// server must not be able to send escape sequences to our terminal.
import { createInterface, type Interface } from 'node:readline';
import { format } from 'node:util';
import { truncateToWidth } from '#shared/display-width.ts';
import { printable } from '#shared/user-name.ts';

export interface ClientDisplay {
  /** One line of news (an event, a command's answer). */
  line(text: string): void;
  /** A heading and its items ("rooms", ["game-42 (3)", "lobby (1)"]); no items reads "(none)". */
  list(heading: string, items: readonly string[]): void;
  /** The user typed a line and pressed Enter (the cursor is now on the line below it). */
  commandTyped(): void;
  /** Stops redrawing and leaves the terminal clean for whatever is printed next. */
  close(): void;
}

/** Plain lines on standard output: one per event, no status line. */
export class PlainDisplay implements ClientDisplay {
  line(text: string): void {
    console.log(printable(text));
  }
  list(heading: string, items: readonly string[]): void {
    this.line(`${heading}: ${items.length === 0 ? '(none)' : items.join(', ')}`);
  }
  commandTyped(): void {}
  close(): void {}
}

/** Prints nothing: for the demo's robot users, whose news the real user's display already shows. */
export const silentDisplay: ClientDisplay = { line() {}, list() {}, commandTyped() {}, close() {} };

// ANSI sequences understood by every terminal in use today.
const CLEAR_LINE = '\r\x1b[2K';
const CURSOR_UP = '\x1b[1A';
const REDRAW_EVERY_MS = 100;

/** Event lines scrolling above a status line that is redrawn in place (and, with a prompt, the typed line below it). */
export class TerminalDisplay implements ClientDisplay {
  private shown = '';
  /** Whether the status line (and the prompt below it) is on screen, to be erased before redrawing. */
  private drawn = false;
  private readonly timer: NodeJS.Timeout;
  private readonly consoleLog = console.log;

  /**
   * @param status builds the status line; asked 10 times a second, drawn when it changed
   * @param inputEchoes true when standard input is a terminal too (it echoes what is typed)
   * @param prompt a terminal readline drawing its prompt on `out` (from createCommandInput); without
   *   it, typed text is echoed by the terminal itself on the status line's row
   */
  constructor(
    private readonly status: () => string,
    private readonly inputEchoes: boolean,
    private readonly out: NodeJS.WriteStream = process.stdout,
    private readonly prompt?: Interface,
  ) {
    // Polled, not pushed: the level changes every 20 ms, and 10 looks a second are plenty for the eye.
    this.timer = setInterval(() => this.drawStatus(), REDRAW_EVERY_MS);
    this.timer.unref();
    // Other lines printed meanwhile (the demo's in-process server logs who joins) must scroll
    // above the status line too, or they would be glued to its end.
    console.log = (...args: unknown[]) => format(...args).split('\n').forEach((text) => this.line(text));
  }

  line(text: string): void {
    this.erase();
    this.out.write(`${printable(text)}\n`);
    this.drawStatus(true);
  }

  list(heading: string, items: readonly string[]): void {
    this.line(`${heading}:${items.length === 0 ? ' (none)' : ''}`);
    for (const item of items) this.line(`  ${item}`);
  }

  commandTyped(): void {
    // Enter moved the cursor one line down, below the typed line: go back up to it (with a prompt,
    // the next redraw replaces it; without, clear it here).
    if (this.prompt) {
      if (this.drawn) this.out.write(CURSOR_UP);
    } else if (this.inputEchoes) {
      this.out.write(CURSOR_UP + CLEAR_LINE);
    }
    this.drawStatus(true);
  }

  close(): void {
    clearInterval(this.timer);
    console.log = this.consoleLog;
    this.erase();
  }

  /** Draws the status line (and the prompt with what is typed), unless it is already on screen as it is. */
  private drawStatus(always = false): void {
    // Cut to the terminal's width in columns: a status line that wraps can no longer be redrawn in place.
    const width = Math.max(10, (this.out.columns || 80) - 1);
    const text = truncateToWidth(printable(this.status()), width);
    if (text === this.shown && !always && this.drawn) return;
    this.shown = text;
    this.erase();
    if (this.prompt) {
      this.out.write(`${text}\n`);
      this.prompt.prompt(true); // the prompt, the typed text and the cursor, as they were
    } else {
      this.out.write(text);
    }
    this.drawn = true;
  }

  /** Clears the status line (and the prompt line below it) and leaves the cursor at the start of the status line. */
  private erase(): void {
    if (this.prompt && this.drawn) this.out.write(CLEAR_LINE + CURSOR_UP + CLEAR_LINE);
    else this.out.write(CLEAR_LINE);
    this.drawn = false;
  }
}

/** A terminal bell (someone calls us), on a terminal only: in a file or a pipe it would be a stray byte. */
export function ringBell(): void {
  if (process.stdout.isTTY) process.stdout.write('\x07');
}

/**
 * Where the commands are read: on a terminal, a readline that draws a "> " prompt and lets the user
 * edit the line (pass it to createDisplay so redraws keep it); elsewhere, plain lines from standard input.
 */
export function createCommandInput(): Interface {
  if (!(process.stdin.isTTY && process.stdout.isTTY)) return createInterface({ input: process.stdin });
  const input = createInterface({ input: process.stdin, output: process.stdout, terminal: true, prompt: '> ' });
  // readline takes Ctrl+C from the terminal (raw mode): pass it on as the signal the client handles.
  input.on('SIGINT', () => process.kill(process.pid, 'SIGINT'));
  return input;
}

/** The display that suits standard output: a TerminalDisplay in a terminal, plain lines elsewhere. */
export function createDisplay(status: () => string, input?: Interface): ClientDisplay {
  if (!process.stdout.isTTY) return new PlainDisplay();
  const prompt = input?.terminal ? input : undefined; // a readline from createCommandInput on a terminal
  return new TerminalDisplay(status, process.stdin.isTTY === true, process.stdout, prompt);
}
