// Stage 02's checks: the voice-echo protocol, asserted over raw sockets and through the
// client's command line. They use only the protocol in 02-echo/README.md (nothing from
// 02-echo/ is imported), so they grade an implementation in any language.
import { expectDuration, expectWithinWindow, timingWindow } from '../harness/tolerance.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import wavefile from 'wavefile';
import { FRAME_BYTES, FRAME_MS, SAMPLE_RATE } from '#shared/audio/format.ts';
import { CheckFailure } from '../harness/check-failure.ts';
import { expect, type Check, type CheckContext } from '../harness/checks.ts';
import { FakeServer } from '../harness/fake-server.ts';
import {
  distinctivePcm,
  firstDifference,
  frameBytes,
  hexType,
  jsonFrameBytes,
  jsonObjectOf,
  readFrame,
  readJsonFrame,
  sendInPieces,
  splitAt,
  type WireFrame,
} from '../harness/frame-wire.ts';
import { expectRecording } from '../harness/recording.ts';
import { freePort } from '../harness/server-process.ts';
import { runCommand, type CommandResult } from '../harness/run-command.ts';
import { WireClient } from '../harness/wire-client.ts';
import { errorLines, hasStackTrace, rawCharacters } from '../harness/program-output.ts';
import { protocolIdClientCheck, protocolIdServerCheck, type ProtocolIdStage } from '../harness/protocol-id-checks.ts';

// The message types of the README's table.
const HELLO = 0x01;
const WELCOME = 0x02;
const AUDIO = 0x03;
const BYE = 0x04;
const ERROR = 0x05;
const TYPE_NAMES: Record<number, string> = { [HELLO]: 'HELLO', [WELCOME]: 'WELCOME', [AUDIO]: 'AUDIO', [BYE]: 'BYE', [ERROR]: 'ERROR' };

const HANDSHAKE_TIMEOUT_MS = 5_000;
/** "At once" for a freed slot, with room for a busy machine. */
const SLOT_FREE_DEADLINE_MS = 2_000;
/** How long a server may take to close after sending ERROR. */
const CLOSE_AFTER_ERROR_MS = 3_000;

function typeName(type: number): string {
  return `${TYPE_NAMES[type] ?? 'unknown type'} (${hexType(type)})`;
}

const hello = (name: string) => jsonFrameBytes(HELLO, { name });
/** HELLO and WELCOME of this stage, for the checks of the optional "protocol" field. */
const PROTOCOL_ID: ProtocolIdStage = { id: '02', hello: (name) => ({ name }), welcome: (name) => ({ name, sample_rate: SAMPLE_RATE, frame_samples: FRAME_BYTES / 2 }) };
const audio = (pcm: Buffer) => frameBytes(AUDIO, pcm);
const bye = () => frameBytes(BYE);

/** n distinct 1920-byte frames; `seed` keeps frames of different checks different too. */
function voiceFrames(count: number, seed: number): Buffer[] {
  const pcm = distinctivePcm(count, FRAME_BYTES, seed);
  return Array.from({ length: count }, (_, i) => pcm.subarray(i * FRAME_BYTES, (i + 1) * FRAME_BYTES));
}

/** Connections opened by the running check: all are dropped when it ends, passed or failed. */
const openConnections = new Set<WireClient>();

async function connect({ server }: CheckContext): Promise<WireClient> {
  const client = await WireClient.connect(server.host, server.port);
  openConnections.add(client);
  return client;
}

/** Reads WELCOME and checks its fields. */
async function expectWelcome(client: WireClient, name: string): Promise<void> {
  const welcome = await readJsonFrame(client, WELCOME, `WELCOME for "${name}"`, 'answer a valid HELLO with a WELCOME frame (type 0x02) carrying a JSON object');
  const problems: string[] = [];
  if (welcome.name !== name) problems.push(`"name" is ${JSON.stringify(welcome.name)}, expected ${JSON.stringify(name)}`);
  if (welcome.sample_rate !== SAMPLE_RATE) problems.push(`"sample_rate" is ${JSON.stringify(welcome.sample_rate)}, expected ${SAMPLE_RATE}`);
  if (welcome.frame_samples !== FRAME_BYTES / 2) problems.push(`"frame_samples" is ${JSON.stringify(welcome.frame_samples)}, expected ${FRAME_BYTES / 2}`);
  expect(problems.length === 0, 'WELCOME has wrong fields', {
    expected: `{"name": ${JSON.stringify(name)}, "sample_rate": 48000, "frame_samples": 960}`,
    actual: problems.join('; '),
    sent: client.sent,
    received: client.received,
    hint: 'WELCOME repeats the name exactly as received (UTF-8) and states the audio format as numbers',
  });
}

/**
 * Joins as `name`. A previous user's departure may still be in flight, so a "busy" answer is
 * retried until the deadline; any other answer fails the check.
 */
async function join(context: CheckContext, name: string, deadlineMs = SLOT_FREE_DEADLINE_MS): Promise<WireClient> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const client = await connect(context);
    client.send(hello(name));
    const frame = await readFrame(client, `WELCOME (or ERROR busy) for "${name}"`, { hint: 'answer HELLO with WELCOME when no one else is connected' });
    if (frame.type === WELCOME) {
      const parsed = jsonObjectOf(frame.payload);
      if ('object' in parsed && parsed.object.name === name) return client;
    }
    const parsed = jsonObjectOf(frame.payload);
    const busy = frame.type === ERROR && 'object' in parsed && parsed.object.code === 'busy';
    if (!busy || Date.now() >= deadline) {
      client.destroy();
      throw new CheckFailure(busy ? `"${name}" could not join within ${deadlineMs} ms: still busy` : `"${name}" could not join`, {
        expected: busy ? 'the slot to be free: the previous user has left' : `WELCOME with "name": ${JSON.stringify(name)}`,
        actual: `${typeName(frame.type)} ${frame.payload.toString('utf8').slice(0, 200)}`,
        sent: client.sent,
        received: client.received,
        hint: busy ? 'free the slot as soon as the user sends BYE, closes (FIN) or the connection breaks (reset)' : 'answer a valid HELLO with WELCOME {"name", "sample_rate", "frame_samples"}',
      });
    }
    client.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50)); // poll again, the deadline bounds it
  }
}

/** Reads one AUDIO frame per expected frame and compares the bytes. */
async function expectEcho(client: WireClient, frames: Buffer[], hint = 'send every AUDIO frame straight back to its sender, unchanged'): Promise<void> {
  for (const [i, expected] of frames.entries()) {
    const frame = await readFrame(client, `the echo of audio frame ${i + 1} of ${frames.length}`, { hint });
    expect(frame.type === AUDIO && frame.payload.equals(expected), `echo of audio frame ${i + 1} of ${frames.length} is wrong`, {
      expected: `an AUDIO frame (0x03, length 1920) with exactly the ${FRAME_BYTES} bytes sent`,
      actual: frame.type === AUDIO ? `AUDIO with different bytes: ${firstDifference(expected, frame.payload)}` : `${typeName(frame.type)}, ${frame.payload.length} payload bytes`,
      sent: client.sent,
      received: client.received,
      hint,
    });
  }
}

/** Reads ERROR with the given code, then requires the server to close the connection. */
async function expectError(client: WireClient, code: string, hint: string): Promise<void> {
  const frame = await readFrame(client, `ERROR "${code}"`, { hint });
  const parsed = jsonObjectOf(frame.payload);
  const object = 'object' in parsed ? parsed.object : undefined;
  expect(frame.type === ERROR && object?.code === code && typeof object.message === 'string', `expected ERROR "${code}"`, {
    expected: `ERROR (0x05) with payload {"code": "${code}", "message": "<reason>"}`,
    actual: `${typeName(frame.type)} with payload ${JSON.stringify(frame.payload.toString('utf8').slice(0, 200))}`,
    sent: client.sent,
    received: client.received,
    hint,
  });
  await client.waitForClose(CLOSE_AFTER_ERROR_MS, 'the server to close the connection after ERROR', 'after sending ERROR, close that connection');
}

/** Sends `bytes` on a fresh connection (joined first if asked) and expects ERROR `code` and a close. */
function refusal(bytes: Buffer, code: string, hint: string, options: { joinAs?: string } = {}) {
  return async (context: CheckContext) => {
    const client = options.joinAs ? await join(context, options.joinAs) : await connect(context);
    client.send(bytes);
    await expectError(client, code, hint);
  };
}

/**
 * Leaves with BYE, then FIN, and waits (up to the slot deadline) for the server to close, as it
 * must after BYE: then the slot is free for whatever the check does next, even on a loaded
 * machine. A server that does not close is failed by the BYE check, not here.
 */
async function leave(client: WireClient): Promise<void> {
  client.send(bye());
  client.end();
  await client.waitForClose(SLOT_FREE_DEADLINE_MS).catch(() => client.destroy());
}

/** Joins and leaves, waiting for the server to close: then no earlier user holds the slot. */
async function slotIsFree(context: CheckContext): Promise<void> {
  const client = await join(context, 'Ada');
  client.send(bye());
  client.end();
  await client.waitForClose(SLOT_FREE_DEADLINE_MS, 'the server to close the connection after BYE and FIN', 'when the client leaves (BYE, then FIN), close the connection');
}

// ----- client checks: the client under test, run through its command line -----

function describeRun(result: CommandResult): string {
  return `exit ${result.exitCode}${result.timedOut ? ' (killed: timed out)' : ''}; stdout ${JSON.stringify(result.stdout.slice(-300))}; stderr ${JSON.stringify(result.stderr.slice(-300))}`;
}

function expectOneLineFailure(result: CommandResult, summary: string, mustMention: RegExp, hint: string): void {
  const lines = errorLines(result.stderr);
  expect(result.exitCode !== 0 && !result.timedOut && lines.length === 1 && mustMention.test(lines[0]!) && !hasStackTrace(result.stderr), summary, {
    expected: `a non-zero exit and exactly one line on standard error matching ${mustMention}, no stack trace`,
    actual: describeRun(result),
    hint,
  });
}

/** Client options that need no sound card. */
const QUIET_AUDIO = ['--input', 'silence', '--output', 'null'];
/** The --duration of the client's leave check, and the AUDIO frames it must send at least: half of one per 20 ms (slack for a loaded machine). */
const DURATION_SECONDS = 1.5;
const DURATION_FRAMES = (DURATION_SECONDS * 1000) / FRAME_MS;
const MIN_DURATION_FRAMES = Math.ceil(DURATION_FRAMES / 2);
/** ESC (a terminal escape sequence), the line separator and the right-to-left override: what a hostile server's ERROR may hold. */
const HOSTILE_CHARACTERS = '\u001b\u2028\u202e';
const HOSTILE_ERROR_MESSAGE = 'someone else is talking\u001b[2J\u2028\u202egnol ooT';

interface FakeSession {
  first: WireFrame;
  /** Frames the client sent after WELCOME, up to and including BYE. */
  after: WireFrame[];
  result: CommandResult;
  transcript: WireClient;
}

/** The client's connection to the fake server; fails with the client's output if it exits first. */
async function clientConnection(fake: FakeServer, run: Promise<CommandResult>): Promise<WireClient> {
  const exited = run.then((result): never => {
    throw new CheckFailure('the client exited without connecting', {
      expected: 'the client connects to the server given by --host and --port',
      actual: describeRun(result),
      hint: `command: ${result.command}`,
    });
  });
  const connected = fake.connection(0, 10_000).catch((): never => {
    throw new CheckFailure('the client did not connect within 10 s', { expected: 'a TCP connection to --host:--port', hint: 'connect at start-up' });
  });
  return Promise.race([connected, exited]);
}

/** Plays a well-behaved server for one client run: WELCOME, echo every AUDIO, close after BYE. */
async function fakeEchoSession(context: CheckContext, name: string, seconds: number): Promise<FakeSession> {
  const fake = await FakeServer.start();
  try {
    const run = runCommand(context.clientCommand, ['--name', name, '--host', '127.0.0.1', '--port', String(fake.port), ...QUIET_AUDIO, '--duration', String(seconds)], { timeoutMs: 20_000 + seconds * 1000 });
    const connection = await clientConnection(fake, run);
    const first = await readFrame(connection, 'the client\'s first frame (HELLO)', { timeoutMs: 10_000 });
    const after: WireFrame[] = [];
    if (first.type === HELLO) {
      connection.send(jsonFrameBytes(WELCOME, { name, sample_rate: SAMPLE_RATE, frame_samples: FRAME_BYTES / 2 }));
      for (;;) {
        const frame = await readFrame(connection, 'AUDIO frames, then BYE', { timeoutMs: seconds * 1000 + 10_000, hint: `with --duration ${seconds}, send BYE after ${seconds} s` }).catch((error: unknown) => {
          if (connection.isClosed) return undefined; // closed without BYE: the checks below say so
          throw error;
        });
        if (frame === undefined) break;
        after.push(frame);
        if (frame.type === AUDIO) connection.send(frameBytes(AUDIO, frame.payload));
        else break;
      }
      connection.end();
    }
    return { first, after, result: await run, transcript: connection };
  } finally {
    await fake.close();
  }
}

/** Runs the client against a fake server that answers HELLO with `answer` (after `react`). */
async function clientFacing(context: CheckContext, react: (connection: WireClient) => Promise<void>): Promise<CommandResult> {
  const fake = await FakeServer.start();
  try {
    const run = runCommand(context.clientCommand, ['--name', 'Ada', '--host', '127.0.0.1', '--port', String(fake.port), ...QUIET_AUDIO], { timeoutMs: 20_000 });
    const connection = await clientConnection(fake, run);
    await readFrame(connection, 'the client\'s HELLO', { timeoutMs: 10_000 });
    await react(connection);
    return await run;
  } finally {
    await fake.close();
  }
}

/** A 16-bit mono 48 kHz WAV of distinctive samples, not a whole number of frames long. */
function writeDistinctiveWav(path: string, samples: number): Buffer {
  const pcm = distinctivePcm(1, samples * 2, 7);
  const wav = new wavefile.WaveFile();
  wav.fromScratch(1, SAMPLE_RATE, '16', Array.from(new Int16Array(pcm.buffer, pcm.byteOffset, samples)));
  writeFileSync(path, wav.toBuffer());
  return pcm;
}

const definitions: Check[] = [
  {
    name: 'welcomes a user: WELCOME repeats the name and states 48000 Hz, 960 samples',
    async run(context) {
      await leave(await join(context, 'Ada')); // the slot is free
      const client = await connect(context);
      client.send(hello('Ada'));
      await expectWelcome(client, 'Ada'); // the name, "sample_rate" and "frame_samples" (join() reads only the name)
      await leave(client);
    },
  },
  {
    name: 'welcomes a Unicode name byte for byte and ignores unknown HELLO fields',
    async run(context) {
      const client = await join(context, 'Ada'); // makes sure the slot is free first
      await leave(client);
      const zoe = await connect(context);
      zoe.send(jsonFrameBytes(HELLO, { name: 'Zoë 🎧', client: 'checks', version: 2 }));
      await expectWelcome(zoe, 'Zoë 🎧');
      await leave(zoe);
    },
  },
  protocolIdServerCheck(PROTOCOL_ID),
  {
    name: 'accepts a 32-character name (characters, not bytes) and a HELLO of exactly 1024 bytes',
    async run(context) {
      const longName = 'é'.repeat(31) + '🎧'; // 32 characters, 66 bytes of UTF-8
      await leave(await join(context, longName));
      // JSON allows spaces between tokens: pad the object to the 1024-byte limit exactly.
      const start = `{"name":"Ada"`;
      const payload = start + ' '.repeat(1024 - start.length - 1) + '}';
      const client = await connect(context);
      client.send(frameBytes(HELLO, payload));
      await expectWelcome(client, 'Ada');
      await leave(client);
    },
  },
  {
    name: 'echoes 10 distinct audio frames byte-identical and in order',
    async run(context) {
      const client = await join(context, 'Ada');
      const frames = voiceFrames(10, 1);
      for (const frame of frames) client.send(audio(frame));
      await expectEcho(client, frames);
      await leave(client);
    },
  },
  {
    name: 'echoes frames whose bytes arrive split at awkward offsets (TCP is a byte stream)',
    async run(context) {
      const client = await join(context, 'Ada');
      const frames = voiceFrames(3, 2);
      const stream = Buffer.concat(frames.map(audio)); // frames start at 0, 1925, 3850
      // Inside a header, right after it, inside the length field, at frame borders, 1 byte before the end.
      const pieces = splitAt(stream, [1, 2, 5, 6, 1000, 1924, 1925, 1927, 1930, 3849, 3851, 3855, stream.length - 1]);
      await sendInPieces(client, pieces);
      await expectEcho(client, frames, 'collect bytes until a whole header (5 bytes), then a whole payload, has arrived; any split must give the same frames');
      await leave(client);
    },
  },
  {
    name: 'echoes several frames sent in one write',
    async run(context) {
      const client = await join(context, 'Ada');
      const frames = voiceFrames(5, 3);
      client.send(Buffer.concat(frames.map(audio)));
      await expectEcho(client, frames, 'one read may hold several frames: handle every frame in the chunk, not only the first');
      await leave(client);
    },
  },
  {
    name: 'handles HELLO and audio in the same write: WELCOME, then the echoes',
    async run(context) {
      await leave(await join(context, 'Ada')); // the slot is free
      const client = await connect(context);
      const frames = voiceFrames(2, 4);
      client.send(Buffer.concat([hello('Grace'), ...frames.map(audio)]));
      await expectWelcome(client, 'Grace');
      await expectEcho(client, frames, 'after HELLO, keep parsing the rest of the same chunk');
      await leave(client);
    },
  },
  {
    name: 'refuses a second user (ERROR busy) while the first keeps getting echoes',
    async run(context) {
      const ada = await join(context, 'Ada');
      const [before, after] = voiceFrames(2, 5);
      ada.send(audio(before!));
      await expectEcho(ada, [before!]);
      const bob = await connect(context);
      bob.send(hello('Bob'));
      await expectError(bob, 'busy', 'one user at a time: while someone is connected, answer HELLO with ERROR {"code":"busy",...} and close');
      ada.send(audio(after!));
      await expectEcho(ada, [after!], 'refusing a second user must not disturb the first');
      await leave(ada);
    },
  },
  {
    name: 'a malformed connection does not disturb the user',
    async run(context) {
      const ada = await join(context, 'Ada');
      const rogue = await connect(context);
      rogue.send(frameBytes(0x7f, 'garbage'));
      await expectError(rogue, 'unknown_type', 'an unknown type byte gets ERROR unknown_type');
      const frames = voiceFrames(2, 6);
      for (const frame of frames) ada.send(audio(frame));
      await expectEcho(ada, frames, 'an error on one connection must close that connection only');
      await leave(ada);
    },
  },
  {
    name: 'frees the slot at once after BYE, and closes that connection',
    async run(context) {
      const ada = await join(context, 'Ada');
      ada.send(bye()); // no FIN from us: the BYE alone must free the slot
      await ada.waitForClose(SLOT_FREE_DEADLINE_MS, 'the server to close the connection after BYE', 'after BYE, free the slot and close the connection');
      await leave(await join(context, 'Bob'));
    },
  },
  {
    name: 'frees the slot at once when the user closes the connection (FIN)',
    async run(context) {
      const ada = await join(context, 'Ada');
      ada.end();
      await leave(await join(context, 'Bob'));
    },
  },
  {
    name: 'frees the slot at once after an abrupt disconnect (reset)',
    async run(context) {
      const ada = await join(context, 'Ada');
      // No audio in flight: an echo being written when the reset lands can take the reset error
      // away from the reader (it then sees a plain end of stream), which hides a server that
      // forgets resets half of the time. Abrupt leaves mid-audio are in the hostile suite.
      ada.reset();
      await leave(await join(context, 'Bob'));
    },
  },
  {
    name: `drops a connection that sends no HELLO within ${HANDSHAKE_TIMEOUT_MS / 1000} s (ERROR handshake_timeout)`,
    async run(context) {
      const client = await connect(context);
      const started = Date.now();
      const window = timingWindow(HANDSHAKE_TIMEOUT_MS);
      const frame = await expectWithinWindow(readFrame(client, 'ERROR "handshake_timeout"', {
        timeoutMs: window.latestMs,
        hint: `a connection without a valid HELLO after ${HANDSHAKE_TIMEOUT_MS / 1000} s gets ERROR handshake_timeout and is closed`,
      }), window, 'the handshake timeout', 'ERROR handshake_timeout');
      const waited = Date.now() - started;
      const parsed = jsonObjectOf(frame.payload);
      expect(frame.type === ERROR && 'object' in parsed && parsed.object.code === 'handshake_timeout', 'expected ERROR "handshake_timeout"', {
        expected: 'ERROR (0x05) {"code": "handshake_timeout", "message": ...}',
        actual: `${typeName(frame.type)} ${frame.payload.toString('utf8').slice(0, 200)}`,
        received: client.received,
      });
      expectDuration(waited, window, 'the handshake timeout', 'ERROR handshake_timeout', `wait ${HANDSHAKE_TIMEOUT_MS} ms from the connection for a HELLO`);
      await client.waitForClose(CLOSE_AFTER_ERROR_MS);
    },
  },
  {
    name: 'refuses an unknown message type (ERROR unknown_type)',
    run: refusal(frameBytes(0x09, '{}'), 'unknown_type', 'a type byte that is not HELLO, AUDIO or BYE gets ERROR unknown_type'),
  },
  {
    name: 'refuses a server-to-client message from a client (ERROR unknown_type)',
    run: refusal(jsonFrameBytes(WELCOME, { name: 'Ada', sample_rate: 48000, frame_samples: 960 }), 'unknown_type', 'WELCOME (0x02) and ERROR (0x05) only go from server to client: from a client they are unknown_type'),
  },
  {
    name: 'refuses a declared length of 0xFFFFFFFF without waiting for the payload (ERROR frame_too_large)',
    // Only the 5 header bytes are sent: a server that waits for the 4 GB payload times out this check.
    run: refusal(Buffer.from([HELLO, 0xff, 0xff, 0xff, 0xff]), 'frame_too_large', 'check the declared length against the type\'s limit (HELLO: 1024) as soon as the 5 header bytes are in, before reading the payload'),
  },
  {
    name: 'refuses a HELLO declaring 1025 bytes (ERROR frame_too_large)',
    run: refusal(Buffer.from([HELLO, 0x00, 0x00, 0x04, 0x01]), 'frame_too_large', 'a HELLO payload is at most 1024 bytes; refuse on the header, before the payload'),
  },
  {
    name: 'refuses an AUDIO frame declaring 1921 bytes (ERROR frame_too_large)',
    run: refusal(Buffer.from([AUDIO, 0x00, 0x00, 0x07, 0x81]), 'frame_too_large', 'an AUDIO payload is exactly 1920 bytes; refuse a larger declared length on the header', { joinAs: 'Ada' }),
  },
  {
    name: 'refuses a HELLO that is not JSON (ERROR bad_json)',
    run: refusal(frameBytes(HELLO, '{"name":'), 'bad_json', 'parse the HELLO payload as JSON; if that fails, ERROR bad_json'),
  },
  {
    name: 'refuses a HELLO that is not UTF-8 (ERROR bad_utf8)',
    run: refusal(frameBytes(HELLO, Buffer.from([...Buffer.from('{"name":"A'), 0xff, 0xfe, ...Buffer.from('"}')])), 'bad_utf8', 'decode the payload as UTF-8 strictly (0xff never occurs in UTF-8); invalid bytes get ERROR bad_utf8'),
  },
  {
    name: 'refuses a HELLO without a "name" (ERROR bad_field)',
    run: refusal(jsonFrameBytes(HELLO, { nom: 'Ada' }), 'bad_field', 'a HELLO without a "name" string gets ERROR bad_field'),
  },
  {
    name: 'refuses a HELLO whose "name" is not a string (ERROR bad_field)',
    run: refusal(jsonFrameBytes(HELLO, { name: 42 }), 'bad_field', '"name" must be a JSON string; anything else gets ERROR bad_field'),
  },
  {
    name: 'refuses an empty name (ERROR bad_name)',
    run: refusal(hello(''), 'bad_name', 'names are 1 to 32 characters'),
  },
  {
    name: 'refuses a name with a terminal escape sequence (ERROR bad_name)',
    run: refusal(hello('\u001b[31mRed'), 'bad_name', 'control characters (here ESC, 0x1b) are not allowed in names'),
  },
  {
    name: 'refuses a name of 33 characters (ERROR bad_name)',
    run: refusal(hello('x'.repeat(33)), 'bad_name', 'names are at most 32 characters (count characters, not bytes)'),
  },
  {
    name: 'refuses AUDIO before HELLO (ERROR not_joined)',
    run: refusal(audio(voiceFrames(1, 8)[0]!), 'not_joined', 'AUDIO is only accepted after a successful HELLO'),
  },
  {
    name: 'refuses BYE before HELLO (ERROR not_joined)',
    run: refusal(bye(), 'not_joined', 'BYE is only accepted after a successful HELLO'),
  },
  {
    name: 'refuses a second HELLO (ERROR already_joined) and frees the slot',
    async run(context) {
      await refusal(hello('Ada'), 'already_joined', 'one HELLO per connection; a second one gets ERROR already_joined', { joinAs: 'Ada' })(context);
      await leave(await join(context, 'Bob'));
    },
  },
  {
    name: 'refuses an AUDIO frame shorter than 1920 bytes (ERROR bad_audio_size)',
    run: refusal(frameBytes(AUDIO, Buffer.alloc(100, 1)), 'bad_audio_size', 'an AUDIO payload is exactly 1920 bytes (960 samples); a shorter one gets ERROR bad_audio_size', { joinAs: 'Ada' }),
  },
  {
    name: 'a user who sends 6 MB of audio and never reads does not stall the server',
    async run(context) {
      const flooder = await join(context, 'Flood');
      flooder.pauseReading();
      const frame = audio(voiceFrames(1, 9)[0]!);
      flooder.send(Buffer.concat(Array.from({ length: 3000 }, () => frame)));
      // The server must stay responsive: a newcomer is told "busy" promptly...
      const bob = await connect(context);
      bob.send(hello('Bob'));
      await expectError(bob, 'busy', 'never block on writing to a client that does not read: drop its echoes instead');
      // ...and when the flooder vanishes, the slot is free again.
      flooder.reset();
      await leave(await join(context, 'Carol'));
    },
  },
  {
    name: 'after all that, a new user still gets a byte-exact echo',
    async run(context) {
      const client = await join(context, 'Survivor');
      const frames = voiceFrames(3, 10);
      for (const frame of frames) client.send(audio(frame));
      await expectEcho(client, frames);
      await leave(client);
    },
  },
  {
    name: 'client and server: a WAV file sent through the server comes back sample-exact',
    subject: 'client',
    async run(context) {
      await slotIsFree(context); // the client under test does not retry a busy server
      const dir = mkdtempSync(joinPath(tmpdir(), 'echo-check-'));
      try {
        const samples = SAMPLE_RATE + 500; // about 1 s, not a whole number of 960-sample frames
        const sent = writeDistinctiveWav(joinPath(dir, 'in.wav'), samples);
        const result = await runCommand(context.clientCommand, ['--name', 'Ada', '--host', context.server.host, '--port', String(context.server.port), '--input', joinPath(dir, 'in.wav'), '--output', joinPath(dir, 'out.wav')], { timeoutMs: 30_000 });
        expect(result.exitCode === 0, 'the client did not leave cleanly at the end of its input file', {
          expected: 'exit code 0 about 1 s after the input file ends', actual: describeRun(result),
          hint: 'when a FILE input ends (and there is no --duration), wait about a second for the last echoes, send BYE and exit 0',
        });
        // The echoes in order, the last frame padded with silence; the recording lasts the session (the file's length, and a little).
        const padded = Buffer.alloc(Math.ceil(sent.length / FRAME_BYTES) * FRAME_BYTES);
        sent.copy(padded);
        const frames = Array.from({ length: padded.length / FRAME_BYTES }, (_, i) => padded.subarray(i * FRAME_BYTES, (i + 1) * FRAME_BYTES));
        expectRecording(joinPath(dir, 'out.wav'), frames, (samples / SAMPLE_RATE) * 1000, 'the echoes');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  },
  {
    name: 'client: sends a HELLO frame with its name first',
    subject: 'client',
    async run(context) {
      const { first, result, transcript } = await fakeEchoSession(context, 'Zoë 🎧', 1);
      const parsed = jsonObjectOf(first.payload);
      expect(first.type === HELLO && 'object' in parsed && parsed.object.name === 'Zoë 🎧', 'the client did not start with HELLO', {
        expected: 'a HELLO frame (0x01) with payload {"name":"Zoë 🎧"} (UTF-8 JSON)',
        actual: `${typeName(first.type)} ${first.payload.toString('utf8').slice(0, 200)}; client ${describeRun(result)}`,
        received: transcript.received,
        hint: 'the first bytes are 0x01, the payload length as u32 big-endian, then the JSON object',
      });
    },
  },
  {
    name: `client: with --duration ${DURATION_SECONDS} and standard input closed at once, it sends 1920-byte AUDIO frames for the duration (at least ${MIN_DURATION_FRAMES} of the ${DURATION_FRAMES}), then BYE, and exits 0`,
    subject: 'client',
    async run(context) {
      // runCommand closes the client's standard input at once: a client that takes the end of its
      // input for a command to leave sends only the frames of its first moments.
      const { after, result, transcript } = await fakeEchoSession(context, 'Ada', DURATION_SECONDS);
      const last = after.at(-1);
      const audioFrames = after.filter((frame) => frame.type === AUDIO);
      const wrongSize = audioFrames.find((frame) => frame.payload.length !== FRAME_BYTES);
      expect(last?.type === BYE && last.payload.length === 0 && audioFrames.length === after.length - 1 && audioFrames.length > 0 && !wrongSize, 'the client did not send audio and then BYE', {
        expected: 'AUDIO frames of 1920 bytes, then one empty BYE frame (0x04, length 0)',
        actual: `${after.map((frame) => typeName(frame.type)).slice(-3).join(', ')} (${after.length} frames after WELCOME)${wrongSize ? `; an AUDIO frame of ${wrongSize.payload.length} bytes` : ''}`,
        received: transcript.received.subarray(-200),
        hint: 'after WELCOME send one AUDIO frame per 20 ms; when --duration is over, send BYE and close',
      });
      expect(audioFrames.length >= MIN_DURATION_FRAMES, 'the client left before --duration was over (its standard input was closed)', {
        expected: `with --duration ${DURATION_SECONDS}, one AUDIO frame per 20 ms until it is over: at least ${MIN_DURATION_FRAMES} of the ${DURATION_FRAMES} frames before BYE (the README: "The end of standard input does not end the client")`,
        actual: `${audioFrames.length} AUDIO frames, then BYE; client ${describeRun(result)}`,
        hint: 'the end of standard input is not a command to leave (scripts run the client with no input): stop reading commands, keep sending until --duration is over',
      });
      expect(result.exitCode === 0, 'the client did not exit 0 after leaving', {
        expected: 'exit code 0 after a clean leave', actual: describeRun(result),
        hint: 'after BYE, close the connection and the output, and exit 0',
      });
    },
  },
  {
    name: 'client: ERROR busy gives one line on stderr and a non-zero exit, with the ESC, U+2028 and U+202E of its message not printed raw',
    subject: 'client',
    async run(context) {
      const result = await clientFacing(context, async (connection) => {
        connection.send(jsonFrameBytes(ERROR, { code: 'busy', message: HOSTILE_ERROR_MESSAGE }));
        connection.end();
      });
      expectOneLineFailure(result, 'the client did not report the refusal in one line', /someone else is talking|busy/, 'on ERROR print its message (and code) in one line and exit non-zero; no stack trace');
      const raw = rawCharacters([result.stdout, result.stderr], [...HOSTILE_CHARACTERS]);
      expect(raw.length === 0, `the client printed ${raw.join(', ')} from the server's ERROR message raw`, {
        expected: `the message ${JSON.stringify(HOSTILE_ERROR_MESSAGE)} shown with ESC (U+001B), the line separator U+2028 and the bidi override U+202E escaped (for example \\x1b, \\u2028, \\u202e), never raw`,
        actual: `raw ${raw.join(', ')} on standard output or standard error; ${describeRun(result)}`,
        hint: 'the README: every string a server sends is printed with control characters, line and paragraph separators and bidirectional controls (U+202A-U+202E, U+2066-U+2069) escaped',
      });
    },
  },
  {
    name: 'client: a refused connection gives one line and a non-zero exit',
    subject: 'client',
    async run(context) {
      const port = await freePort(); // nothing listens there
      const result = await runCommand(context.clientCommand, ['--name', 'Ada', '--host', '127.0.0.1', '--port', String(port), ...QUIET_AUDIO], { timeoutMs: 20_000 });
      expectOneLineFailure(result, 'the client did not explain a refused connection', /refused/i, 'catch the connection error and print one readable line');
    },
  },
  {
    name: 'client: a server that answers garbage gives one line and a non-zero exit',
    subject: 'client',
    async run(context) {
      const result = await clientFacing(context, async (connection) => {
        connection.send('HTTP/1.1 400 Bad Request\r\n\r\n'); // "H" = 0x48: not a message type
      });
      expectOneLineFailure(result, 'the client did not report a garbled answer in one line', /./, 'a frame of an unknown type from the server: print one line and exit non-zero');
    },
  },
  protocolIdClientCheck(PROTOCOL_ID, QUIET_AUDIO),
  {
    name: 'client: a server that vanishes mid-session gives one line and a non-zero exit',
    subject: 'client',
    async run(context) {
      const result = await clientFacing(context, async (connection) => {
        connection.send(jsonFrameBytes(WELCOME, { name: 'Ada', sample_rate: SAMPLE_RATE, frame_samples: FRAME_BYTES / 2 }));
        await readFrame(connection, 'a first AUDIO frame', { timeoutMs: 5_000 });
        connection.destroy();
      });
      expectOneLineFailure(result, 'the client did not report the lost server in one line', /./, 'when the server closes or resets the connection, print one line and exit non-zero');
    },
  },
];

/** Every check, dropping the connections it opened when it ends (passed or failed). */
export const checks: Check[] = definitions.map(({ run, ...check }) => ({
  ...check,
  async run(context) {
    try {
      await run(context);
    } finally {
      for (const client of openConnections) client.destroy();
      openConnections.clear();
    }
  },
}));
