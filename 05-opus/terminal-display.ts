// What the client shows. Two forms, chosen by where standard output goes:
//   - a terminal: event lines scroll up, and one status line at the bottom is redrawn in place
//     ("room game-42 | users: Ada, Bob*, Carol  (*speaking) | you: talking, level -23 dBFS");
//   - a file or a pipe: plain lines, one per event, stable and greppable ("joined: Carol").
// A list (the rooms) is one line in plain form ("rooms: game-42 (3), lobby (1)") and one item
// per line on a terminal, where there is room to read it.
// Everything printed passes through printable(): names come from the server, and a hostile
// server must not be able to send escape sequences to our terminal.
import { format } from 'node:util';
import { printable } from '#shared/user-name.ts';

export interface ClientDisplay {
  /** One line of news (an event, a command's answer). */
  line(text: string): void;
  /** A heading and its items ("rooms", ["game-42 (3)", "lobby (1)"]); no items reads "(none)". */
  list(heading: string, items: readonly string[]): void;
  /** The user typed a line: the terminal echoed it under the status line. */
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

/** Event lines scrolling above a status line that is redrawn in place. */
export class TerminalDisplay implements ClientDisplay {
  private shown = '';
  private readonly timer: NodeJS.Timeout;
  private readonly consoleLog = console.log;

  /**
   * @param status builds the status line; asked 10 times a second, drawn when it changed
   * @param inputEchoes true when standard input is a terminal too (it echoes what is typed)
   */
  constructor(
    private readonly status: () => string,
    private readonly inputEchoes: boolean,
    private readonly out: NodeJS.WriteStream = process.stdout,
  ) {
    // Polled, not pushed: the level changes every 20 ms, and 10 looks a second are plenty for the eye.
    this.timer = setInterval(() => this.drawStatus(), REDRAW_EVERY_MS);
    this.timer.unref();
    // Other lines printed meanwhile (the demo's in-process server logs who joins) must scroll
    // above the status line too, or they would be glued to its end.
    console.log = (...args: unknown[]) => format(...args).split('\n').forEach((text) => this.line(text));
  }

  line(text: string): void {
    this.out.write(`${CLEAR_LINE}${printable(text)}\n`);
    this.drawStatus(true);
  }

  list(heading: string, items: readonly string[]): void {
    this.line(`${heading}:${items.length === 0 ? ' (none)' : ''}`);
    for (const item of items) this.line(`  ${item}`);
  }

  commandTyped(): void {
    // The typed text and its Enter moved the cursor one line down: go back up and clear that line.
    if (this.inputEchoes) this.out.write(CURSOR_UP + CLEAR_LINE);
    this.drawStatus(true);
  }

  close(): void {
    clearInterval(this.timer);
    console.log = this.consoleLog;
    this.out.write(CLEAR_LINE);
  }

  /** Draws the status line, unless it is already on screen as it is. */
  private drawStatus(always = false): void {
    // Cut to the terminal's width: a status line that wraps can no longer be redrawn in place.
    const width = Math.max(10, (this.out.columns || 80) - 1);
    const text = [...printable(this.status())].slice(0, width).join('');
    if (text === this.shown && !always) return;
    this.shown = text;
    this.out.write(CLEAR_LINE + text);
  }
}

/** The display that suits standard output: a TerminalDisplay in a terminal, plain lines elsewhere. */
export function createDisplay(status: () => string): ClientDisplay {
  return process.stdout.isTTY ? new TerminalDisplay(status, process.stdin.isTTY === true) : new PlainDisplay();
}
