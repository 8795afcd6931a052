// A client of stages 02-08 (the reference, CLIENT_CMD, or an independent one) against a fake server
// that turns hostile mid-session: it vanishes (reset or FIN), sends garbage or an absurd length, or
// sends names and messages full of terminal escape sequences. The session is the stage's own (its
// README's WELCOME, users and voice), so that the client really is mid-session when it happens.
// The client must end with ONE line on standard error and a non-zero exit (no stack trace), and
// never print a control character it was sent: an escape sequence from a server must not reach
// the user's terminal.
import { FakeServer } from '../harness/fake-server.ts';
import { runCommand, type CommandResult } from '../harness/run-command.ts';
import type { WireClient } from '../harness/wire-client.ts';
import { frame, header, jsonFrame } from './frames.ts';
import { SeededRandom } from '../harness/seeded-random.ts';
import { AUDIO, ERROR, FRAME_BYTES, JOINED, LEFT, PRESENCE, SPEAKING, TEXT, USERS, WELCOME, type StageWire } from './wire-spec.ts';
import { errorLines, hasStackTrace } from '../harness/program-output.ts';

const CLIENT_TIMEOUT_MS = 20_000;
/** Escape sequences and controls a hostile server might send (clear screen, set title, bell, bidi, CR). */
export const HOSTILE_TEXT = '\x1b[2J\x1b]0;pwned\x07\x1b[31mEvil\u202e\r\u009b6n';
/** Bytes that must never appear in what a client prints: ESC, BEL, CR, C1 CSI, U+202E. */
export const FORBIDDEN_OUTPUT = /[\x1b\x07\r\u009b\u202e]/u;

export interface ClientCase {
  name: string;
  /** Plays the server's part once the client's HELLO is in. */
  serve(connection: WireClient, wire: StageWire): Promise<void>;
}

/** A room-mate's session id (stage 05 on) in USERS, SPEAKING and the voice the server forwards. */
const MATE_ID = 2;

/** A user as the stage's messages name one: a name (02-04), {id, name} (05 on), with in_call at 08. */
function user(wire: StageWire, id: number, name: string): unknown {
  if (!wire.opusVoice) return name;
  return wire.calls ? { id, name, in_call: false } : { id, name };
}

/**
 * WELCOME as the stage's README spells it (05 adds the id, protocol and codec fields; 06 the
 * token and udp_port: 9, the discard port, as nothing here answers datagrams), and from 03 the
 * USERS that follows it.
 */
function welcome(wire: StageWire, name = 'Ada'): Buffer {
  const fields = wire.opusVoice
    ? { name, room: 'lobby', id: 1, protocol: wire.protocol, codec: 'opus', sample_rate: 48_000, frame_ms: 20, channels: 1, ...(wire.datagrams ? { token: '5ac1e0b79d2f4e63', udp_port: 9 } : {}) }
    : { name, room: 'lobby', sample_rate: 48_000, frame_samples: 960 };
  const welcomeFrame = jsonFrame(WELCOME, fields);
  if (!wire.mixes) return welcomeFrame;
  return Buffer.concat([welcomeFrame, jsonFrame(USERS, { room: 'lobby', users: [user(wire, 1, name), user(wire, MATE_ID, 'Bob')] })]);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One second of a room-mate's voice: 50 PCM frames of silence (02-04), or 50 forwarded VOICE of an Opus silence packet (05 on). */
function oneSecondOfVoice(wire: StageWire): Buffer {
  const voice = (sequence: number) => {
    if (!wire.opusVoice) return frame(AUDIO, Buffer.alloc(FRAME_BYTES));
    const payload = Buffer.from([0, 0, 0, 0, 0xf8, 0xff, 0xfe]); // speaker, sequence, then Opus's 20 ms silence packet
    payload.writeUInt16BE(MATE_ID, 0);
    payload.writeUInt16BE(sequence, 2);
    return frame(AUDIO, payload);
  };
  return Buffer.concat(Array.from({ length: 50 }, (_, sequence) => voice(sequence)));
}

/** What a stage's server tells of others, every name and text in it hostile: 03 on USERS, JOINED, SPEAKING, LEFT; 07 on a chat line; 08 a PRESENCE. */
function hostileNews(wire: StageWire): Buffer[] {
  if (!wire.mixes) return [];
  const mate = user(wire, MATE_ID, HOSTILE_TEXT);
  const news = [
    jsonFrame(USERS, { room: 'lobby', users: [user(wire, 1, 'Ada'), mate] }),
    jsonFrame(JOINED, wire.opusVoice ? { id: 3, name: `${HOSTILE_TEXT}2` } : { name: `${HOSTILE_TEXT}2` }),
    jsonFrame(SPEAKING, { speakers: [wire.opusVoice ? { id: MATE_ID, name: HOSTILE_TEXT } : HOSTILE_TEXT] }),
  ];
  if (wire.chat) news.push(jsonFrame(TEXT, { from: { id: MATE_ID, name: HOSTILE_TEXT }, text: `hello ${HOSTILE_TEXT}` }));
  if (wire.calls) news.push(jsonFrame(PRESENCE, { id: MATE_ID, name: HOSTILE_TEXT, in_call: true }));
  news.push(jsonFrame(LEFT, wire.opusVoice ? { id: MATE_ID, name: HOSTILE_TEXT, reason: HOSTILE_TEXT } : { name: HOSTILE_TEXT, reason: HOSTILE_TEXT }));
  return news;
}

export const clientCases: ClientCase[] = [
  {
    name: 'the server resets the connection mid-session',
    async serve(connection, wire) {
      connection.send(Buffer.concat([welcome(wire), oneSecondOfVoice(wire)]));
      await sleep(300);
      connection.reset();
    },
  },
  {
    name: 'the server closes the connection (FIN) mid-session',
    async serve(connection, wire) {
      connection.send(welcome(wire));
      await sleep(300);
      connection.end();
    },
  },
  {
    name: 'the server sends random bytes mid-session',
    async serve(connection, wire) {
      const junk = new SeededRandom(42).bytes(3000);
      junk[0] = 0xee; // a type no server sends: the client must notice at once, not wait for a length
      connection.send(Buffer.concat([welcome(wire), junk]));
    },
  },
  {
    name: 'the server declares a 4 GB frame mid-session',
    async serve(connection, wire) {
      connection.send(Buffer.concat([welcome(wire), header(AUDIO, 0xffffffff)]));
    },
  },
  {
    name: 'the server sends names and messages full of terminal escape sequences',
    async serve(connection, wire) {
      connection.send(Buffer.concat([welcome(wire, `Ada${HOSTILE_TEXT}`), ...hostileNews(wire)]));
      await sleep(300);
      connection.send(jsonFrame(ERROR, { code: `kicked${HOSTILE_TEXT}`, message: `goodbye ${HOSTILE_TEXT}\nfake prompt $ ` }));
      connection.end();
    },
  },
];

export interface ClientRun {
  result: CommandResult;
  /** What the fake server received from the client. */
  received: Buffer;
}

/** Runs the client against a fake server playing `clientCase`. */
export async function runClientCase(clientCommand: string, wire: StageWire, clientCase: ClientCase): Promise<ClientRun> {
  const server = await FakeServer.start();
  try {
    const args = ['--name', 'Ada', '--host', '127.0.0.1', '--port', String(server.port), '--input', 'silence', '--output', 'null'];
    if (wire.id === '04') args.push('--room', 'lobby');
    const running = runCommand(clientCommand, args, { timeoutMs: CLIENT_TIMEOUT_MS });
    const connection = await server.connection(0, CLIENT_TIMEOUT_MS);
    await connection.readBytes(5, 10_000, 'the HELLO header');
    await clientCase.serve(connection, wire);
    const result = await running;
    return { result, received: connection.received };
  } finally {
    await server.close();
  }
}

/** Why the run is not a clean one-line failure, or null when it is. */
export function oneLineFailureProblem(result: CommandResult): string | null {
  if (result.timedOut) return `the client was still running after ${CLIENT_TIMEOUT_MS / 1000} s`;
  if (result.exitCode === 0) return 'the client exited 0';
  if (result.exitCode === null) return `the client was killed by ${result.signal}`;
  const lines = errorLines(result.stderr);
  if (lines.length !== 1) return `standard error has ${lines.length} lines, not one: ${JSON.stringify(result.stderr.slice(0, 400))}`;
  if (hasStackTrace(result.stderr + result.stdout)) return 'a stack trace was printed';
  return null;
}

/** Where the client printed a control character it was sent, or null. */
export function controlCharacterProblem(result: CommandResult): string | null {
  for (const [stream, text] of [['standard output', result.stdout], ['standard error', result.stderr]] as const) {
    const match = FORBIDDEN_OUTPUT.exec(text);
    if (match) {
      const at = match.index;
      return `${stream} holds U+${match[0].codePointAt(0)!.toString(16).padStart(4, '0')}: ${JSON.stringify(text.slice(Math.max(0, at - 40), at + 40))}`;
    }
  }
  return null;
}
