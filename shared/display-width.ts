// How many terminal columns a string takes (what C's wcwidth() answers, per user-perceived
// character). A line redrawn in place must fit the terminal's width; counting characters is not
// enough: a CJK ideograph or an emoji takes two columns, a combining accent or a zero-width joiner
// none, and a family emoji made of five code points is one two-column picture.
//
// Rules, by grapheme cluster (Intl.Segmenter), after Unicode's East Asian Width (UAX #11) and
// emoji presentation (UTS #51), as terminals apply them today:
//   - an emoji shown as a picture (Emoji_Presentation, or a pictograph followed by VS16 U+FE0F,
//     flags and ZWJ sequences included): 2;
//   - East Asian Wide and Fullwidth characters (CJK, Hangul syllables, kana, fullwidth forms): 2;
//   - combining marks, variation selectors, zero-width and format characters: 0;
//   - everything else: 1.
// Control characters are the caller's business (user-name.ts's printable() escapes them first).

const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/** East Asian Wide (W) and Fullwidth (F) ranges outside the emoji blocks, from Unicode's EastAsianWidth.txt. */
const WIDE_RANGES: readonly (readonly [number, number])[] = [
  [0x1100, 0x115f], // Hangul Jamo initial consonants
  [0x2329, 0x232a], // angle brackets
  [0x2e80, 0x303e], // CJK radicals, Kangxi, ideographic description, CJK symbols and punctuation
  [0x3041, 0x33ff], // kana, Bopomofo, Hangul compatibility Jamo, Kanbun, CJK strokes, enclosed, compatibility
  [0x3400, 0x4dbf], // CJK extension A
  [0x4e00, 0x9fff], // CJK unified ideographs
  [0xa000, 0xa4cf], // Yi
  [0xa960, 0xa97f], // Hangul Jamo extended A
  [0xac00, 0xd7a3], // Hangul syllables
  [0xf900, 0xfaff], // CJK compatibility ideographs
  [0xfe10, 0xfe19], // vertical forms
  [0xfe30, 0xfe6f], // CJK compatibility forms, small form variants
  [0xff00, 0xff60], // fullwidth forms
  [0xffe0, 0xffe6], // fullwidth signs
  [0x16fe0, 0x16fe4], // ideographic symbols
  [0x17000, 0x18aff], // Tangut
  [0x1b000, 0x1b2ff], // kana supplement and extensions, Nushu
  [0x1f200, 0x1f2ff], // enclosed ideographic supplement
  [0x20000, 0x2fffd], // CJK extensions B-F, compatibility supplement
  [0x30000, 0x3fffd], // CJK extensions G-H
];

const ZERO_WIDTH = /^[\p{Mn}\p{Me}\p{Cf}\u1160-\u11ff]$/u; // marks, format characters (ZWJ, ZWSP, BOM...), medial Jamo
const EMOJI_PICTURE = /\p{Emoji_Presentation}|\p{Extended_Pictographic}\uFE0F/u;

function isWide(codePoint: number): boolean {
  for (const [first, last] of WIDE_RANGES) {
    if (codePoint < first) return false; // the ranges are sorted
    if (codePoint <= last) return true;
  }
  return false;
}

/** Columns of one code point, outside any cluster: 0, 1 or 2. */
export function codePointWidth(codePoint: number): 0 | 1 | 2 {
  const char = String.fromCodePoint(codePoint);
  if (codePoint === 0xad) return 1; // the soft hyphen is a format character that terminals show
  if (ZERO_WIDTH.test(char)) return 0;
  if (isWide(codePoint) || /^\p{Emoji_Presentation}$/u.test(char)) return 2;
  return 1;
}

/** Columns of one grapheme cluster (one user-perceived character). */
function graphemeWidth(grapheme: string): number {
  if (EMOJI_PICTURE.test(grapheme)) return 2;
  let width = 0;
  for (const char of grapheme) width += codePointWidth(char.codePointAt(0)!);
  return Math.min(width, 2);
}

/** Columns `text` takes on a terminal. */
export function displayWidth(text: string): number {
  let width = 0;
  for (const { segment } of segmenter.segment(text)) width += graphemeWidth(segment);
  return width;
}

/**
 * `text` cut to at most `columns` columns, never inside a character or a cluster; a cut text ends
 * with "…" (counted in the columns) so the reader sees that something is missing.
 */
export function truncateToWidth(text: string, columns: number): string {
  if (displayWidth(text) <= columns) return text;
  const room = columns - 1; // for the ellipsis
  let kept = '';
  let width = 0;
  for (const { segment } of segmenter.segment(text)) {
    const next = graphemeWidth(segment);
    if (width + next > room) break;
    kept += segment;
    width += next;
  }
  return columns >= 1 ? `${kept}…` : '';
}
