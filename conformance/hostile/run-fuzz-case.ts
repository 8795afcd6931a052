// Plays one fuzz case against a server and judges the answer against the README model
// (spec-model.ts). Returns null when the server behaved, or one line saying what went wrong.
import { connect, type Socket } from 'node:net';
import type { FuzzCase } from './fuzz-case.ts';
import { ServerFrameReader } from './server-frames.ts';
import { expectationFor, type Expectation } from './spec-model.ts';
import { ERROR, WELCOME, type StageWire } from './wire-spec.ts';

/** How long a session with nothing wrong is watched for a wrong answer before we hang up. */
const WATCH_OPEN_MS = 150;
/** How long the server has to answer an error (or BYE) with ERROR and a close: generous, machines are busy. */
const ANSWER_DEADLINE_MS = 5_000;

export interface CaseVerdict {
  /** null when the server behaved. */
  problem: string | null;
  expectation: Expectation;
  /** What the server sent, in short: "WELCOME, AUDIO x3, ERROR bad_audio_size, close". */
  transcript: string;
}

export async function runFuzzCase(host: string, port: number, wire: StageWire, fuzzCase: FuzzCase): Promise<CaseVerdict> {
  const expectation = expectationFor(wire, Buffer.concat(fuzzCase.chunks));
  const reader = new ServerFrameReader(wire);
  let closed = false;
  let wake: () => void = () => {};
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect({ host, port }, () => resolve(s));
    s.once('error', reject);
  }).catch((error: Error) => error);
  if (socket instanceof Error) return { problem: `could not connect: ${socket.message}`, expectation, transcript: '' };
  socket.on('error', () => {}); // a reset after an ERROR is fine; what was received is judged
  socket.on('data', (chunk: Buffer) => (reader.push(chunk), wake()));
  socket.on('close', () => ((closed = true), wake()));

  for (const chunk of fuzzCase.chunks) {
    if (closed) break;
    socket.write(chunk);
    await new Promise((resolve) => setImmediate(resolve));
  }

  /** Waits until `done()` or the deadline; returns done(). */
  const waitUntil = async (done: () => boolean, ms: number): Promise<boolean> => {
    const deadline = performance.now() + ms;
    while (!done() && performance.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - performance.now()));
        wake = () => (clearTimeout(timer), resolve());
      });
    }
    return done();
  };
  const errorIndex = () => reader.frames.findIndex((f) => f.type === ERROR);

  if (expectation.kind === 'open') {
    await waitUntil(() => closed || errorIndex() >= 0 || reader.problem !== undefined, WATCH_OPEN_MS);
  } else {
    // Both an error and a BYE end with the server closing the connection.
    await waitUntil(() => closed || reader.problem !== undefined, ANSWER_DEADLINE_MS);
  }
  // After any ERROR (even a "busy" to a valid HELLO) the server must close.
  if (errorIndex() >= 0) await waitUntil(() => closed || reader.problem !== undefined, ANSWER_DEADLINE_MS);
  const wasClosed = closed;
  if (fuzzCase.ending === 'reset') socket.resetAndDestroy();
  else socket.end();
  setTimeout(() => socket.destroy(), 1_000).unref();

  const transcript = describe(reader, wasClosed);
  return { problem: reader.problem ?? judge(wire, expectation, reader, wasClosed), expectation, transcript };
}

function judge(wire: StageWire, expectation: Expectation, reader: ServerFrameReader, closed: boolean): string | null {
  const frames = reader.frames;
  const errorAt = frames.findIndex((f) => f.type === ERROR);
  const error = errorAt >= 0 ? frames[errorAt]!.json : undefined;
  const code = error?.code as string | undefined;
  // A valid HELLO may be refused because of the others (busy, name_taken, server_full): that ends the case too.
  // Only a HELLO the README calls valid may be refused this way: a bad name must get bad_name, not busy.
  const crowdRefusal = expectation.joined && errorAt === 0 && code !== undefined && wire.crowdCodes.includes(code);
  if (crowdRefusal) return closed ? null : `after ERROR ${code} the server did not close within ${ANSWER_DEADLINE_MS} ms`;
  if (errorAt >= 0 && errorAt < frames.length - 1) return `the server sent ${frames.length - errorAt - 1} frames after ERROR ${code}`;
  const joinedFrames = frames.slice(0, errorAt >= 0 ? errorAt : frames.length);
  if (!expectation.joined && joinedFrames.length > 0) return `expected nothing before ${expectation.kind === 'error' ? 'ERROR' : 'the rest of the stream'}, got ${wire.typeNames[frames[0]!.type]}`;
  if (expectation.joined && joinedFrames.length > 0 && joinedFrames[0]!.type !== WELCOME) return `the first answer to a valid HELLO was ${wire.typeNames[joinedFrames[0]!.type]}, not WELCOME`;

  switch (expectation.kind) {
    case 'error':
      if (code === undefined) return `expected ERROR ${expectation.codes.join(' or ')} (${expectation.reason}), got ${closed ? 'a close without ERROR' : `no ERROR within ${ANSWER_DEADLINE_MS} ms`}`;
      if (!expectation.codes.includes(code)) return `expected ERROR ${expectation.codes.join(' or ')} (${expectation.reason}), got ERROR ${code}`;
      if (expectation.joined && frames[0]?.type !== WELCOME) return `expected WELCOME before ERROR ${code}`;
      return closed ? null : `after ERROR ${code} the server did not close within ${ANSWER_DEADLINE_MS} ms`;
    case 'bye':
      if (code !== undefined) return `expected a close after BYE, got ERROR ${code}`;
      return closed ? null : `after BYE the server did not close within ${ANSWER_DEADLINE_MS} ms`;
    case 'open':
      if (code !== undefined) return `nothing was wrong with the stream, but the server sent ERROR ${code}`;
      return closed ? 'nothing was wrong with the stream, but the server closed the connection' : null;
  }
}

function describe(reader: ServerFrameReader, closed: boolean): string {
  const parts: string[] = [];
  let audio = 0;
  for (const frame of reader.frames) {
    if (frame.type === 0x03) {
      audio++;
      continue;
    }
    if (audio > 0) parts.push(`AUDIO x${audio}`);
    audio = 0;
    parts.push(frame.type === ERROR ? `ERROR ${String(frame.json?.code)}` : `0x${frame.type.toString(16).padStart(2, '0')}`);
  }
  if (audio > 0) parts.push(`AUDIO x${audio}`);
  if (closed) parts.push('close');
  return parts.join(', ') || '(nothing)';
}
