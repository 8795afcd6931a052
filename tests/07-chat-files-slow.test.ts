// Stage 07's checks that take long on purpose (a sender that stalls for the README's 30 s; 65 535
// transfer ids, and as many session ids as at stage 05, burnt through to see them wrap, ~13 s and ~10 s here), kept out of tests/07-chat-files.test.ts
// and the default grade for their length: `npm run grade -- --stage 07 --slow` grades them. SERVER_CMD names the server under test (default: the reference).
import t from 'tap';
import { runChecksWithTap } from '../conformance/harness/checks.ts';
import { stage } from '../conformance/stages.ts';

runChecksWithTap(t, stage('07'), stage('07').slowChecks);
