// Stage 01: hello world over TCP. Grades the server named by SERVER_CMD (default: the reference)
// and the client named by CLIENT_CMD (default: the reference). See 01-hello-world/README.md.
import t from 'tap';
import { runChecksWithTap } from '../conformance/harness/checks.ts';
import { checks } from '../conformance/checks/01-hello-world.ts';

runChecksWithTap(t, '01-hello-world', checks);
