// Stage 07's client checks: the client under test (CLIENT_CMD, default the reference) is run
// through its command line against a fake server that plays the server's part with raw frames.
// They use only the protocol and the command line in 07-chat-files/README.md (nothing from
// 07-chat-files/ is imported): chat lines and commands typed on standard input, TEXT shown with
// its sender and never raw, files received into --downloads (real files in a temporary folder the
// check inspects) and sent with --send within the credit the fake server grants.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join as joinPath, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FRAME_MS, SAMPLE_RATE } from '#shared/audio/format.ts';
import { expect, type Check, type CheckContext } from '../harness/checks.ts';
import { describeFrames, finishSession, orStop, startSession as startClientSession, type Session } from '../harness/client-session.ts';
import { frameBytes, jsonFrameBytes, jsonObjectOf, type WireFrame } from '../harness/frame-wire.ts';
import { controlLimitClientCheck } from '../harness/control-limit-check.ts';
import { rawCharacters } from '../harness/program-output.ts';
import { udpReturnCheck } from '../harness/udp-return-check.ts';
import type { UdpClientStage } from './06-udp-client.ts';

// The message types of the README's table.
const WELCOME = 0x02;
const USERS = 0x06;
const TEXT = 0x0f;
const OFFER = 0x11;
const OFFERED = 0x12;
const CHUNK = 0x13;
const ACK = 0x14;
const CREDIT = 0x15;
const CANCEL = 0x16;
const TRANSFER_END = 0x17;
const TYPE_NAMES: Record<number, string> = { 0x01: 'HELLO', 0x03: 'VOICE', 0x04: 'BYE', 0x0e: 'PATH', [TEXT]: 'TEXT', [OFFER]: 'OFFER', [CHUNK]: 'CHUNK', [ACK]: 'ACK', [CANCEL]: 'CANCEL' };

const PROTOCOL = 'voice-chat/07';
const OWN_ID = 7;
const BOB = { id: 1, name: 'Bob' };
const CHUNK_DATA = 16_384;
/** The README: a receiver ACKs at the latest when it has written 32 KiB since its last ACK; the window is 64 KiB. */
const RECEIVE_WINDOW = 64 * 1024;

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Stage 07's, the default: its protocol and plain USERS entries. */
const STAGE_07: UdpClientStage = { protocol: PROTOCOL };

/**
 * Runs the client against a fake server that welcomes it into "lobby" with Bob (and --tcp: the
 * checks need no UDP), in `stage`'s words (08: its protocol, USERS entries with in_call).
 */
function startSession(context: CheckContext, args: string[], stage = STAGE_07): Promise<Session> {
  return startClientSession(context, 'Ada', ['--input', 'silence', '--output', 'null', '--tcp', ...args], (hello) => {
    const room = typeof hello.room === 'string' ? hello.room : 'lobby';
    return Buffer.concat([
      jsonFrameBytes(WELCOME, { name: 'Ada', room, id: OWN_ID, protocol: stage.protocol, codec: 'opus', sample_rate: SAMPLE_RATE, frame_ms: FRAME_MS, channels: 1, token: '5ac1e0b79d2f4e63', udp_port: 9 }),
      jsonFrameBytes(USERS, { room, users: [BOB, { id: OWN_ID, name: 'Ada' }].map((user) => ({ ...user, ...stage.userFields })) }),
    ]);
  });
}

function chunkBytes(transfer: number, offset: number, data: Buffer): Buffer {
  const head = Buffer.alloc(6);
  head.writeUInt16BE(transfer, 0);
  head.writeUInt32BE(offset, 2);
  return frameBytes(CHUNK, Buffer.concat([head, data]));
}

function creditBytes(transfer: number, until: number): Buffer {
  const payload = Buffer.alloc(6);
  payload.writeUInt16BE(transfer, 0);
  payload.writeUInt32BE(until, 2);
  return frameBytes(CREDIT, payload);
}

function textsIn(frames: WireFrame[]): string[] {
  return frames.filter((frame) => frame.type === TEXT).map((frame) => {
    const parsed = jsonObjectOf(frame.payload);
    return 'object' in parsed ? String(parsed.object.text) : '(not JSON)';
  });
}

/** The highest `received` the client has ACKed for `transfer`, or -1. */
function ackedOf(frames: WireFrame[], transfer: number): number {
  let acked = -1;
  for (const frame of frames) {
    if (frame.type === ACK && frame.payload.length === 6 && frame.payload.readUInt16BE(0) === transfer) acked = Math.max(acked, frame.payload.readUInt32BE(2));
  }
  return acked;
}

/** Every file under `root`, as paths relative to it (the check's view of "what changed on disk"). */
function filesUnder(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => !entry.isDirectory())
    .map((entry) => relative(root, joinPath(entry.parentPath ?? entry.path, entry.name)))
    .sort();
}

/** A temporary folder holding <root>/a/b/downloads, so that "../../x" from the downloads folder is <root>/a/x. */
async function inSandbox<T>(steps: (root: string, downloads: string) => Promise<T>): Promise<T> {
  const root = mkdtempSync(joinPath(tmpdir(), 'chat-files-check-'));
  const downloads = joinPath(root, 'a', 'b', 'downloads');
  mkdirSync(downloads, { recursive: true });
  try {
    return await steps(root, downloads);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * Offers `data` as transfer `transfer` named `name` (with `announced` as its SHA-256), sends it in
 * chunks within the window, and waits for the ACK of every byte; with `holdLast`, of every byte
 * but the last chunk's, which it returns for the check to send (as a server does, with TRANSFER_END
 * right behind it).
 */
async function relayFile(session: Session, transfer: number, name: string, data: Buffer, { announcedSha256 = sha256(data), holdLast = false } = {}): Promise<Buffer | null> {
  const { connection } = session;
  connection.send(jsonFrameBytes(OFFER, { transfer, from: BOB, name, size: data.length, sha256: announcedSha256, private: false }));
  const lastOffset = Math.floor((data.length - 1) / CHUNK_DATA) * CHUNK_DATA;
  const until = holdLast ? lastOffset : data.length;
  for (let offset = 0; offset < until; offset += CHUNK_DATA) {
    // Within the README's receive window: never more than 64 KiB past the client's last ACK.
    await connection.waitFor(
      () => (offset + CHUNK_DATA <= Math.max(0, ackedOf(session.sent(), transfer)) + RECEIVE_WINDOW ? true : undefined),
      10_000,
      `an ACK (0x14) for transfer ${transfer} of at least ${offset + CHUNK_DATA - RECEIVE_WINDOW} bytes`,
      'write each CHUNK to your part file, then ACK: 14 | len 6 | transfer u16 | received u32 (bytes written so far)',
    );
    connection.send(chunkBytes(transfer, offset, data.subarray(offset, offset + CHUNK_DATA)));
  }
  await connection.waitFor(
    () => (ackedOf(session.sent(), transfer) === until ? true : undefined),
    10_000,
    `an ACK (0x14) for transfer ${transfer} with received = ${until}${holdLast ? ' (every byte before the last chunk)' : ' (every byte)'}`,
    'ACK each chunk once it is written: transfer u16 | received u32, the bytes of the file written so far',
  );
  return holdLast ? chunkBytes(transfer, lastOffset, data.subarray(lastOffset)) : null;
}

/**
 * Waits until the client shows a TEXT sent after WELCOME and USERS: it has then handled them (frames
 * are handled in order), so lines typed from now on are typed in a room.
 */
async function welcomed(session: Session): Promise<void> {
  session.connection.send(jsonFrameBytes(TEXT, { from: BOB, text: 'ready when you are' }));
  await session.client.waitForStdout((out) => out.includes('ready when you are'), 5_000, 'the text of a TEXT from Bob ("ready when you are") on standard output', 'show each TEXT the server sends as NAME: TEXT');
}

/**
 * The client's chat and file checks, for the stages whose client keeps stage 07's (07, and 08:
 * "Stage 07's client and command line, plus ..."), under the same names.
 */
export function chatFilesClientChecksFor(stage: UdpClientStage): Check[] {
  return [
    {
      name: 'client: a typed line is sent as TEXT; "/say" sends a line starting with "/"; a "/" command and an unknown "/word" are never sent as TEXT; the old word "exit" still leaves',
      subject: 'client',
      async run(context) {
        await inSandbox(async (_root, downloads) => {
          const session = await startSession(context, ['--downloads', downloads], stage);
          await orStop(session, async () => {
            await welcomed(session);
            session.client.type('hello room\n/frobnicate now\njoin us at 8\n/users\n/say /join is a command\n');
            await session.connection.waitFor(() => (textsIn(session.sent()).length >= 3 ? true : undefined), 5_000, 'three TEXT (0x0F) frames', 'a line that does not start with "/" is a chat line: TEXT {"text": the line}');
            session.client.type('exit\n');
          });
          const { frames } = await finishSession(session, 5_000, 'after the old word exit');
          const texts = textsIn(frames);
          const expected = ['hello room', 'join us at 8', '/join is a command'];
          expect(JSON.stringify(texts) === JSON.stringify(expected), 'the chat lines sent are not exactly the typed chat lines', {
            expected: `TEXT frames with ${JSON.stringify(expected)}, in that order, and no other TEXT`,
            actual: `TEXT frames with ${JSON.stringify(texts)}; every frame after WELCOME: ${describeFrames(frames, TYPE_NAMES)}`,
            hint: 'typed: "hello room", "/frobnicate now" (unknown command: print a hint, send nothing), "join us at 8" (chat: not the old word join with one room id), "/users" (a command), "/say /join is a command" (TEXT "/join is a command"), then "exit"',
          });
        });
      },
    },
    {
      name: 'client: a received TEXT is shown with its sender\'s name, and its ESC and U+202E never reach standard output raw',
      subject: 'client',
      async run(context) {
        await inSandbox(async (_root, downloads) => {
          const session = await startSession(context, ['--downloads', downloads, '--duration', '2'], stage);
          await orStop(session, async () => {
            session.connection.send(jsonFrameBytes(TEXT, { from: BOB, text: 'hi \u001b[2J there \u202Egnp.exe' }));
            await session.client.waitForStdout(
              (out) => /Bob\S*: hi /.test(out) && out.includes('there'),
              5_000,
              'a line with "Bob: hi " and the rest of the text',
              'show each TEXT as NAME: TEXT, with every control and bidi character escaped (as names are)',
            );
          });
          const { result } = await finishSession(session, 5_000, 'when --duration 2 is over');
          const raw = rawCharacters([result.stdout], ['\u001b', '\u202e']);
          expect(raw.length === 0, 'a control or bidi character from a TEXT reached standard output raw', {
            expected: 'no ESC (U+001B) and no U+202E on standard output: shown escaped, e.g. \\x1b and \\u202e',
            actual: `raw characters ${raw.join(', ')} in ${JSON.stringify(result.stdout.slice(-300))}`,
            hint: 'pass every name and text through the printable() rule before showing it: another user must not drive your terminal',
          });
        });
      },
    },
    {
      name: 'client: a file offered as "../../x" lands inside --downloads with the right bytes, never under its final name before TRANSFER_END complete, and nothing outside the folder changes',
      subject: 'client',
      async run(context) {
        await inSandbox(async (root, downloads) => {
          const data = randomBytes(40_000);
          const session = await startSession(context, ['--downloads', downloads, '--duration', '4'], stage);
          await orStop(session, async () => {
            const lastChunk = (await relayFile(session, 5, '../../x', data, { holdLast: true }))!;
            const before = filesUnder(root);
            const visible = before.filter((path) => !(path.startsWith('a/b/downloads/') && basename(path).startsWith('.')));
            expect(visible.length === 0, 'a file appeared under a visible name before TRANSFER_END complete', {
              expected: 'while the last chunk is withheld, only a temporary hidden file (a name starting with ".") in the downloads folder',
              actual: `files under the sandbox: ${JSON.stringify(before)}`,
              hint: 'write to a temporary part file (.voice-chat-<transfer>-<random>.part) and give the file its final name only after size and SHA-256 are checked',
            });
            // The last chunk and TRANSFER_END in one write, as a server sends them: the chunk must still be written first.
            session.connection.send(Buffer.concat([lastChunk, jsonFrameBytes(TRANSFER_END, { transfer: 5, result: 'complete', message: 'all bytes sent, SHA-256 matches' })]));
            await session.connection.waitFor(
              () => {
                const files = filesUnder(root);
                return files.length === 1 && !basename(files[0]!).startsWith('.') ? files : undefined;
              },
              5_000,
              'exactly one file in the sandbox, not hidden, after TRANSFER_END complete',
              'after complete: check size and SHA-256, link the part file to its safe name, remove the part file',
            );
          });
          await finishSession(session, 6_000, 'when --duration 4 is over');
          const files = filesUnder(root);
          const inside = files.length === 1 && files[0]!.startsWith('a/b/downloads/') && !files[0]!.slice('a/b/downloads/'.length).includes('/');
          expect(inside, 'the file did not land directly inside --downloads', {
            expected: 'one file directly in a/b/downloads (the offered "../../x" would be a/x)',
            actual: `files under the sandbox: ${JSON.stringify(files)}`,
            hint: 'never use an offered name as a path: replace separators, remove leading dots (README "Received files: where they land")',
          });
          const saved = readFileSync(joinPath(root, files[0]!));
          expect(saved.equals(data), 'the saved file does not hold the bytes sent', {
            expected: `${data.length} bytes, SHA-256 ${sha256(data)}`,
            actual: `${saved.length} bytes, SHA-256 ${sha256(saved)} in ${files[0]}`,
            hint: 'write each CHUNK at its offset, in order',
          });
        });
      },
    },
    {
      name: 'client: a file whose bytes do not match the offered SHA-256, one cancelled mid-way and one ended "moved" mid-way leave no file at all',
      subject: 'client',
      async run(context) {
        await inSandbox(async (root, downloads) => {
          const session = await startSession(context, ['--downloads', downloads, '--duration', '3'], stage);
          await orStop(session, async () => {
            const data = randomBytes(20_000);
            await relayFile(session, 6, 'lie.bin', data, { announcedSha256: sha256(Buffer.from('something else')) });
            // A server that does not check the hash (or lies): the client must check it itself.
            session.connection.send(jsonFrameBytes(TRANSFER_END, { transfer: 6, result: 'complete', message: 'all bytes sent' }));
            session.connection.send(jsonFrameBytes(OFFER, { transfer: 8, from: BOB, name: 'half.bin', size: 100_000, sha256: sha256(Buffer.alloc(100_000)), private: false }));
            session.connection.send(chunkBytes(8, 0, Buffer.alloc(CHUNK_DATA)));
            await session.connection.waitFor(() => (ackedOf(session.sent(), 8) === CHUNK_DATA ? true : undefined), 5_000, 'the ACK of the first chunk of transfer 8', 'ACK each chunk once written');
            session.connection.send(jsonFrameBytes(TRANSFER_END, { transfer: 8, result: 'cancelled', message: 'Bob cancelled', by: BOB }));
            // A receiver that moved (or whose transfer ended otherwise) removes its part file too.
            session.connection.send(jsonFrameBytes(OFFER, { transfer: 10, from: BOB, name: 'moved.bin', size: 100_000, sha256: sha256(Buffer.alloc(100_000)), private: false }));
            session.connection.send(chunkBytes(10, 0, Buffer.alloc(CHUNK_DATA)));
            await session.connection.waitFor(() => (ackedOf(session.sent(), 10) === CHUNK_DATA ? true : undefined), 5_000, 'the ACK of the first chunk of transfer 10', 'ACK each chunk once written');
            session.connection.send(jsonFrameBytes(TRANSFER_END, { transfer: 10, result: 'moved', message: 'you moved to another room' }));
          });
          await finishSession(session, 6_000, 'when --duration 3 is over');
          const files = filesUnder(root);
          expect(files.length === 0, 'a file was left behind by a failed or cancelled transfer', {
            expected: 'nothing under the sandbox: a hash mismatch keeps nothing, the part files of transfers ended cancelled or moved are removed',
            actual: `files under the sandbox: ${JSON.stringify(files)}`,
            hint: 'compare the SHA-256 of what you wrote with the OFFER\'s before keeping a file; on any other TRANSFER_END remove the part file',
          });
        });
      },
    },
    {
      name: 'client: --send FILE offers its name, size and SHA-256, then sends its bytes as CHUNKs in order and never past the CREDIT granted',
      subject: 'client',
      async run(context) {
        await inSandbox(async (root, downloads) => {
          const data = randomBytes(100_000);
          const path = joinPath(root, 'report.bin');
          writeFileSync(path, data);
          const session = await startSession(context, ['--downloads', downloads, '--send', path, '--duration', '6'], stage);
          const chunks = () => session.sent().filter((frame) => frame.type === CHUNK);
          const chunkBytesSent = () => chunks().reduce((sum, frame) => sum + frame.payload.length - 6, 0);
          await orStop(session, async () => {
            const offer = await session.connection.waitFor(
              () => session.sent().find((frame) => frame.type === OFFER),
              5_000,
              'an OFFER (0x11) after WELCOME',
              'with --send FILE, offer the file as soon as you are welcomed: OFFER {"name","size","sha256"}',
            );
            const parsed = jsonObjectOf(offer.payload);
            const fields = 'object' in parsed ? parsed.object : {};
            expect(fields.name === 'report.bin' && fields.size === data.length && fields.sha256 === sha256(data), 'the OFFER does not describe the file', {
              expected: `OFFER {"name":"report.bin","size":${data.length},"sha256":"${sha256(data)}"}`,
              actual: `OFFER ${offer.payload.toString('utf8').slice(0, 300)}`,
              hint: 'name: the file\'s base name; size: its bytes; sha256: 64 lowercase hex digits of its SHA-256',
            });
            expect(chunks().length === 0, 'the client sent CHUNKs before any CREDIT', {
              expected: 'no CHUNK before OFFERED and CREDIT',
              actual: `${chunks().length} CHUNK frames`,
              hint: 'send a file\'s bytes only within the credit the server grants (CREDIT until)',
            });
            session.connection.send(jsonFrameBytes(OFFERED, { transfer: 9, name: 'report.bin', size: data.length, sha256: sha256(data), receivers: [BOB] }));
            session.connection.send(creditBytes(9, 20_000));
            await session.connection.waitFor(() => (chunkBytesSent() >= 20_000 ? true : undefined), 5_000, 'CHUNKs (0x13) of 20000 bytes in all (the first CREDIT)', 'after CREDIT until N, send the bytes before offset N');
            await sleep(500); // would it go past the credit, given the time?
            const stopped = chunkBytesSent();
            expect(stopped === 20_000, 'the client sent bytes past its CREDIT', {
              expected: 'exactly 20000 bytes of CHUNK data after CREDIT until 20000 (a chunk may be shorter than 16384 to end at the credit)',
              actual: `${stopped} bytes in ${chunks().length} CHUNKs`,
              hint: 'never send a byte at or past the latest CREDIT until',
            });
            session.connection.send(creditBytes(9, 60_000));
            await sleep(300);
            session.connection.send(creditBytes(9, data.length + 50_000)); // credit may pass the size: the rest may go
            await session.connection.waitFor(() => (chunkBytesSent() >= data.length ? true : undefined), 5_000, `CHUNKs of ${data.length} bytes in all`, 'send the whole file once the credit allows');
            session.connection.send(jsonFrameBytes(TRANSFER_END, { transfer: 9, result: 'complete', message: 'delivered', delivered: 1, dropped: 0 }));
          });
          const { frames } = await finishSession(session, 8_000, 'when --duration 6 is over');
          const sent = frames.filter((frame) => frame.type === CHUNK);
          let expectedOffset = 0;
          const problems: string[] = [];
          for (const frame of sent) {
            const transfer = frame.payload.readUInt16BE(0);
            const offset = frame.payload.readUInt32BE(2);
            const length = frame.payload.length - 6;
            if (transfer !== 9 || offset !== expectedOffset || length < 1 || length > CHUNK_DATA) problems.push(`transfer ${transfer} offset ${offset} length ${length} (expected transfer 9, offset ${expectedOffset}, 1-16384 bytes)`);
            expectedOffset = offset + length;
          }
          const joined = Buffer.concat(sent.map((frame) => frame.payload.subarray(6)));
          expect(problems.length === 0 && joined.equals(data), 'the CHUNKs are not the file, in order', {
            expected: `CHUNKs of transfer 9 at consecutive offsets from 0, 1-16384 bytes each, together the ${data.length} bytes of the file`,
            actual: problems.length > 0 ? problems.slice(0, 3).join('; ') : `${joined.length} bytes, SHA-256 ${sha256(joined)}`,
            hint: 'CHUNK: transfer u16 | offset u32 (the bytes sent before) | data',
          });
        });
      },
    },
  ];
}

export const clientChecks: Check[] = [
  ...chatFilesClientChecksFor(STAGE_07),
  // startSession runs the client as Ada.
  controlLimitClientCheck({ usersType: USERS, start: (context) => startSession(context, []), users: (names) => ({ room: 'lobby', users: names.map((name, i) => ({ id: i === 0 ? OWN_ID : 100 + i, name })) }), usersCommand: '/users' }),
  // Stage 06's UDP path rules hold (README, Timing and limits: UDP down, UDP up again).
  udpReturnCheck({ protocol: PROTOCOL }),
];
