// Stage 03's news check (conformance/hostile/news-limit-check.ts) counts the news it makes at the
// fewest bytes a server can send for them: that count is only a floor if every name is valid, one
// of its own, and as long in UTF-8 as the check says.
import t from 'tap';
import { fewestNewsBytes, longNewsName } from '../conformance/hostile/news-limit-check.ts';
import { nameIsValid } from '../conformance/hostile/wire-spec.ts';

t.test('every name the check makes is a valid name of 32 characters, 96 bytes, one UTF-16 unit each', async (t) => {
  const indexes = [0, 1, 0x51ff, 0x5200, 36_744, 100_000, 0x5200 * 0x5200 - 1];
  for (const index of indexes) {
    const name = longNewsName(index);
    t.ok(nameIsValid(name), `name ${index} follows the README's name rule`);
    t.equal([...name].length, 32, `name ${index} is 32 code points`);
    t.equal(name.length, 32, `name ${index} is 32 UTF-16 units: a server counting units takes it too`);
    t.equal(Buffer.byteLength(name), 96, `name ${index} is 96 bytes in UTF-8`);
  }
});

t.test('the names of a check\'s connections are all different', async (t) => {
  const names = new Set(Array.from({ length: 40_000 }, (_, index) => longNewsName(index)));
  t.equal(names.size, 40_000, 'more connections than any check makes (about 37 000), each with a name of its own');
});

t.test('one connection\'s JOINED and LEFT take at least 239 bytes', async (t) => {
  // JOINED {"name":N} and LEFT {"name":N,"reason":"bye"}, each with its 5-byte header, N 96 bytes.
  t.equal(fewestNewsBytes(longNewsName(0)), 5 + 11 + 96 + 5 + 26 + 96);
});
