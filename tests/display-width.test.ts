// displayWidth / truncateToWidth: terminal columns, not characters (a status line must fit its row).
import t from 'tap';
import { codePointWidth, displayWidth, truncateToWidth } from '#shared/display-width.ts';

t.test('columns per character: narrow, wide, zero-width', async (t) => {
  const cases: [string, number, string][] = [
    ['Ada', 3, 'ASCII: one column each'],
    ['Zoë', 3, 'precomposed ë'],
    ['Zoe\u0308', 3, 'e + combining diaeresis: the mark takes no column'],
    ['日本語', 6, 'CJK ideographs: two columns each'],
    ['한국', 4, 'Hangul syllables'],
    ['カナ', 4, 'katakana'],
    ['ＡＢ', 4, 'fullwidth Latin'],
    ['🎧', 2, 'an emoji with emoji presentation'],
    ['❤', 1, 'a pictograph in text presentation'],
    ['❤\uFE0F', 2, 'the same with VS16: shown as an emoji'],
    ['👍🏽', 2, 'emoji + skin tone: one picture'],
    ['👨\u200D👩\u200D👧', 2, 'a ZWJ family: one picture'],
    ['🇫🇷', 2, 'a flag (two regional indicators)'],
    ['a\u200Bb', 2, 'a zero-width space takes no column'],
    ['\uFEFF', 0, 'a byte order mark takes no column'],
    ['', 0, 'nothing'],
  ];
  for (const [text, columns, why] of cases) t.equal(displayWidth(text), columns, `${JSON.stringify(text)}: ${why}`);
  t.equal(codePointWidth(0x4e00), 2);
  t.equal(codePointWidth(0x0301), 0);
  t.equal(codePointWidth(0x41), 1);
});

t.test('truncateToWidth leaves a text that fits alone', async (t) => {
  t.equal(truncateToWidth('users: Ada, Bob', 20), 'users: Ada, Bob');
  t.equal(truncateToWidth('日本', 4), '日本', 'exactly the width');
});

t.test('truncateToWidth cuts to the columns, never inside a character, and marks the cut', async (t) => {
  const status = 'users: 🎧Zoë, 日本語の名前, Ada* (*speaking) | you: talking, level -23 dBFS';
  for (let columns = 1; columns <= displayWidth(status); columns++) {
    const cut = truncateToWidth(status, columns);
    t.ok(displayWidth(cut) <= columns, `${columns} columns: ${JSON.stringify(cut)} fits`);
    if (columns < displayWidth(status)) {
      t.ok(cut.endsWith('…'), `${columns} columns: the cut is marked`);
      t.ok(status.startsWith(cut.slice(0, -1)), `${columns} columns: a prefix of the text, whole characters only`);
      t.ok(displayWidth(cut) >= columns - 1, `${columns} columns: at most one column left empty (before a wide character)`);
    }
  }
  t.equal(truncateToWidth('日本語', 4), '日…', 'a wide character that does not fit whole is left out');
  t.equal(truncateToWidth('👨\u200D👩\u200D👧 and more', 3), '👨\u200D👩\u200D👧…', 'a ZWJ sequence is kept or dropped whole');
  t.equal(truncateToWidth('abc', 0), '', 'no columns, no text');
});
