// Every gradable stage and its checks. The checks are the very arrays the tap suites run
// (tests/checks/*.ts), so a grade and `npm test` can never disagree about what a stage asks.
import type { Check } from './harness/checks.ts';
import { checks as helloWorldChecks } from './checks/01-hello-world.ts';
import { checks as echoChecks } from './checks/02-echo.ts';
import { serverChecks as multiuserServerChecks } from './checks/03-multiuser.ts';
import { clientChecks as multiuserClientChecks } from './checks/03-multiuser-client.ts';
import { serverChecks as roomsServerChecks } from './checks/04-rooms.ts';
import { clientChecks as roomsClientChecks } from './checks/04-rooms-client.ts';

export interface Stage {
  id: string;
  /** The stage's folder: its reference programs and the README that documents its protocol. */
  folder: string;
  checks: Check[];
}

export const stages: Stage[] = [
  { id: '01', folder: '01-hello-world', checks: helloWorldChecks },
  { id: '02', folder: '02-echo', checks: echoChecks },
  // In the same order as tests/03-multiuser.test.ts runs them.
  { id: '03', folder: '03-multiuser', checks: [...multiuserServerChecks, ...multiuserClientChecks] },
  { id: '04', folder: '04-rooms', checks: [...roomsServerChecks, ...roomsClientChecks] },
];

export function findStage(id: string): Stage | undefined {
  return stages.find((stage) => stage.id === id.padStart(2, '0'));
}
