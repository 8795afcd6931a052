// A client under test in conversation with a fake server: the check plays the server's part with
// raw frames, reads what the client sends, types commands, and expects a clean leave.
import { CheckFailure } from './check-failure.ts';
import type { CheckContext } from './checks.ts';
import { expect } from './checks.ts';
import { FakeServer } from './fake-server.ts';
import { framesIn, hexType, jsonObjectOf, readFrame, type WireFrame } from './frame-wire.ts';
import type { CommandResult } from './run-command.ts';
import { describeRun, RunningClient } from './running-client.ts';
import type { WireClient } from './wire-client.ts';

const HELLO = 0x01;
const BYE = 0x04;
/** How long a client may take to exit after its BYE. */
export const EXIT_DEADLINE_MS = 5_000;

export interface Session {
  fake: FakeServer;
  client: RunningClient;
  /** The fake server's side of the connection. */
  connection: WireClient;
  /** The client's HELLO payload, parsed. */
  hello: Record<string, unknown>;
  /** Every frame the client has sent so far, HELLO included. */
  sent(): WireFrame[];
}

/** "HELLO (0x01), AUDIO (0x03) x 12, BYE (0x04)": frames run-length encoded, for failure reports. */
export function describeFrames(frames: WireFrame[], typeNames: Record<number, string>): string {
  const name = (type: number) => `${typeNames[type] ?? 'type'} (${hexType(type)})`;
  const parts: string[] = [];
  for (let i = 0; i < frames.length; ) {
    let j = i;
    while (j < frames.length && frames[j]!.type === frames[i]!.type) j++;
    parts.push(j - i > 1 ? `${name(frames[i]!.type)} x ${j - i}` : name(frames[i]!.type));
    i = j;
  }
  return parts.join(', ') || '(nothing)';
}

/**
 * Runs the client under test as `name` with `args` against a fake server. The client's first
 * frame must be a HELLO holding a JSON object; the fake server answers it with `answer(hello)`
 * (WELCOME, USERS ... as the stage's real server would).
 */
export async function startSession(
  context: CheckContext,
  name: string,
  args: string[],
  answer: (hello: Record<string, unknown>) => Buffer,
  timeoutMs = 30_000,
): Promise<Session> {
  const fake = await FakeServer.start();
  const client = new RunningClient(context.clientCommand, ['--name', name, '--host', '127.0.0.1', '--port', String(fake.port), ...args], timeoutMs);
  try {
    // A client that exits first (an option it does not know, say) fails with what it printed, at once.
    const exitedFirst = client.done.then((result) => {
      throw new CheckFailure('the client exited before connecting', {
        expected: `the client connects to 127.0.0.1:${fake.port} and sends HELLO`,
        actual: describeRun(result),
        hint: 'does it accept every option of the stage\'s command line? the check ran it with: ' + args.join(' '),
      });
    });
    const connection = await Promise.race([fake.connection(0, 15_000), exitedFirst]);
    const frame = await readFrame(connection, 'the client\'s first frame (HELLO)', { timeoutMs: 10_000 });
    const parsed = jsonObjectOf(frame.payload);
    expect(frame.type === HELLO && 'object' in parsed, 'the client did not start with a HELLO holding a JSON object', {
      expected: `a HELLO frame (0x01) whose payload is a JSON object with "name": ${JSON.stringify(name)}`,
      actual: frame.type === HELLO ? (parsed as { problem: string }).problem : `a frame of type ${hexType(frame.type)}, ${frame.payload.length} payload bytes`,
      received: connection.received,
      hint: 'the first frame on the connection is HELLO; its payload is one UTF-8 JSON object',
    });
    const hello = (parsed as { object: Record<string, unknown> }).object;
    connection.send(answer(hello));
    const sent = () => framesIn(connection.received).frames;
    return { fake, client, connection, hello, sent };
  } catch (error) {
    client.kill();
    await fake.close();
    throw error;
  }
}

/** Waits for the client's BYE (its --duration or an exit command), closes, and waits for it to exit 0. */
export async function finishSession(session: Session, waitMs: number, why: string): Promise<{ frames: WireFrame[]; result: CommandResult }> {
  const { connection, client, fake } = session;
  try {
    await connection.waitFor(() => (session.sent().some((frame) => frame.type === BYE) ? true : undefined), waitMs, `BYE (0x04) ${why}`, 'leave cleanly: send BYE, then close the connection');
    connection.end();
    const result = await client.exit(EXIT_DEADLINE_MS);
    expect(result.exitCode === 0 && !result.timedOut, 'the client did not exit 0 after leaving', {
      expected: `exit code 0 within ${EXIT_DEADLINE_MS / 1000} s of BYE`,
      actual: describeRun(result),
      hint: 'after BYE, close the connection and the output, and exit 0, although standard input is still open (a terminal never closes it)',
    });
    return { frames: session.sent().slice(1), result };
  } finally {
    client.kill();
    await fake.close();
  }
}

/** Runs a check's steps; if one fails, stops the client and the fake server before reporting it. */
export async function orStop(session: Session, steps: () => void | Promise<void>): Promise<void> {
  try {
    await steps();
  } catch (error) {
    session.client.kill();
    await session.fake.close();
    throw error;
  }
}

/** Runs the steps of an interactive check, then types exit and expects a clean leave. */
export async function thenExit(session: Session, steps: () => Promise<void>): Promise<void> {
  await orStop(session, steps);
  session.client.type('exit\n');
  await finishSession(session, 5_000, 'after the command exit');
}
