// Stage 07 against hostile and broken clients (conformance/hostile/hostile-checks.ts): stage 06's
// cases (bad frames, floods of VOICE and of JOINs, clients that never read or never finish HELLO,
// too many connections, churn, hostile datagrams) on the stage 07 wire, whose bad-frame cases now
// include TEXT, OFFER, CHUNK, ACK and CANCEL. Lying senders, never-readers and misordered chunks
// are graded by the server checks (conformance/checks/07-chat-files.ts). Grades the server named
// by SERVER_CMD (default: the reference). See 07-chat-files/README.md, "Timing and limits".
import t from 'tap';
import { hostileChecks } from '../conformance/hostile/hostile-checks.ts';
import { runChecksWithTap } from '../conformance/harness/checks.ts';
import { wireStage } from '../conformance/stages.ts';

const subject = wireStage('07');
runChecksWithTap(t, subject, hostileChecks(subject.wire));
