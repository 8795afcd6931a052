// Stage 08: the directory and direct calls. Grades the server named by SERVER_CMD (run with the
// stage's --ring-timeout 2) and the client named by CLIENT_CMD (default: the references). See
// 08-calls/README.md. The checks: conformance/stages.ts (the same list `npm run grade` uses).
import t from 'tap';
import { runChecksWithTap } from '../conformance/harness/checks.ts';
import { stage } from '../conformance/stages.ts';

runChecksWithTap(t, stage('08'));
