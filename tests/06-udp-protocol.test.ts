// Stage 06's additions to the protocol (06-udp/protocol.ts, 06-udp/datagrams.ts), checked against
// the bytes of the README's examples written out by hand, so the encoders and parsers are held to
// the page rather than to each other.
import t from 'tap';
import {
  DatagramType,
  MAX_CLIENT_DATAGRAM_BYTES,
  forwardedVoiceDown,
  parseClientDatagram,
  parseServerDatagram,
  pingDatagram,
  pongDatagram,
  voiceDownDatagram,
  voiceUpDatagram,
} from '../06-udp/datagrams.ts';
import { ErrorCode, MessageType, PROTOCOL, clientMessageLimit, newToken, parseHello, parsePath, parseWelcome, pathFrame, welcomeFrame } from '../06-udp/protocol.ts';

const token = Buffer.from([0x0f, 0x3a, 0x9c, 0x5e, 0x81, 0xd2, 0xb6, 0x47]);
const packet60 = Buffer.from([0x78, 0x9c, 0x1b, 0x4b, ...Array.from({ length: 56 }, (_, i) => i)]);

function codeOf(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

function header(type: number, length: number): number[] {
  return [type, (length >>> 24) & 0xff, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff];
}

t.test('VOICE_UP: 01 | token 8 | sequence u16 | packet (the README example: 71 bytes)', async (t) => {
  const datagram = voiceUpDatagram(token, 7, packet60);
  t.same([...datagram.subarray(0, 15)], [0x01, 0x0f, 0x3a, 0x9c, 0x5e, 0x81, 0xd2, 0xb6, 0x47, 0x00, 0x07, 0x78, 0x9c, 0x1b, 0x4b]);
  t.equal(datagram.length, 71);
  const parsed = parseClientDatagram(datagram);
  t.same(parsed, { type: 'voice_up', token, sequence: 7, packet: packet60, voicePayload: Buffer.concat([Buffer.of(0, 7), packet60]) });
});

t.test('VOICE_DOWN: 02 | speaker u16 | sequence u16 | packet (65 bytes for the same packet)', async (t) => {
  const expected = [0x02, 0x00, 0x02, 0x00, 0x07, ...packet60];
  t.same([...voiceDownDatagram(2, 7, packet60)], expected);
  // A forwarding server puts the speaker in front of the VOICE_UP from its sequence on, unchanged.
  t.same([...forwardedVoiceDown(2, voiceUpDatagram(token, 7, packet60).subarray(9))], expected);
  t.same(parseServerDatagram(Buffer.from(expected)), { type: 'voice_down', speaker: 2, sequence: 7, packet: packet60 });
});

t.test('PING: 03 | token | ping u32 | client_time u32, exactly 17 bytes', async (t) => {
  const expected = [0x03, 0x0f, 0x3a, 0x9c, 0x5e, 0x81, 0xd2, 0xb6, 0x47, 0x00, 0x00, 0x00, 0x05, 0x00, 0x01, 0xe2, 0x40];
  t.same([...pingDatagram(token, 5, 123456)], expected);
  t.same(parseClientDatagram(Buffer.from(expected)), { type: 'ping', token, ping: 5, clientTime: 123456 });
  t.equal(pingDatagram(token, 1, 2 ** 32 + 9).readUInt32BE(13), 9, 'the client time is taken modulo 2^32');
});

t.test('PONG: 04 | ping u32 | client_time u32 | received u32, exactly 13 bytes, smaller than the PING', async (t) => {
  const expected = [0x04, 0x00, 0x00, 0x00, 0x05, 0x00, 0x01, 0xe2, 0x40, 0x00, 0x00, 0x0b, 0xb8];
  t.same([...pongDatagram(5, 123456, 3000)], expected);
  t.same(parseServerDatagram(Buffer.from(expected)), { type: 'pong', ping: 5, clientTime: 123456, received: 3000 });
  t.ok(pongDatagram(1, 1, 1).length < pingDatagram(token, 1, 1).length, 'no amplification');
});

t.test('what a server drops, and why: sizes 11/16/18/1287, unknown and server-only types', async (t) => {
  t.same(parseClientDatagram(Buffer.alloc(0)), { drop: 'bad_type' });
  t.same(parseClientDatagram(Buffer.from([0x02, 0, 1, 0, 1, 9])), { drop: 'bad_type' }, 'VOICE_DOWN is not a client datagram');
  t.same(parseClientDatagram(Buffer.from([0x04, ...Array(12).fill(0)])), { drop: 'bad_type' }, 'nor PONG');
  t.same(parseClientDatagram(Buffer.from([0x7f, 1, 2])), { drop: 'bad_type' });
  t.same(parseClientDatagram(Buffer.concat([Buffer.of(1), Buffer.alloc(10)])), { drop: 'bad_size' }, '11 bytes: VOICE_UP without a packet');
  t.equal((parseClientDatagram(Buffer.concat([Buffer.of(1), Buffer.alloc(11)])) as { type?: string }).type, 'voice_up', '12 bytes: a 1-byte packet');
  t.same(parseClientDatagram(Buffer.concat([Buffer.of(3), Buffer.alloc(15)])), { drop: 'bad_size' }, 'PING of 16');
  t.same(parseClientDatagram(Buffer.concat([Buffer.of(3), Buffer.alloc(17)])), { drop: 'bad_size' }, 'PING of 18');
  t.equal(MAX_CLIENT_DATAGRAM_BYTES, 1286);
  t.equal((parseClientDatagram(Buffer.concat([Buffer.of(1), Buffer.alloc(1285)])) as { type?: string }).type, 'voice_up', '1286 bytes: a 1275-byte packet');
  t.same(parseClientDatagram(Buffer.concat([Buffer.of(1), Buffer.alloc(1286)])), { drop: 'bad_type' }, '1287 bytes');
});

t.test('what a client drops: anything but a 6-1280 byte VOICE_DOWN or a 13-byte PONG', async (t) => {
  t.equal(parseServerDatagram(Buffer.alloc(0)), null);
  t.equal(parseServerDatagram(Buffer.from([0x02, 0, 1, 0, 1])), null, 'VOICE_DOWN without a packet');
  t.ok(parseServerDatagram(Buffer.concat([Buffer.of(2), Buffer.alloc(1279)])), '1280 bytes');
  t.equal(parseServerDatagram(Buffer.concat([Buffer.of(2), Buffer.alloc(1280)])), null, '1281 bytes');
  t.equal(parseServerDatagram(Buffer.concat([Buffer.of(4), Buffer.alloc(13)])), null, 'PONG of 14');
  t.equal(parseServerDatagram(pingDatagram(token, 1, 1)), null, 'a PING is not for a client');
  t.equal(DatagramType.pong, 0x04);
});

t.test('WELCOME carries the token (16 lowercase hex digits) and the UDP port', async (t) => {
  const frame = welcomeFrame({ name: 'Ada', room: 'lobby', id: 2, token, udpPort: 8888 });
  const json = JSON.parse(frame.subarray(5).toString('utf8'));
  t.equal(json.token, '0f3a9c5e81d2b647');
  t.equal(json.udp_port, 8888);
  t.equal(json.protocol, 'voice-chat/06');
  t.same(parseWelcome(frame.subarray(5)), { name: 'Ada', room: 'lobby', id: 2, token, udpPort: 8888 });
  const base = { ...json };
  const withField = (field: string, value: unknown) => Buffer.from(JSON.stringify({ ...base, [field]: value }));
  t.equal(codeOf(() => parseWelcome(withField('token', '0F3A9C5E81D2B647'))), 'bad_field', 'upper case');
  t.equal(codeOf(() => parseWelcome(withField('token', '0f3a9c5e81d2b6'))), 'bad_field', '14 digits');
  t.equal(codeOf(() => parseWelcome(withField('token', undefined))), 'bad_field', 'missing');
  t.equal(codeOf(() => parseWelcome(withField('udp_port', 0))), 'bad_field');
  t.equal(codeOf(() => parseWelcome(withField('udp_port', 65536))), 'bad_field');
  t.equal(codeOf(() => parseWelcome(withField('udp_port', '8888'))), 'bad_field');
  t.equal(codeOf(() => parseWelcome(withField('protocol', 'voice-chat/05'))), 'wrong_protocol', 'a stage 05 server');
});

t.test('HELLO speaks voice-chat/06; a stage 05 client is wrong_protocol', async (t) => {
  t.equal(PROTOCOL, 'voice-chat/06');
  t.same(parseHello(Buffer.from('{"name":"Ada","room":"lobby","protocol":"voice-chat/06"}')), { name: 'Ada', room: 'lobby' });
  t.equal(codeOf(() => parseHello(Buffer.from('{"name":"Ada","room":"lobby","protocol":"voice-chat/05"}'))), 'wrong_protocol');
});

t.test('PATH: 0E | length | {"path": "udp" | "tcp"}; anything else is bad_path', async (t) => {
  const payload = Buffer.from('{"path":"udp"}');
  t.same([...pathFrame('udp')], [...header(0x0e, payload.length), ...payload]);
  t.equal(MessageType.path, 0x0e);
  t.equal(parsePath(Buffer.from('{"path":"tcp"}')), 'tcp');
  t.equal(parsePath(payload), 'udp');
  t.equal(codeOf(() => parsePath(Buffer.from('{"path":"UDP"}'))), ErrorCode.badPath);
  t.equal(codeOf(() => parsePath(Buffer.from('{}'))), 'bad_path');
  t.equal(codeOf(() => parsePath(Buffer.from('not json'))), 'bad_path');
  t.equal(codeOf(() => parsePath(Buffer.from([0xff]))), 'bad_path', 'bad UTF-8');
  t.equal(clientMessageLimit(MessageType.path), 1024);
});

t.test('newToken: 8 bytes, different every time', async (t) => {
  const a = newToken();
  t.equal(a.length, 8);
  t.not(a.toString('hex'), newToken().toString('hex'));
});
