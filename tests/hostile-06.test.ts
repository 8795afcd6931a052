// Stage 06 against hostile and broken clients (conformance/hostile/hostile-checks.ts): stage 05's TCP cases (bad frames,
// PATH among them; floods of VOICE and of JOINs; clients that never read or never finish HELLO; too many
// connections; churn) and hostile datagrams (conformance/hostile/datagram-checks.ts: spoofed tokens, another user's id,
// floods, truncated and oversized datagrams, replays). Grades the server named by SERVER_CMD (default: the
// reference). See 06-udp/README.md, "Timing and limits".
import t from 'tap';
import { hostileChecks } from '../conformance/hostile/hostile-checks.ts';
import { runChecksWithTap } from '../conformance/harness/checks.ts';
import { wireStage } from '../conformance/stages.ts';

const subject = wireStage('06');
runChecksWithTap(t, subject, hostileChecks(subject.wire));
