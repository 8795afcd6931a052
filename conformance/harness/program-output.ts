// How the checks read what a program printed on standard error: the lines a person would read,
// and whether a stack trace slipped out. One definition, so every check (and unit test) that asks
// "one line, no stack trace" means the same thing.

/**
 * An indented "at ..." line (Node, Java, C#, Go panics print these) or Python's traceback header.
 * An error meant for a person never starts a line that way.
 */
export const STACK_TRACE = /^[ \t]+at \S|^Traceback \(most recent call last\):/m;

export function hasStackTrace(text: string): boolean {
  return STACK_TRACE.test(text);
}

/**
 * Standard error as the lines a person reads: without blank lines and without npm's own warnings
 * ("npm warn Unknown user config ...": they come from the machine's npm configuration when a
 * program is run through `npm run`, not from the program).
 */
export function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.trim() !== '' && !/^npm warn/i.test(line));
}

/** "U+202E": how a failure names a character. */
export function codePointName(char: string): string {
  return `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * The characters of `hostile` (each one character) that appear raw in `printed` (standard output
 * and standard error), named as "U+202E": a client must print a server's strings with control
 * characters, line and paragraph separators and bidirectional controls escaped.
 */
export function rawCharacters(printed: string[], hostile: string[]): string[] {
  return hostile.filter((char) => printed.some((text) => text.includes(char))).map(codePointName);
}
