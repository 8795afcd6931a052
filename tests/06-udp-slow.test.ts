// Stage 06's check that takes long on purpose (65 535 session ids burnt through to see them wrap,
// as at stage 05, ~10 s here), kept out of tests/06-udp.test.ts and the default grade for its
// length: `npm run grade -- --stage 06 --slow` grades it. SERVER_CMD names the server under test (default: the reference).
import t from 'tap';
import { runChecksWithTap } from '../conformance/harness/checks.ts';
import { stage } from '../conformance/stages.ts';

runChecksWithTap(t, stage('06'), stage('06').slowChecks);
