// Stage 04 against hostile and broken clients (conformance/hostile/hostile-checks.ts): bad frames, floods of audio and of JOINs,
// clients that never read or never finish HELLO, too many connections, churn. Grades the server
// named by SERVER_CMD (default: the reference). See 04-rooms/README.md, "Limits and errors".
import t from 'tap';
import { hostileChecks } from '../conformance/hostile/hostile-checks.ts';
import { runChecksWithTap } from '../conformance/harness/checks.ts';
import { wireStage } from '../conformance/stages.ts';

const subject = wireStage('04');
runChecksWithTap(t, subject, hostileChecks(subject.wire));
