// Joined users for the checks of the multi-user stages (03 on), and the questions those checks
// ask about what the users were sent. Only what every framed stage shares is known here
// (HELLO 0x01, BYE 0x04, ERROR 0x05, JSON control payloads); each stage names its other types.
import type { CheckContext } from './checks.ts';
import { expect } from './checks.ts';
import { frameBytes, hexType, jsonObjectOf, readFrame } from './frame-wire.ts';
import { FramedUser, type ReceivedFrame } from './framed-user.ts';
import type { WireClient } from './wire-client.ts';

const BYE = 0x04;
const ERROR = 0x05;
const CLOSE_AFTER_ERROR_MS = 3_000;

/** Names of a stage's message types, for failure messages: {0x06: 'USERS', ...}. */
export type TypeNames = Record<number, string>;

/** The users one check joined, so they can all be cleaned up whatever happens. */
export class Party {
  private readonly users: FramedUser[] = [];
  constructor(private readonly context: CheckContext, private readonly typeNames: TypeNames) {}

  /** Joins as `name`; `fields` are added to the HELLO payload (stage 04: {"room": ...}). */
  async join(name: string, fields: Record<string, unknown> = {}): Promise<FramedUser> {
    const user = await FramedUser.join(this.context.server.host, this.context.server.port, { name, ...fields }, { typeNames: this.typeNames });
    this.users.push(user);
    return user;
  }

  /** Leaves with BYE (so the server is not left with stale users), then drops the sockets. */
  async leaveAll(): Promise<void> {
    for (const user of this.users) if (!user.isClosed) user.send(frameBytes(BYE));
    await Promise.all(this.users.map((user) => user.waitForClose(2_000, 'close after BYE').catch(() => {})));
    for (const user of this.users) user.destroy();
  }
}

/** Runs `body` with a fresh Party, and makes everyone in it leave afterwards, pass or fail. */
export async function withParty(context: CheckContext, typeNames: TypeNames, body: (party: Party) => Promise<void>): Promise<void> {
  const party = new Party(context, typeNames);
  try {
    await body(party);
  } finally {
    await party.leaveAll();
  }
}

/** A frame's JSON payload, or {} when it is not a JSON object. */
export function jsonOf(frame: ReceivedFrame): Record<string, unknown> {
  const parsed = jsonObjectOf(frame.payload);
  return 'object' in parsed ? parsed.object : {};
}

/** Matches a frame of `type` about user `name` (JOINED, LEFT ...), with `reason` if given. */
export function isEvent(type: number, name: string, reason?: string) {
  return (frame: ReceivedFrame) => {
    if (frame.type !== type) return false;
    const object = jsonOf(frame);
    return object.name === name && (reason === undefined || object.reason === reason);
  };
}

/** Requires `user` never to have been sent a frame matching `unwanted` (since `since`). */
export function expectNever(user: FramedUser, unwanted: (frame: ReceivedFrame) => boolean, summary: string, expected: string, hint: string, since = 0): void {
  const found = user.frames.slice(since).find(unwanted);
  expect(found === undefined, summary, {
    expected,
    actual: `${user.name} received: ${user.describeFrames(since)}`,
    hint,
  });
}

/** Reads ERROR with the given code, then requires the server to close the connection. */
export async function expectError(client: WireClient, code: string, hint: string, typeNames: TypeNames = {}): Promise<void> {
  const frame = await readFrame(client, `ERROR "${code}"`, { hint });
  const parsed = jsonObjectOf(frame.payload);
  const object = 'object' in parsed ? parsed.object : undefined;
  expect(frame.type === ERROR && object?.code === code && typeof object.message === 'string', `expected ERROR "${code}"`, {
    expected: `ERROR (0x05) with payload {"code": "${code}", "message": "<reason>"}`,
    actual: `${typeNames[frame.type] ?? 'unknown type'} (${hexType(frame.type)}) with payload ${JSON.stringify(frame.payload.toString('utf8').slice(0, 200))}`,
    sent: client.sent,
    received: client.received,
    hint,
  });
  await client.waitForClose(CLOSE_AFTER_ERROR_MS, 'the server to close the connection after ERROR', 'after sending ERROR, close that connection');
}
