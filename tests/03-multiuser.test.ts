// Stage 03: many users. Grades the server named by SERVER_CMD (default: the reference). See
// 03-multiuser/README.md.
import t from 'tap';
import { runChecksWithTap } from './support/checks.ts';
import { serverChecks } from './checks/03-multiuser.ts';

runChecksWithTap(t, '03-multiuser', serverChecks);
