// Stage 07: text chat and file sharing in rooms. Grades the server named by SERVER_CMD and the client named by
// CLIENT_CMD (default: the references). See 07-chat-files/README.md.
// The checks: conformance/stages.ts (the same list `npm run grade` uses).
import t from 'tap';
import { runChecksWithTap } from '../conformance/harness/checks.ts';
import { stage } from '../conformance/stages.ts';

runChecksWithTap(t, stage('07'));
