// The grader passes a correct stage 08 client it has never seen: the independent Python client
// tests/fixtures/python/stage08_client.py, written from 08-calls/README.md alone (extending
// stage07_client.py), must get every client check of stage 08 (its own and stage 06's) against the
// reference server, with nothing failed and nothing skipped (issue 20). The client encodes and
// decodes Opus with the system's libopus (tests/independent-clients-05-06.test.ts says first when
// libopus.so.0 cannot be loaded; .ci/run installs libopus0 where it is missing).
import t from 'tap';
import { expectFullClientGrade } from './support/independent-grading.ts';

t.setTimeout(960_000); // one grading, ~170 s on a busy 2-core machine, and any re-grading of a SKIP

t.test('stage 08: the independent Python client (stage08_client.py) passes every client check against the reference server', async (t) => {
  await expectFullClientGrade(t, '08', 'stage08_client.py', 300_000);
});
