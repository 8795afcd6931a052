// Stage 06: voice over UDP, control over TCP. Grades the server named by SERVER_CMD and the client named by
// CLIENT_CMD (default: the references). See 06-udp/README.md.
// The checks: conformance/stages.ts (the same list `npm run grade` uses).
import t from 'tap';
import { runChecksWithTap } from '../conformance/harness/checks.ts';
import { stage } from '../conformance/stages.ts';

runChecksWithTap(t, stage('06'));
