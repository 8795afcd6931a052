// The rule for user names, the same in every stage:
// 1 to 32 characters (Unicode code points), no control characters, no line or paragraph
// separators, no bidirectional-override characters (they could disguise a name or garble
// another user's terminal), no lone surrogates, and no spaces at either end.

export const NAME_MAX_CHARS = 32;

/**
 * The characters a name may not hold, and that printable() escapes in anything shown to a user.
 * \p{Cc}: C0/C1 controls, including ESC (terminal escape sequences) and DEL.
 * \p{Zl}\p{Zp}: line and paragraph separators. U+202A-U+202E, U+2066-U+2069: bidi embeddings and overrides.
 * \p{Cs}: a lone surrogate, which JSON can spell ("\ud800") but which is no character and has no UTF-8 form.
 */
export const FORBIDDEN_IN_NAMES = /[\p{Cc}\p{Cs}\p{Zl}\p{Zp}\u202A-\u202E\u2066-\u2069]/u;
const EVERY_FORBIDDEN = new RegExp(FORBIDDEN_IN_NAMES.source, 'gu');

/** Returns why `name` is not acceptable, or null when it is. */
export function nameProblem(name: string): string | null {
  const length = [...name].length;
  if (length === 0) return 'the name is empty';
  if (length > NAME_MAX_CHARS) return `the name is ${length} characters long; at most ${NAME_MAX_CHARS} are allowed`;
  if (FORBIDDEN_IN_NAMES.test(name)) return 'the name contains a control or formatting character';
  if (name.trim() !== name) return 'the name starts or ends with a space';
  return null;
}

/**
 * `text` with every character FORBIDDEN_IN_NAMES shown as an escape ("\x1b[2J" becomes "\\x1b[2J"):
 * names and messages come from the other side, which must not be able to drive our terminal.
 */
export function printable(text: string): string {
  return text.replace(EVERY_FORBIDDEN, (char) => {
    const code = char.codePointAt(0)!;
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
