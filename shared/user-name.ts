// The rule for user names, the same in every stage:
// 1 to 32 characters (Unicode code points), no control characters, no line or paragraph
// separators, no bidirectional-override characters (they could disguise a name or garble
// another user's terminal), and no spaces at either end.

export const NAME_MAX_CHARS = 32;

// \p{Cc}: C0/C1 controls, including ESC (terminal escape sequences) and DEL.
// \p{Zl}\p{Zp}: line and paragraph separators. U+202A-U+202E, U+2066-U+2069: bidi embeddings and overrides.
const FORBIDDEN = /[\p{Cc}\p{Zl}\p{Zp}\u202A-\u202E\u2066-\u2069]/u;

/** Returns why `name` is not acceptable, or null when it is. */
export function nameProblem(name: string): string | null {
  const length = [...name].length;
  if (length === 0) return 'the name is empty';
  if (length > NAME_MAX_CHARS) return `the name is ${length} characters long; at most ${NAME_MAX_CHARS} are allowed`;
  if (FORBIDDEN.test(name)) return 'the name contains a control or formatting character';
  if (name.trim() !== name) return 'the name starts or ends with a space';
  return null;
}
