// Stage 07's new messages (07-chat-files/chat-messages.ts, chat-limits.ts, protocol.ts), checked
// against bytes written out by hand from the README's layouts, so encoders and parsers are held to
// the page rather than to each other.
import t from 'tap';
import {
  EMPTY_SHA256,
  MAX_CHUNK_PAYLOAD_BYTES,
  MAX_FILE_NAME_BYTES,
  MAX_TEXT_CHARS,
  ackFrame,
  cancelFrame,
  chunkFrame,
  creditFrame,
  fileNameProblem,
  offerFrame,
  offeredFrame,
  parseAck,
  parseCancel,
  parseChunk,
  parseClientOffer,
  parseClientText,
  parseCredit,
  parseOffered,
  parseRefused,
  parseServerOffer,
  parseServerText,
  parseTransferEnd,
  refusedFrame,
  relayedChunkFrame,
  serverOfferFrame,
  serverTextFrame,
  textFrame,
  textProblem,
  transferEndFrame,
} from '../07-chat-files/chat-messages.ts';
import { ErrorCode, MessageType, PROTOCOL, clientMessageLimit, clientMessageMinimum, serverMessageLimit, tooShortCode } from '../07-chat-files/protocol.ts';
import { createHash } from 'node:crypto';

function codeOf(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

const payloadOf = (frame: Buffer): Buffer => frame.subarray(5);
const sha = 'ab'.repeat(32);

t.test('protocol name and the new type bytes', async (t) => {
  t.equal(PROTOCOL, 'voice-chat/07');
  t.same(
    [MessageType.text, MessageType.refused, MessageType.offer, MessageType.offered, MessageType.chunk, MessageType.ack, MessageType.credit, MessageType.cancel, MessageType.transferEnd],
    [0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17],
  );
});

t.test('frame limits a client may declare, and the server-only types are unknown from a client', async (t) => {
  t.equal(clientMessageLimit(0x0f), 8192, 'TEXT: 8 KiB');
  t.equal(clientMessageLimit(0x11), 2048, 'OFFER: 2 KiB');
  t.equal(clientMessageLimit(0x13), 16390, 'CHUNK: 6 + 16384');
  t.equal(clientMessageLimit(0x14), 6, 'ACK: exactly 6');
  t.equal(clientMessageMinimum(0x14), 6);
  t.equal(clientMessageMinimum(0x13), 7);
  t.equal(tooShortCode(0x13), 'bad_chunk');
  t.equal(tooShortCode(0x14), 'bad_ack');
  for (const serverOnly of [0x10, 0x12, 0x15, 0x17]) t.equal(clientMessageLimit(serverOnly), undefined, `0x${serverOnly.toString(16)} from a client is unknown_type`);
  t.equal(serverMessageLimit(0x15), 6);
  t.equal(serverMessageLimit(0x13), MAX_CHUNK_PAYLOAD_BYTES);
});

t.test('TEXT: the README example bytes both ways', async (t) => {
  t.same([...textFrame('hi all')], [0x0f, 0, 0, 0, 0x11, ...Buffer.from('{"text":"hi all"}')]);
  const stamped = serverTextFrame({ id: 2, name: 'Ada' }, 'hi all');
  t.same(stamped.subarray(0, 5), Buffer.from([0x0f, 0, 0, 0, 0x2e]), '46-byte payload as in the README');
  t.equal(payloadOf(stamped).toString(), '{"from":{"id":2,"name":"Ada"},"text":"hi all"}');
  t.same(parseServerText(payloadOf(stamped)), { from: { id: 2, name: 'Ada' }, text: 'hi all' });
  const privateLine = serverTextFrame({ id: 2, name: 'Ada' }, 'psst', { id: 1, name: 'Bob' });
  t.same(parseServerText(payloadOf(privateLine)).to, { id: 1, name: 'Bob' });
  t.same(parseClientText(payloadOf(textFrame('x', 7))), { text: 'x', to: 7 });
  t.equal(codeOf(() => parseClientText(Buffer.from('{"text":3}'))), 'bad_field');
  t.equal(codeOf(() => parseClientText(Buffer.from('{"text":"a","to":0}'))), 'bad_field');
  t.equal(codeOf(() => parseClientText(Buffer.from('{"text":"a","to":1.5}'))), 'bad_field');
  t.equal(codeOf(() => parseClientText(Buffer.from('{"text":'))), 'bad_json');
  t.equal(codeOf(() => parseClientText(Buffer.from([0xff]))), 'bad_utf8');
});

t.test('the text rule', async (t) => {
  t.equal(textProblem('a'.repeat(MAX_TEXT_CHARS)), null, '1000 characters pass');
  t.match(textProblem('a'.repeat(MAX_TEXT_CHARS + 1)), /1001/);
  t.equal(textProblem('😀'.repeat(1000)), null, 'code points, not UTF-16 units');
  t.not(textProblem(''), null);
  t.not(textProblem('   '), null, 'blank');
  t.not(textProblem('a\x1b[2Jb'), null, 'ESC');
  t.not(textProblem('a\u202eb'), null, 'RLO');
  t.not(textProblem('a\nb'), null, 'LF');
  t.not(textProblem('a\tb'), null, 'TAB');
  t.equal(textProblem('שלום \u200f'), null, 'right-to-left text and marks pass');
});

t.test('the file name rule', async (t) => {
  t.equal(fileNameProblem('report.pdf'), null);
  t.equal(fileNameProblem('a'.repeat(MAX_FILE_NAME_BYTES)), null, '255 bytes pass');
  t.not(fileNameProblem('a'.repeat(MAX_FILE_NAME_BYTES + 1)), null);
  t.not(fileNameProblem('é'.repeat(128)), null, '256 bytes of UTF-8 in 128 characters');
  for (const bad of ['', '.', '..', 'a/b', '../../x', 'a\\b', 'a\x1bb', 'a\u202etxt.exe']) t.not(fileNameProblem(bad), null, JSON.stringify(bad));
});

t.test('OFFER, OFFERED and the server OFFER', async (t) => {
  const frame = offerFrame({ name: 'report.pdf', size: 20971520, sha256: sha });
  t.equal(frame[0], 0x11);
  t.equal(frame.readUInt32BE(1), frame.length - 5);
  t.equal(payloadOf(frame).toString(), `{"name":"report.pdf","size":20971520,"sha256":"${sha}"}`);
  t.same(parseClientOffer(payloadOf(frame)), { name: 'report.pdf', size: 20971520, sha256: sha });
  t.same(parseClientOffer(payloadOf(offerFrame({ name: 'a', size: 0, sha256: EMPTY_SHA256, to: 3 }))).to, 3);
  t.equal(createHash('sha256').update(Buffer.alloc(0)).digest('hex'), EMPTY_SHA256);
  t.equal(codeOf(() => parseClientOffer(Buffer.from(`{"name":"a","size":-1,"sha256":"${sha}"}`))), 'bad_field');
  t.equal(codeOf(() => parseClientOffer(Buffer.from(`{"name":"a","size":1.5,"sha256":"${sha}"}`))), 'bad_field');
  t.equal(codeOf(() => parseClientOffer(Buffer.from(`{"name":"a","size":1,"sha256":"${sha.toUpperCase()}"}`))), 'bad_field', 'uppercase hex');
  t.equal(codeOf(() => parseClientOffer(Buffer.from(`{"name":5,"size":1,"sha256":"${sha}"}`))), 'bad_field');
  const offer = { transfer: 7, from: { id: 2, name: 'Ada' }, name: 'report.pdf', size: 3, sha256: sha, private: false };
  t.equal(payloadOf(serverOfferFrame(offer)).toString(), `{"transfer":7,"from":{"id":2,"name":"Ada"},"name":"report.pdf","size":3,"sha256":"${sha}","private":false}`);
  t.same(parseServerOffer(payloadOf(serverOfferFrame(offer))), offer);
  const offered = { transfer: 7, name: 'report.pdf', size: 3, sha256: sha, receivers: [{ id: 1, name: 'Bob' }] };
  t.same(parseOffered(payloadOf(offeredFrame(offered))), offered);
  t.equal(offeredFrame(offered)[0], 0x12);
});

t.test('CHUNK, ACK, CREDIT: the README bytes', async (t) => {
  const data = Buffer.alloc(16384, 0x25);
  const chunk = chunkFrame(7, 0, data);
  t.same([...chunk.subarray(0, 11)], [0x13, 0x00, 0x00, 0x40, 0x06, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00]);
  t.equal(chunk.length, 5 + 6 + 16384);
  t.same(relayedChunkFrame(payloadOf(chunk)), chunk, 'the relayed frame is the sender frame byte for byte');
  const parsed = parseChunk(payloadOf(chunkFrame(9, 0x01020304, Buffer.from('xyz'))));
  t.same([parsed.transfer, parsed.offset, parsed.data.toString()], [9, 0x01020304, 'xyz']);
  t.equal(codeOf(() => parseChunk(Buffer.alloc(6))), 'bad_chunk', 'no data');
  t.same([...ackFrame(7, 16384)], [0x14, 0, 0, 0, 6, 0x00, 0x07, 0x00, 0x00, 0x40, 0x00]);
  t.same(parseAck(Buffer.from([0x00, 0x07, 0x00, 0x00, 0x40, 0x00])), { transfer: 7, received: 16384 });
  t.equal(codeOf(() => parseAck(Buffer.alloc(5))), 'bad_ack');
  t.same([...creditFrame(7, 262144)], [0x15, 0, 0, 0, 6, 0x00, 0x07, 0x00, 0x04, 0x00, 0x00]);
  t.same([...creditFrame(7, 278528)].slice(5), [0x00, 0x07, 0x00, 0x04, 0x40, 0x00]);
  t.same(parseCredit(Buffer.from([0x00, 0x07, 0x00, 0x04, 0x00, 0x00])), { transfer: 7, until: 262144 });
});

t.test('CANCEL, REFUSED, TRANSFER_END', async (t) => {
  t.equal(payloadOf(cancelFrame(7)).toString(), '{"transfer":7}');
  t.equal(parseCancel(payloadOf(cancelFrame(7))), 7);
  t.equal(codeOf(() => parseCancel(Buffer.from('{}'))), 'bad_field');
  const refused = refusedFrame('text', ErrorCode.rateLimited, 'at most 10 messages at once, then 1 a second');
  t.equal(refused[0], 0x10);
  t.same(parseRefused(payloadOf(refused)), { request: 'text', code: 'rate_limited', message: 'at most 10 messages at once, then 1 a second' });
  const end = transferEndFrame({ transfer: 7, result: 'complete', message: 'done', delivered: 1, dropped: 1 });
  t.equal(payloadOf(end).toString(), '{"transfer":7,"result":"complete","message":"done","delivered":1,"dropped":1}');
  t.same(parseTransferEnd(payloadOf(end)), { transfer: 7, result: 'complete', message: 'done', delivered: 1, dropped: 1 });
  const cancelled = parseTransferEnd(payloadOf(transferEndFrame({ transfer: 7, result: 'cancelled', message: 'x', by: { id: 2, name: 'Ada' } })));
  t.same(cancelled.by, { id: 2, name: 'Ada' });
  t.equal(codeOf(() => parseTransferEnd(Buffer.from('{"transfer":7,"result":"won","message":""}'))), 'bad_field');
});
