// Stage 08 against hostile and broken clients (conformance/hostile/hostile-checks.ts): stage 07's
// cases on the stage 08 wire, whose bad-frame cases and fuzz streams now include LOOKUP, INVITE,
// ACCEPT, DECLINE and HANGUP, and the hostile callers (conformance/hostile/call-checks.ts): calls to
// yourself, to unknown and garbage names, floods of INVITE and LOOKUP and of every call id, parties
// that vanish mid-call. The rate limits' exact answers are graded by the server checks
// (conformance/checks/08-calls.ts). Grades the server named by SERVER_CMD (default: the reference),
// with the stage's --ring-timeout 2. See 08-calls/README.md, "Timing and limits".
import t from 'tap';
import { hostileChecks } from '../conformance/hostile/hostile-checks.ts';
import { runChecksWithTap } from '../conformance/harness/checks.ts';
import { wireStage } from '../conformance/stages.ts';

const subject = wireStage('08');
runChecksWithTap(t, subject, hostileChecks(subject.wire));
