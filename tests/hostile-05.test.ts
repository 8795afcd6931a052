// Stage 05 against hostile and broken clients (conformance/hostile/hostile-checks.ts): bad frames, floods of VOICE and of JOINs,
// clients that never read or never finish HELLO, too many connections, churn. Grades the server
// named by SERVER_CMD (default: the reference). See 05-opus/README.md, "Limits".
import t from 'tap';
import { hostileChecks } from '../conformance/hostile/hostile-checks.ts';
import { runChecksWithTap } from '../conformance/harness/checks.ts';
import { wireStage } from '../conformance/stages.ts';

const subject = wireStage('05');
runChecksWithTap(t, subject, hostileChecks(subject.wire));
