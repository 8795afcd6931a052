// The stage 03 and 04 client checks, graded on clients written in another language from the
// READMEs alone (tests/fixtures/python/stage03_client.py, stage04_client.py: Python, standard
// library only, without reading the reference code). Each must pass every client check of its
// stage against the reference server, as an instructor would grade a student's client: this proves
// the README is enough to write a passing client, and that no client check leans on what only the
// reference client happens to do.
import t from 'tap';
import { expectFullClientGrade } from './support/independent-grading.ts';

t.setTimeout(480_000); // two gradings one after the other, and any re-grading of a SKIP

for (const id of ['03', '04'] as const) {
  const file = `stage${id}_client.py`;
  t.test(`stage ${id}: the Python client written from the README passes every client check`, async (t) => {
    await expectFullClientGrade(t, id, file, 150_000);
  });
}
