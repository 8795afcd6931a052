// Stage 02: voice echo. Grades the server named by SERVER_CMD (default: the reference) and the
// client named by CLIENT_CMD (default: the reference). See 02-echo/README.md.
import t from 'tap';
import { runChecksWithTap } from '../conformance/harness/checks.ts';
import { checks } from '../conformance/checks/02-echo.ts';

runChecksWithTap(t, '02-echo', checks);
