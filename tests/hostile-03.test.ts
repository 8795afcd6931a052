// Stage 03 against hostile and broken clients (conformance/hostile/hostile-checks.ts): bad frames, floods,
// clients that never read or never finish HELLO, too many connections, churn. Grades the server
// named by SERVER_CMD (default: the reference). See 03-multiuser/README.md, "Limits and errors".
import t from 'tap';
import { hostileChecks } from '../conformance/hostile/hostile-checks.ts';
import { runChecksWithTap } from '../conformance/harness/checks.ts';
import { wireStage } from '../conformance/stages.ts';

// More than tap's 120 s: the user limit (1000 users) and the grace after ERROR came on top of the rest;
// in 03 the thousand joins in one room alone take about 25 s on a busy machine.
t.setTimeout(300_000);

const subject = wireStage('03');
runChecksWithTap(t, subject, hostileChecks(subject.wire));
