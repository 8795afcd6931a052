// A client of stages 02-08 (the reference, CLIENT_CMD, or an independent one) against a fake server
// that turns hostile mid-session: it vanishes (reset or FIN), sends garbage or an absurd length, or
// sends names and messages full of terminal escape sequences. The session is the stage's own (its
// README's WELCOME, users and voice), and before the hostile act each case waits for proof on the
// wire that the client accepted WELCOME: its voice (AUDIO, 05 on VOICE) from the speech-like WAV
// it was given, or, 06 on, a datagram carrying WELCOME's token at WELCOME's udp_port (its PING).
// A client that rejects WELCOME at once would otherwise fail every case "cleanly" without ever
// being mid-session; the run reports it as `handshakeProblem`.
// The client must end with ONE line on standard error and a non-zero exit (no stack trace), and
// never print a control character it was sent: an escape sequence from a server must not reach
// the user's terminal.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { CheckFailure } from '../harness/check-failure.ts';
import { DatagramPeer } from '../harness/datagram-peer.ts';
import { FakeServer } from '../harness/fake-server.ts';
import { framesIn, readFrame, type WireFrame } from '../harness/frame-wire.ts';
import { runCommand, type CommandResult } from '../harness/run-command.ts';
import { describeRun } from '../harness/running-client.ts';
import { writeSpeechWav } from '../harness/speech-wav.ts';
import type { WireClient } from '../harness/wire-client.ts';
import { describeFrames } from '../harness/client-session.ts';
import { frame, header, HEADER_BYTES, jsonFrame } from './frames.ts';
import { SeededRandom } from '../harness/seeded-random.ts';
import { AUDIO, ERROR, FRAME_BYTES, JOINED, LEFT, PRESENCE, SPEAKING, TEXT, USERS, WELCOME, type StageWire } from './wire-spec.ts';
import { errorLines, hasStackTrace } from '../harness/program-output.ts';

const CLIENT_TIMEOUT_MS = 20_000;
/** How long after WELCOME a joined client has to show it: its first voice frame or PING leaves at once. */
const JOIN_PROOF_MS = 5_000;
/** The WAV the client talks from: a tone from the first frame (it opens any voice gate), longer than a case lasts. */
const INPUT_SECONDS = 8;
/** WELCOME's token (06 on), as 16 hex digits; every datagram of a joined client carries its 8 bytes after the type. */
const TOKEN = Buffer.from('5ac1e0b79d2f4e63', 'hex');
/** Escape sequences and controls a hostile server might send (clear screen, set title, bell, bidi, CR). */
export const HOSTILE_TEXT = '\x1b[2J\x1b]0;pwned\x07\x1b[31mEvil\u202e\r\u009b6n';
/** Bytes that must never appear in what a client prints: ESC, BEL, CR, C1 CSI, U+202E. */
export const FORBIDDEN_OUTPUT = /[\x1b\x07\r\u009b\u202e]/u;

export interface ClientCase {
  name: string;
  /** Plays the server's hostile part once the client has shown it is mid-session (WELCOME and USERS are sent by then). */
  act(connection: WireClient, wire: StageWire): Promise<void>;
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
 * token and `udpPort`, the case's own UDP socket, where the client's PING proves it joined), and
 * from 03 the USERS that follows it.
 */
function welcome(wire: StageWire, udpPort: number | undefined): Buffer {
  const name = 'Ada';
  const fields = wire.opusVoice
    ? { name, room: 'lobby', id: 1, protocol: wire.protocol, codec: 'opus', sample_rate: 48_000, frame_ms: 20, channels: 1, ...(udpPort === undefined ? {} : { token: TOKEN.toString('hex'), udp_port: udpPort }) }
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
    async act(connection, wire) {
      connection.send(oneSecondOfVoice(wire));
      await sleep(300);
      connection.reset();
    },
  },
  {
    name: 'the server closes the connection (FIN) mid-session',
    async act(connection) {
      connection.end();
    },
  },
  {
    name: 'the server sends random bytes mid-session',
    async act(connection) {
      const junk = new SeededRandom(42).bytes(3000);
      junk[0] = 0xee; // a type no server sends: the client must notice at once, not wait for a length
      connection.send(junk);
    },
  },
  {
    name: 'the server declares a 4 GB frame mid-session',
    async act(connection) {
      connection.send(header(AUDIO, 0xffffffff));
    },
  },
  {
    name: 'the server sends names and messages full of terminal escape sequences',
    async act(connection, wire) {
      connection.send(Buffer.concat(hostileNews(wire)));
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
  /**
   * Why the client was not shown to be mid-session, or null when it was: within JOIN_PROOF_MS of
   * WELCOME it sent voice (or, 06 on, a datagram with WELCOME's token). When it was not, the
   * hostile act was not played (the fake server hung up instead) and the run tests nothing.
   */
  handshakeProblem: string | null;
}

/** What a joined client of the stage sends first ("it sent no ..."), for the guard's failure message. */
function joinProofName(wire: StageWire): string {
  if (wire.datagrams) return "datagram carrying WELCOME's token to its udp_port (a PING) and no VOICE (0x03) over TCP";
  return wire.opusVoice ? 'VOICE (0x03)' : 'AUDIO (0x03)';
}

/** The frames the client sent after HELLO, split at WELCOME (`welcomeAt`: the bytes received by the time it was sent). */
function framesAroundWelcome(received: Buffer, helloBytes: number, welcomeAt: number): { before: WireFrame[]; after: WireFrame[] } {
  const before: WireFrame[] = [];
  const after: WireFrame[] = [];
  let offset = helloBytes;
  for (const sent of framesIn(received.subarray(helloBytes)).frames) {
    (offset >= welcomeAt ? after : before).push(sent);
    offset += HEADER_BYTES + sent.payload.length;
  }
  return { before, after };
}

/**
 * Waits for the client to show it accepted WELCOME: a voice frame (0x03) sent after WELCOME, or a
 * datagram carrying the token. Returns why not, or null.
 */
async function joinProblem(connection: WireClient, wire: StageWire, helloBytes: number, welcomeAt: number, udp: DatagramPeer | undefined): Promise<string | null> {
  const voiceAfterWelcome = () => (framesAroundWelcome(connection.received, helloBytes, welcomeAt).after.some(({ type }) => type === AUDIO) ? true : undefined);
  const tokenDatagram = () => (udp?.received.some(({ data }) => data.subarray(1, 9).equals(TOKEN)) ? true : undefined);
  if (udp) udp.onDatagram = () => connection.nudge();
  try {
    await connection.waitFor(() => voiceAfterWelcome() ?? tokenDatagram(), JOIN_PROOF_MS, 'proof that the client joined');
    return null;
  } catch (error) {
    if (!(error instanceof CheckFailure)) throw error;
    const { before, after } = framesAroundWelcome(connection.received, helloBytes, welcomeAt);
    const datagrams = udp ? `; ${udp.received.length} datagrams at udp_port` : '';
    return (
      `the client never got past the handshake: after WELCOME it sent no ${joinProofName(wire)} ` +
      (connection.isClosed ? 'before it closed the connection' : `within ${JOIN_PROOF_MS / 1000} s`) +
      ` (after HELLO it sent ${describeFrames(before, wire.typeNames)} before WELCOME, ${describeFrames(after, wire.typeNames)} after it${datagrams}),` +
      ' so the hostile act could not test it mid-session'
    );
  }
}

/**
 * Runs the client against a fake server playing `clientCase`: HELLO, WELCOME, proof that the
 * client joined (it talks from a WAV of a tone), then the case's hostile act.
 */
export async function runClientCase(clientCommand: string, wire: StageWire, clientCase: ClientCase): Promise<ClientRun> {
  const server = await FakeServer.start();
  const udp = wire.datagrams ? await DatagramPeer.start() : undefined;
  const dir = mkdtempSync(joinPath(tmpdir(), 'hostile-client-'));
  try {
    const input = joinPath(dir, 'tone.wav');
    writeSpeechWav(input, 0, INPUT_SECONDS, 0);
    const args = ['--name', 'Ada', '--host', '127.0.0.1', '--port', String(server.port), '--input', input, '--output', 'null'];
    if (wire.id === '04') args.push('--room', 'lobby');
    const running = runCommand(clientCommand, args, { timeoutMs: CLIENT_TIMEOUT_MS });
    const exitedFirst = running.then((result) => {
      throw new Error(`the client exited before connecting: ${describeRun(result)}`);
    });
    const connection = await Promise.race([server.connection(0, CLIENT_TIMEOUT_MS), exitedFirst]);
    const hello = await readFrame(connection, 'HELLO', { timeoutMs: 10_000 });
    const helloBytes = HEADER_BYTES + hello.payload.length;
    const welcomeAt = connection.received.length;
    connection.send(welcome(wire, udp?.port));
    const handshakeProblem = await joinProblem(connection, wire, helloBytes, welcomeAt, udp);
    if (handshakeProblem === null) await clientCase.act(connection, wire);
    else connection.destroy(); // nothing to test: let the client go at once
    const result = await running;
    return { result, received: connection.received, handshakeProblem };
  } finally {
    udp?.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
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
