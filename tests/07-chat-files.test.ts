// Stage 07: text chat and file transfers in rooms. Grades the server named by SERVER_CMD (and the
// client named by CLIENT_CMD, once its checks are listed; default: the references). See
// 07-chat-files/README.md. The checks: conformance/stages.ts (the same list `npm run grade` uses).
import t from 'tap';
import { runChecksWithTap } from '../conformance/harness/checks.ts';
import { stage } from '../conformance/stages.ts';

runChecksWithTap(t, stage('07'));
