// Stage 08's checks that take long on purpose (the README's default 30 s ring, timed on a server
// started without the grader's --ring-timeout 2; 65 535 call ids, and as many session ids as at
// stage 05, burnt through to see them wrap, ~9 s and ~10 s here; and stage 07's sender stalled (30 s) and transfer ids wrap, which 08 keeps), kept out of tests/08-calls.test.ts and the default grade for their length: `npm run grade -- --stage 08 --slow` grades them. SERVER_CMD names the server under
// test (default: the reference).
import t from 'tap';
import { runChecksWithTap } from '../conformance/harness/checks.ts';
import { stage } from '../conformance/stages.ts';

runChecksWithTap(t, stage('08'), stage('08').slowChecks);
