// Stage 05: Opus voice, forwarded. Grades the server named by SERVER_CMD and the client named by
// CLIENT_CMD (default: the references). See 05-opus/README.md.
// The checks: conformance/stages.ts (the same list `npm run grade` uses).
import t from 'tap';
import { runChecksWithTap } from '../conformance/harness/checks.ts';
import { stage } from '../conformance/stages.ts';

runChecksWithTap(t, stage('05'));
