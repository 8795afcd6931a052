// Stage 02 against hostile and broken clients (conformance/hostile/hostile-checks.ts): bad frames, floods,
// clients that never read or never finish HELLO, too many connections, churn. Grades the server
// named by SERVER_CMD (default: the reference). See 02-echo/README.md, "Limits and errors".
import t from 'tap';
import { hostileChecks } from '../conformance/hostile/hostile-checks.ts';
import { runChecksWithTap } from '../conformance/harness/checks.ts';
import { wireStage } from '../conformance/stages.ts';

const subject = wireStage('02');
runChecksWithTap(t, subject, hostileChecks(subject.wire));
