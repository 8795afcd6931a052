// Stage 02: voice echo. Grades the server named by SERVER_CMD (default: the reference) and the
// client named by CLIENT_CMD (default: the reference). See 02-echo/README.md.
// The checks: conformance/stages.ts (the same list `npm run grade` uses).
import t from 'tap';
import { runChecksWithTap } from '../conformance/harness/checks.ts';
import { stage } from '../conformance/stages.ts';

runChecksWithTap(t, stage('02'));
