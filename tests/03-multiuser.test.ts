// Stage 03: many users. Grades the server named by SERVER_CMD and the client named by CLIENT_CMD
// (default: the references). See 03-multiuser/README.md.
// The checks: conformance/stages.ts (the same list `npm run grade` uses).
import t from 'tap';
import { runChecksWithTap } from '../conformance/harness/checks.ts';
import { stage } from '../conformance/stages.ts';

runChecksWithTap(t, stage('03'));
