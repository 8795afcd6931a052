// Stage 03: many users. Grades the server named by SERVER_CMD and the client named by CLIENT_CMD
// (default: the references). See 03-multiuser/README.md.
import t from 'tap';
import { runChecksWithTap } from '../conformance/harness/checks.ts';
import { serverChecks } from '../conformance/checks/03-multiuser.ts';
import { clientChecks } from '../conformance/checks/03-multiuser-client.ts';

runChecksWithTap(t, '03-multiuser', [...serverChecks, ...clientChecks]);
