// Stage 04: rooms. Grades the server named by SERVER_CMD and the client named by CLIENT_CMD
// (default: the references). See 04-rooms/README.md.
import t from 'tap';
import { runChecksWithTap } from '../conformance/harness/checks.ts';
import { serverChecks } from '../conformance/checks/04-rooms.ts';
import { clientChecks } from '../conformance/checks/04-rooms-client.ts';

runChecksWithTap(t, '04-rooms', [...serverChecks, ...clientChecks]);
