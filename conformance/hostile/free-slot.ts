// Between two checks of a one-user stage (02), the runner proves the slot free before the next
// check starts. The previous check's user may have closed its connection a moment ago; a threaded
// server may then read the next check's HELLO before that FIN and answer ERROR busy, which is a
// fair answer (the slot is, for it, still taken), so a check that expects WELCOME would fail a
// correct server by luck (2 of 80 gradings of the independent 02 server did). So the runner joins
// itself, retrying busy, then sends BYE and waits for the server's close: the slot was free, and is
// again. It judges nothing: whatever it sees, the next check runs and judges the server itself.
import { joinOnce } from './probe-user.ts';
import type { StageWire } from './wire-spec.ts';

/** How long a freed slot may take to show: the 02 checks' own allowance for "at once" is 2 s. */
const FREE_SLOT_DEADLINE_MS = 5_000;
const RETRY_MS = 50;

/** True for a stage that serves one user at a time (02: the next HELLO gets busy). */
export function servesOneUser(wire: StageWire): boolean {
  return wire.maxUsers === undefined && wire.crowdCodes.includes('busy');
}

/** Joins as the grader (retrying busy until FREE_SLOT_DEADLINE_MS), leaves with BYE and waits for the close. */
export async function waitForFreeSlot(host: string, port: number, wire: StageWire): Promise<void> {
  const deadline = performance.now() + FREE_SLOT_DEADLINE_MS;
  for (;;) {
    const result = await joinOnce(host, port, wire, 'grader', 'lobby', true);
    if (result.refusedWith !== 'busy' || performance.now() > deadline) return;
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
}
