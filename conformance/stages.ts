// THE list of stages and what each must do: the one place a stage is registered. The tap suites
// (tests/NN-*.test.ts: `runChecksWithTap(t, stage('04'))`), the grader (npm run grade), the
// hostile suites and the fuzzer all read it, so a grade and `npm test` can never disagree about
// what a stage asks. To add a stage: write conformance/checks/NN-*.ts, add one entry below, and a
// two-line tests/NN-*.test.ts (a test checks that every stage has one).
import type { Check } from './harness/checks.ts';
import { checks as helloWorldChecks } from './checks/01-hello-world.ts';
import { checks as echoChecks } from './checks/02-echo.ts';
import { serverChecks as multiuserServerChecks } from './checks/03-multiuser.ts';
import { clientChecks as multiuserStageClientChecks, multiuserClientChecks } from './checks/03-multiuser-client.ts';
import { serverChecks as roomsServerChecks } from './checks/04-rooms.ts';
import { clientChecks as roomsClientChecks, roomsMultiuserStage } from './checks/04-rooms-client.ts';
import { serverChecks as opusStageServerChecks, opusServerChecks, slowServerChecks as opusSlowServerChecks } from './checks/05-opus.ts';
import { clientChecks as opusClientChecks } from './checks/05-opus-client.ts';
import { serverChecks as udpStageServerChecks, udpServerChecks } from './checks/06-udp.ts';
import { clientChecks as udpStageClientChecks, udpClientChecks } from './checks/06-udp-client.ts';
import { chatFilesServerChecksFor, chatFilesSlowServerChecksFor, serverChecks as chatFilesServerChecks, slowServerChecks as chatFilesSlowServerChecks } from './checks/07-chat-files.ts';
import { chatFilesClientChecksFor, clientChecks as chatFilesClientChecks } from './checks/07-chat-files-client.ts';
import { serverChecks as callsServerChecks, slowServerChecks as callsSlowServerChecks } from './checks/08-calls.ts';
import { clientChecks as callsClientChecks } from './checks/08-calls-client.ts';
import { sessionIdWrapCheck } from './harness/session-id-wrap-check.ts';
import { WIRES, type StageWire } from './hostile/wire-spec.ts';

export interface Stage {
  /** Two digits: "01". */
  id: string;
  /** The stage's folder: its reference programs and the README that documents its protocol. */
  folder: string;
  /** Its protocol checks in the order they run: the server's, then the client's. */
  checks: Check[];
  /** Checks that take long on purpose (07's 30 s sender_stalled, 08's 30 s default ring, 65 535 ids burnt through to see them wrap: session ids at 05-08, 07's transfer ids, 08's call ids): graded with --slow only, and by tests/NN-*-slow.test.ts. */
  slowChecks?: Check[];
  /** What the hostile cases and the fuzzer know of its wire; absent for 01 (no framing). */
  wire?: StageWire;
  /**
   * Options the README makes part of the server's command line for grading, appended to every
   * server command the suites, the grader and the fuzzer run (withServerOptions).
   */
  serverOptions?: readonly string[];
}

/** A stage that the hostile cases and the fuzzer can attack (it has a framed wire). */
export type WireStage = Stage & { wire: StageWire };

export const stages: readonly Stage[] = [
  { id: '01', folder: '01-hello-world', checks: helloWorldChecks },
  { id: '02', folder: '02-echo', checks: echoChecks, wire: WIRES['02'] },
  { id: '03', folder: '03-multiuser', checks: [...multiuserServerChecks, ...multiuserStageClientChecks], wire: WIRES['03'] },
  // 04's README: "Stage 03's client requirements hold". So stage 03's client checks run in its grade
  // too, under the same names, with 04's WELCOME and USERS (both carry "room"); 04 has its own
  // --output recording check.
  { id: '04', folder: '04-rooms', checks: [...roomsServerChecks, ...roomsClientChecks, ...multiuserClientChecks(roomsMultiuserStage)], wire: WIRES['04'] },
  { id: '05', folder: '05-opus', checks: [...opusStageServerChecks, ...opusClientChecks], slowChecks: opusSlowServerChecks, wire: WIRES['05'] },
  // 06 keeps stage 05's TCP voice for a user who never says PATH udp (06's README), so 05's voice
  // checks, whose users all speak TCP, run on its wire too, under the same names. 06-08 keep stage
  // 05's session ids (their WELCOME's "id"), so 05's --slow check that they wrap runs there too.
  { id: '06', folder: '06-udp', checks: [...udpStageServerChecks, ...opusServerChecks(WIRES['06']), ...udpStageClientChecks], slowChecks: [sessionIdWrapCheck(WIRES['06'])], wire: WIRES['06'] },
  // 07 and 08 keep stage 06's voice (their READMEs: "Voice is stage 06's, unchanged"; 08 outside
  // calls), so 06's voice checks run on their wire too, under the same names: the server's, 05's TCP
  // voice checks that 06 runs (SPEAKING, the rate limit, the flood window...), and the client's
  // path and playback (HELLO's name carries the stage's protocol; 08's USERS has in_call).
  { id: '07', folder: '07-chat-files', checks: [...chatFilesServerChecks, ...udpServerChecks(WIRES['07']), ...opusServerChecks(WIRES['07']), ...chatFilesClientChecks, ...udpClientChecks({ protocol: 'voice-chat/07' })], slowChecks: [...chatFilesSlowServerChecks, sessionIdWrapCheck(WIRES['07'])], wire: WIRES['07'] },
  // The README: "the grader runs the server with --ring-timeout 2" (30 s of ringing is too long to wait for).
  // 08 keeps stage 07's text and files ("everything there holds"; "Stage 07's client and command
  // line, plus"), so 07's chat and file checks, server and client, run on its wire too, under the
  // same names (the server's --slow ones too; 08's own checks hold the move bucket).
  { id: '08', folder: '08-calls', checks: [...callsServerChecks, ...chatFilesServerChecksFor(WIRES['08']), ...udpServerChecks(WIRES['08']), ...opusServerChecks(WIRES['08']), ...callsClientChecks, ...chatFilesClientChecksFor({ protocol: 'voice-chat/08', userFields: { in_call: false } }), ...udpClientChecks({ protocol: 'voice-chat/08', userFields: { in_call: false } })], slowChecks: [...callsSlowServerChecks, ...chatFilesSlowServerChecksFor(WIRES['08']), sessionIdWrapCheck(WIRES['08'])], wire: WIRES['08'], serverOptions: ['--ring-timeout', '2'] },
];

export const wireStages: readonly WireStage[] = stages.filter((entry): entry is WireStage => entry.wire !== undefined);

/** The stage with this id ("4" or "04"), or undefined. */
export function findStage(id: string): Stage | undefined {
  return stages.find((entry) => entry.id === id.padStart(2, '0'));
}

/** The stage with this id; throws if there is none (for suites, where a typo is a bug). */
export function stage(id: string): Stage {
  const found = findStage(id);
  if (found === undefined) throw new Error(`no stage ${id} in conformance/stages.ts; known: ${stages.map((entry) => entry.id).join(', ')}`);
  return found;
}

/** The stage with this id, which must have a framed wire (02 on). */
export function wireStage(id: string): WireStage {
  const found = stage(id);
  if (found.wire === undefined) throw new Error(`stage ${id} has no framed wire for the hostile cases`);
  return found as WireStage;
}
