// Stage 05's message layouts (05-opus/protocol.ts), checked against bytes written by hand from the
// README's tables, so the encoders and parsers are held to the page rather than to each other.
import t from 'tap';
import {
  ErrorCode,
  MessageType,
  clientMessageLimit,
  clientMessageMinimum,
  clientVoiceFrame,
  forwardedVoiceFrame,
  helloFrame,
  isSequenceAfter,
  joinedFrame,
  leftFrame,
  nextSequence,
  parseClientVoice,
  parseHello,
  parseServerVoice,
  parseSpeakers,
  parseUserEvent,
  parseUsers,
  parseWelcome,
  serverMessageLimit,
  serverVoiceFrame,
  speakingFrame,
  usersFrame,
  welcomeFrame,
} from '../05-opus/protocol.ts';

function header(type: number, length: number): number[] {
  return [type, (length >>> 24) & 0xff, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff];
}

function jsonOf(frame: Buffer): unknown {
  return JSON.parse(frame.subarray(5).toString('utf8'));
}

function codeOf(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

t.test('VOICE from a client: 03 | length | sequence u16 BE | packet', async (t) => {
  const frame = clientVoiceFrame(7, Buffer.from([0x78, 0x9c, 0x1b]));
  t.same([...frame], [...header(0x03, 5), 0x00, 0x07, 0x78, 0x9c, 0x1b]);
  t.same(parseClientVoice(frame.subarray(5)), { sequence: 7, packet: Buffer.from([0x78, 0x9c, 0x1b]) });
  t.equal(clientVoiceFrame(0xfffe, Buffer.of(1)).readUInt16BE(5), 0xfffe);
});

t.test('VOICE to a listener: 03 | length | speaker u16 BE | sequence u16 BE | packet', async (t) => {
  const packet = Buffer.from([0x78, 0x9c]);
  const expected = [...header(0x03, 6), 0x01, 0x02, 0x00, 0x07, 0x78, 0x9c];
  t.same([...serverVoiceFrame(0x0102, 7, packet)], expected);
  // A forwarding server prepends the speaker to what the client sent, unchanged.
  t.same([...forwardedVoiceFrame(0x0102, Buffer.from([0x00, 0x07, 0x78, 0x9c]))], expected);
  t.same(parseServerVoice(Buffer.from(expected.slice(5))), { speaker: 0x0102, sequence: 7, packet });
});

t.test('VOICE sizes: 3-1277 bytes up, 5-1279 down; shorter is bad_voice_size', async (t) => {
  t.equal(clientMessageLimit(MessageType.voice), 1277);
  t.equal(clientMessageMinimum(MessageType.voice), 3);
  t.equal(clientMessageMinimum(MessageType.hello), 0);
  t.equal(serverMessageLimit(MessageType.voice), 1279);
  t.equal(codeOf(() => parseClientVoice(Buffer.from([0, 1]))), ErrorCode.badVoiceSize, 'a sequence without a packet');
  t.equal(codeOf(() => parseServerVoice(Buffer.from([0, 1, 0, 1]))), ErrorCode.badVoiceSize, 'speaker and sequence without a packet');
  t.equal(codeOf(() => parseServerVoice(Buffer.alloc(1280))), ErrorCode.badVoiceSize);
  t.equal(codeOf(() => parseClientVoice(Buffer.alloc(1277))), undefined);
});

t.test('HELLO names the protocol; a HELLO of another stage is wrong_protocol before its fields are read', async (t) => {
  t.same(jsonOf(helloFrame('Ada', 'lobby')), { name: 'Ada', room: 'lobby', protocol: 'voice-chat/05' });
  t.same(parseHello(Buffer.from('{"name":"Ada","room":"lobby","protocol":"voice-chat/05"}')), { name: 'Ada', room: 'lobby' });
  t.equal(codeOf(() => parseHello(Buffer.from('{"name":"Ada","room":"lobby"}'))), 'wrong_protocol', 'stage 04 HELLO');
  t.equal(codeOf(() => parseHello(Buffer.from('{"protocol":"voice-chat/06"}'))), 'wrong_protocol', 'checked before name and room');
  t.equal(codeOf(() => parseHello(Buffer.from('{"protocol":"voice-chat/05"}'))), 'bad_field');
});

t.test('WELCOME carries the id, the protocol and the codec; a WELCOME of another stage is wrong_protocol', async (t) => {
  const welcome = welcomeFrame({ name: 'Ada', room: 'lobby', id: 2 });
  t.same(jsonOf(welcome), { name: 'Ada', room: 'lobby', id: 2, protocol: 'voice-chat/05', codec: 'opus', sample_rate: 48000, frame_ms: 20, channels: 1 });
  t.same(parseWelcome(welcome.subarray(5)), { name: 'Ada', room: 'lobby', id: 2 });
  const stage04 = Buffer.from('{"name":"Ada","room":"lobby","sample_rate":48000,"frame_samples":960}');
  t.equal(codeOf(() => parseWelcome(stage04)), 'wrong_protocol');
  t.match((() => { try { parseWelcome(stage04); } catch (e) { return (e as Error).message; } })(), /another stage's protocol/);
  const noId = Buffer.from('{"name":"Ada","room":"lobby","protocol":"voice-chat/05","codec":"opus","sample_rate":48000,"frame_ms":20,"channels":1}');
  t.equal(codeOf(() => parseWelcome(noId)), 'bad_field');
  const pcm = Buffer.from('{"name":"Ada","room":"lobby","id":2,"protocol":"voice-chat/05","codec":"pcm","sample_rate":48000,"frame_ms":20,"channels":1}');
  t.equal(codeOf(() => parseWelcome(pcm)), 'bad_field');
});

t.test('USERS, JOINED, LEFT and SPEAKING name users as {"id","name"}', async (t) => {
  const bob = { id: 1, name: 'Bob' };
  const ada = { id: 2, name: 'Ada' };
  t.same(jsonOf(usersFrame('lobby', [bob, ada])), { room: 'lobby', users: [bob, ada] });
  t.same(jsonOf(joinedFrame(ada)), { id: 2, name: 'Ada' });
  t.same(jsonOf(leftFrame(ada, 'moved')), { id: 2, name: 'Ada', reason: 'moved' });
  t.same(jsonOf(speakingFrame([ada])), { speakers: [ada] });
  t.same(parseUsers(usersFrame('lobby', [bob, ada]).subarray(5)), { room: 'lobby', users: [bob, ada] });
  t.same(parseUserEvent(leftFrame(ada, 'lost').subarray(5)), { id: 2, name: 'Ada', reason: 'lost' });
  t.same(parseSpeakers(Buffer.from('{"speakers":[{"id":65535,"name":"Zed"}]}')), [{ id: 65535, name: 'Zed' }]);
  t.equal(codeOf(() => parseSpeakers(Buffer.from('{"speakers":["Ada"]}'))), 'bad_field', 'stage 04 names');
  t.equal(codeOf(() => parseUserEvent(Buffer.from('{"id":0,"name":"Ada"}'))), 'bad_field', '0 is never an id');
});

t.test('sequence numbers compare modulo 2^16 (serial-number arithmetic)', async (t) => {
  t.equal(nextSequence(65535), 0);
  t.ok(isSequenceAfter(0, 65535), '0 follows 65535');
  t.ok(isSequenceAfter(5, 1));
  t.notOk(isSequenceAfter(1, 5));
  t.notOk(isSequenceAfter(3, 3));
  t.ok(isSequenceAfter(32767, 0), 'half the circle ahead is still after');
  t.notOk(isSequenceAfter(32768, 0), 'more than half ahead counts as before');
});
