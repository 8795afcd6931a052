// Stage 08's new messages and datagrams (08-calls/call-messages.ts, call-limits.ts, protocol.ts,
// datagrams.ts), checked against bytes written out by hand from the README's tables and examples,
// so encoders and parsers are held to the page rather than to each other.
import t from 'tap';
import {
  CallEndReason,
  MAX_CALL_ANSWER_BYTES,
  MAX_CALL_REQUEST_BYTES,
  acceptFrame,
  addressFrame,
  callEndFrame,
  callStartFrame,
  declineFrame,
  foundFrame,
  hangupFrame,
  incomingCallFrame,
  inviteFrame,
  lookupFrame,
  parseAccept,
  parseAddress,
  parseCallAnswer,
  parseCallEnd,
  parseCallStart,
  parseClientInvite,
  parseDecline,
  parseFound,
  parseHangup,
  parseIncomingCall,
  parseLookup,
  parsePresence,
  parseRinging,
  presenceFrame,
  ringingFrame,
} from '../08-calls/call-messages.ts';
import { parseRefused, refusedFrame } from '../08-calls/chat-messages.ts';
import {
  CALL_PROBE_BYTES,
  DatagramType,
  MAX_CALL_VOICE_BYTES,
  MIN_CALL_VOICE_BYTES,
  callProbeDatagram,
  callVoiceDatagram,
  parseClientDatagram,
  parsePeerDatagram,
} from '../08-calls/datagrams.ts';
import { ErrorCode, MessageType, PROTOCOL, clientMessageLimit, parseUsers, serverMessageLimit, usersFrame } from '../08-calls/protocol.ts';
import { publicAddress } from '../08-calls/udp-voice.ts';

function codeOf(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

const payloadOf = (frame: Buffer): Buffer => frame.subarray(5);
const json = (text: string): Buffer => Buffer.from(text);
const ada = { id: 2, name: 'Ada' };
const bob = { id: 5, name: 'Bob' };
const token = Buffer.from('7e21c4095b3af0d2', 'hex');

t.test('protocol name and the new type bytes', async (t) => {
  t.equal(PROTOCOL, 'voice-chat/08');
  t.same(
    [
      MessageType.address,
      MessageType.lookup,
      MessageType.found,
      MessageType.invite,
      MessageType.ringing,
      MessageType.accept,
      MessageType.decline,
      MessageType.hangup,
      MessageType.callStart,
      MessageType.callEnd,
      MessageType.presence,
    ],
    [0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22],
  );
  t.same(
    [ErrorCode.busy, ErrorCode.noSuchUser, ErrorCode.callingYourself, ErrorCode.alreadyInCall],
    ['busy', 'no_such_user', 'calling_yourself', 'already_in_call'],
  );
});

t.test('frame limits a client may declare; server-only types are unknown from a client', async (t) => {
  t.equal(MAX_CALL_REQUEST_BYTES, 1024);
  t.equal(MAX_CALL_ANSWER_BYTES, 256);
  t.equal(clientMessageLimit(0x19), 1024, 'LOOKUP: 1 KiB');
  t.equal(clientMessageLimit(0x1b), 1024, 'INVITE: 1 KiB');
  for (const answer of [0x1d, 0x1e, 0x1f]) t.equal(clientMessageLimit(answer), 256, `0x${answer.toString(16)}: 256 bytes`);
  for (const serverOnly of [0x18, 0x1a, 0x1c, 0x20, 0x21, 0x22]) t.equal(clientMessageLimit(serverOnly), undefined, `0x${serverOnly.toString(16)} from a client is unknown_type`);
  t.equal(clientMessageLimit(0x23), undefined, 'nothing past PRESENCE');
  for (const fromServer of [0x18, 0x1a, 0x1b, 0x1c, 0x20, 0x21, 0x22]) t.ok(serverMessageLimit(fromServer), `0x${fromServer.toString(16)} may come from the server`);
  for (const clientOnly of [0x19, 0x1d, 0x1e, 0x1f]) t.equal(serverMessageLimit(clientOnly), undefined, `0x${clientOnly.toString(16)} never comes from the server`);
});

t.test('ADDRESS, LOOKUP and FOUND: the README examples', async (t) => {
  const address = addressFrame({ address: '203.0.113.7', port: 61234 });
  const addressJson = '{"address":"203.0.113.7","port":61234}';
  t.same([...address.subarray(0, 5)], [0x18, 0, 0, 0, addressJson.length]);
  t.equal(payloadOf(address).toString(), addressJson);
  t.same(parseAddress(json(addressJson)), { address: '203.0.113.7', port: 61234 });
  t.same(parseAddress(json('{"address":"2001:db8::1","port":1}')), { address: '2001:db8::1', port: 1 }, 'IPv6 without brackets');
  for (const bad of ['{"address":"example.com","port":1}', '{"address":"[::1]","port":1}', '{"address":"1.2.3.4","port":0}', '{"address":"1.2.3.4","port":65536}', '{"port":1}']) {
    t.equal(codeOf(() => parseAddress(json(bad))), 'bad_field', bad);
  }

  t.same([...lookupFrame('Bob')], [0x19, 0, 0, 0, 14, ...Buffer.from('{"name":"Bob"}')]);
  t.equal(parseLookup(json('{"name":"Bob","extra":1}')), 'Bob', 'unknown fields are ignored');
  t.equal(codeOf(() => parseLookup(json('{"name":5}'))), 'bad_field');
  t.equal(codeOf(() => parseLookup(json('{"name":'))), 'bad_json');
  t.equal(codeOf(() => parseLookup(Buffer.from([0xff]))), 'bad_utf8');

  const available = foundFrame({ name: 'Bob', online: true, state: 'available' });
  t.equal(available[0], 0x1a);
  t.equal(payloadOf(available).toString(), '{"name":"Bob","online":true,"state":"available"}');
  t.equal(payloadOf(foundFrame({ name: 'Bob', online: false })).toString(), '{"name":"Bob","online":false}', 'no state when offline');
  t.equal(payloadOf(foundFrame({ name: 'Bob', online: false, state: 'busy' })).toString(), '{"name":"Bob","online":false}', 'never a state when offline');
  t.same(parseFound(json('{"name":"Bob","online":true,"state":"busy"}')), { name: 'Bob', online: true, state: 'busy' });
  t.same(parseFound(json('{"name":"Bob","online":false,"state":"x"}')), { name: 'Bob', online: false }, 'state is read only when online');
  t.equal(codeOf(() => parseFound(json('{"name":"Bob","online":true}'))), 'bad_field', 'online needs a state');
  t.equal(codeOf(() => parseFound(json('{"name":"Bob","online":"yes"}'))), 'bad_field');
});

t.test('INVITE both ways, RINGING', async (t) => {
  t.same([...inviteFrame('Bob')], [0x1b, 0, 0, 0, 12, ...Buffer.from('{"to":"Bob"}')]);
  t.equal(payloadOf(inviteFrame('Bob', true)).toString(), '{"to":"Bob","relay_only":true}');
  t.same(parseClientInvite(payloadOf(inviteFrame('Bob'))), { to: 'Bob', relayOnly: false });
  t.same(parseClientInvite(json('{"to":"Bob","relay_only":true}')), { to: 'Bob', relayOnly: true });
  t.same(parseClientInvite(json('{"to":"Bob","relay_only":false}')), { to: 'Bob', relayOnly: false });
  for (const bad of ['{"to":5}', '{}', '{"to":"Bob","relay_only":1}', '{"to":"Bob","relay_only":"true"}', '{"to":"Bob","relay_only":null}']) {
    t.equal(codeOf(() => parseClientInvite(json(bad))), 'bad_field', bad);
  }

  const ring = incomingCallFrame({ call: 7, from: ada });
  t.equal(ring[0], 0x1b, 'the server INVITE has the same type byte');
  t.equal(payloadOf(ring).toString(), '{"call":7,"from":{"id":2,"name":"Ada"}}');
  t.same(parseIncomingCall(payloadOf(ring)), { call: 7, from: ada });
  t.equal(codeOf(() => parseIncomingCall(json('{"call":0,"from":{"id":2,"name":"Ada"}}'))), 'bad_field');

  const ringing = ringingFrame({ call: 7, to: bob });
  t.equal(ringing[0], 0x1c);
  t.equal(payloadOf(ringing).toString(), '{"call":7,"to":{"id":5,"name":"Bob"}}');
  t.same(parseRinging(payloadOf(ringing)), { call: 7, to: bob });
  t.equal(codeOf(() => parseRinging(json('{"call":7,"to":{"id":0,"name":"Bob"}}'))), 'bad_field');
});

t.test('ACCEPT, DECLINE, HANGUP: the call id rule', async (t) => {
  t.same([...acceptFrame(7)], [0x1d, 0, 0, 0, 10, ...Buffer.from('{"call":7}')]);
  t.equal(payloadOf(acceptFrame(7, true)).toString(), '{"call":7,"relay_only":true}');
  t.same(parseAccept(payloadOf(acceptFrame(7, true))), { call: 7, relayOnly: true });
  t.same(parseAccept(json('{"call":65535}')), { call: 65535, relayOnly: false });
  t.same([...declineFrame(7)], [0x1e, 0, 0, 0, 10, ...Buffer.from('{"call":7}')]);
  t.same([...hangupFrame(7)], [0x1f, 0, 0, 0, 10, ...Buffer.from('{"call":7}')]);
  t.equal(parseDecline(json('{"call":1}')), 1);
  t.equal(parseHangup(json('{"call":65535}')), 65535);
  for (const bad of ['{"call":0}', '{"call":65536}', '{"call":1.5}', '{"call":"7"}', '{}', '{"call":-1}']) {
    t.equal(codeOf(() => parseCallAnswer(json(bad))), 'bad_field', bad);
    t.equal(codeOf(() => parseAccept(json(bad))), 'bad_field', `ACCEPT ${bad}`);
  }
  t.equal(codeOf(() => parseAccept(json('{"call":7,"relay_only":"yes"}'))), 'bad_field');
  t.equal(codeOf(() => parseHangup(json('[7]'))), 'bad_json', 'not an object');
});

t.test('CALL_START: the README example, and a null peer_address', async (t) => {
  const start = callStartFrame({ call: 7, peer: bob, token, peerAddress: { address: '198.51.100.4', port: 40001 } });
  t.equal(start[0], 0x20);
  t.equal(
    payloadOf(start).toString(),
    '{"call":7,"peer":{"id":5,"name":"Bob"},"token":"7e21c4095b3af0d2","peer_address":{"address":"198.51.100.4","port":40001}}',
  );
  const parsed = parseCallStart(payloadOf(start));
  t.same(parsed, { call: 7, peer: bob, token, peerAddress: { address: '198.51.100.4', port: 40001 } });
  t.ok(Buffer.isBuffer(parsed.token) && parsed.token.length === 8, 'the token as 8 bytes');
  const relayed = callStartFrame({ call: 8, peer: ada, token, peerAddress: null });
  t.match(payloadOf(relayed).toString(), /"peer_address":null}$/);
  t.equal(parseCallStart(payloadOf(relayed)).peerAddress, null);
  const base = '"call":7,"peer":{"id":5,"name":"Bob"}';
  t.equal(codeOf(() => parseCallStart(json(`{${base},"token":"7E21C4095B3AF0D2","peer_address":null}`))), 'bad_field', 'uppercase token');
  t.equal(codeOf(() => parseCallStart(json(`{${base},"token":"7e21c4095b3af0","peer_address":null}`))), 'bad_field', 'short token');
  t.equal(codeOf(() => parseCallStart(json(`{${base},"token":"7e21c4095b3af0d2"}`))), 'bad_field', 'peer_address must be there, if null');
  t.equal(codeOf(() => parseCallStart(json(`{${base},"token":"7e21c4095b3af0d2","peer_address":{"address":"evil.example","port":9}}`))), 'bad_field', 'a host name is not an address');
});

t.test('CALL_END: every reason, with and without by', async (t) => {
  t.same(Object.values(CallEndReason), ['declined', 'cancelled', 'no_answer', 'hangup', 'peer_left']);
  const end = callEndFrame({ call: 7, reason: 'hangup', by: ada });
  t.equal(end[0], 0x21);
  t.equal(payloadOf(end).toString(), '{"call":7,"reason":"hangup","by":{"id":2,"name":"Ada"}}');
  t.same(parseCallEnd(payloadOf(end)), { call: 7, reason: 'hangup', by: ada });
  t.equal(payloadOf(callEndFrame({ call: 7, reason: 'no_answer' })).toString(), '{"call":7,"reason":"no_answer"}');
  for (const reason of Object.values(CallEndReason)) t.equal(parseCallEnd(payloadOf(callEndFrame({ call: 1, reason }))).reason, reason);
  t.equal(codeOf(() => parseCallEnd(json('{"call":7,"reason":"won"}'))), 'bad_field');
});

t.test('PRESENCE and USERS with in_call', async (t) => {
  const presence = presenceFrame({ id: 2, name: 'Ada', inCall: true });
  t.equal(presence[0], 0x22);
  t.equal(payloadOf(presence).toString(), '{"id":2,"name":"Ada","in_call":true}');
  t.same(parsePresence(payloadOf(presence)), { id: 2, name: 'Ada', inCall: true });
  t.equal(codeOf(() => parsePresence(json('{"id":2,"name":"Ada"}'))), 'bad_field');
  const users = usersFrame('lobby', [{ ...ada, inCall: true }, { ...bob, inCall: false }]);
  t.equal(payloadOf(users).toString(), '{"room":"lobby","users":[{"id":2,"name":"Ada","in_call":true},{"id":5,"name":"Bob","in_call":false}]}');
  t.same(parseUsers(payloadOf(users)), { room: 'lobby', users: [{ ...ada, inCall: true }, { ...bob, inCall: false }] });
  t.equal(codeOf(() => parseUsers(json('{"room":"lobby","users":[{"id":2,"name":"Ada"}]}'))), 'bad_field', 'in_call is required');
});

t.test('REFUSED answers invites and look-ups', async (t) => {
  const refused = refusedFrame('invite', ErrorCode.busy, 'Bob is in a call');
  t.equal(payloadOf(refused).toString(), '{"request":"invite","code":"busy","message":"Bob is in a call"}');
  t.same(parseRefused(payloadOf(refused)), { request: 'invite', code: 'busy', message: 'Bob is in a call' });
  t.equal(parseRefused(payloadOf(refusedFrame('lookup', ErrorCode.rateLimited, 'x'))).request, 'lookup');
  t.equal(codeOf(() => parseRefused(json('{"request":"call","code":"busy","message":""}'))), 'bad_field');
});

t.test('CALL_PROBE and CALL_VOICE: the README bytes', async (t) => {
  t.same([DatagramType.callProbe, DatagramType.callVoice], [0x05, 0x06]);
  const probe = callProbeDatagram(token, 3, 2);
  t.equal(CALL_PROBE_BYTES, 17);
  t.same([...probe], [0x05, 0x7e, 0x21, 0xc4, 0x09, 0x5b, 0x3a, 0xf0, 0xd2, 0, 0, 0, 3, 0, 0, 0, 2]);
  t.same(parsePeerDatagram(probe), { type: 'call_probe', token, probe: 3, received: 2 });

  const packet = Buffer.alloc(60, 0x78);
  const voice = callVoiceDatagram(token, 300, packet);
  t.equal(voice.length, 71, 'a 60-byte packet: 71 bytes');
  t.same([...voice.subarray(0, 11)], [0x06, 0x7e, 0x21, 0xc4, 0x09, 0x5b, 0x3a, 0xf0, 0xd2, 0x01, 0x2c]);
  t.same(parsePeerDatagram(voice), { type: 'call_voice', token, sequence: 300, packet });
  t.same([MIN_CALL_VOICE_BYTES, MAX_CALL_VOICE_BYTES], [12, 1286]);

  t.same(parsePeerDatagram(probe.subarray(0, 16)), { drop: 'bad_size' }, 'a probe of 16 bytes');
  t.same(parsePeerDatagram(Buffer.concat([probe, Buffer.alloc(1)])), { drop: 'bad_size' }, 'a probe of 18 bytes');
  t.same(parsePeerDatagram(voice.subarray(0, 11)), { drop: 'bad_size' }, 'a CALL_VOICE without a packet');
  t.same(parsePeerDatagram(callVoiceDatagram(token, 1, Buffer.alloc(1276))), { drop: 'bad_size' }, 'a packet over 1275 bytes');
  t.equal('drop' in parsePeerDatagram(callVoiceDatagram(token, 1, Buffer.alloc(1275))), false, '1286 bytes pass');
  for (const type of [0x00, 0x01, 0x02, 0x03, 0x04, 0x07, 0xff]) t.same(parsePeerDatagram(Buffer.from([type, ...probe.subarray(1)])), { drop: 'bad_type' }, `type 0x${type.toString(16).padStart(2, "0")}`);
  t.same(parsePeerDatagram(Buffer.alloc(0)), { drop: 'bad_type' });
});

t.test('a server drops the peer datagrams as bad_type', async (t) => {
  t.same(parseClientDatagram(callProbeDatagram(token, 1, 0)), { drop: 'bad_type' });
  t.same(parseClientDatagram(callVoiceDatagram(token, 1, Buffer.alloc(60))), { drop: 'bad_type' });
});

t.test('ADDRESS and peer_address: an IPv4 client seen by a dual-stack socket is written as plain IPv4', async (t) => {
  t.same(publicAddress({ address: '::ffff:203.0.113.7', port: 61234 }), { address: '203.0.113.7', port: 61234 });
  t.same(publicAddress({ address: '::FFFF:127.0.0.1', port: 1 }), { address: '127.0.0.1', port: 1 });
  t.same(publicAddress({ address: '203.0.113.7', port: 2 }), { address: '203.0.113.7', port: 2 });
  t.same(publicAddress({ address: '2001:db8::1', port: 3 }), { address: '2001:db8::1', port: 3 }, 'IPv6 as it is');
  t.same(publicAddress({ address: '::1', port: 4 }), { address: '::1', port: 4 });
});
