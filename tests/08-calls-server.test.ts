// Stage 08's server over real sockets, in this process (the graded checks over the wire are in
// conformance/checks/08-*): names unique on the server, ADDRESS after the first PING, LOOKUP,
// a call from INVITE to CALL_START with each party's exact bound address, PRESENCE to the room
// (never naming the peer), the relay to the peer only and never to the room, the peer datagram
// types dropped, no_answer on a short --ring-timeout, peer_left when a party's connection resets.
// The test's users are the grader's own (conformance/harness: FramedUser over TCP, DatagramPeer
// over UDP, WireClient for a connection that must be refused).
import t from 'tap';
import { DatagramPeer } from '../conformance/harness/datagram-peer.ts';
import { framesIn, readFrame } from '../conformance/harness/frame-wire.ts';
import { FramedUser, type ReceivedFrame } from '../conformance/harness/framed-user.ts';
import { WireClient } from '../conformance/harness/wire-client.ts';
import { WIRES } from '../conformance/hostile/wire-spec.ts';
import { acceptFrame, hangupFrame, inviteFrame, lookupFrame } from '../08-calls/call-messages.ts';
import { callProbeDatagram, callVoiceDatagram, pingDatagram, voiceUpDatagram } from '../08-calls/datagrams.ts';
import { clientVoiceFrame, helloFrame, joinFrame, MessageType, pathFrame, PROTOCOL } from '../08-calls/protocol.ts';
import { startServer } from '../08-calls/server.ts';

const WAIT_MS = 3_000;
const HOST = '127.0.0.1';

/** A joined user: the harness's FramedUser (every TCP frame after WELCOME kept) and a UDP socket of its own. */
class CallUser {
  private constructor(
    readonly user: FramedUser,
    readonly udp: DatagramPeer,
  ) {}

  static async join(port: number, name: string, room: string): Promise<CallUser> {
    const user = await FramedUser.join(HOST, port, { name, room, protocol: PROTOCOL }, { typeNames: WIRES['08'].typeNames });
    return new CallUser(user, await DatagramPeer.start());
  }

  get id(): number {
    return this.user.welcome.id as number;
  }

  get token(): Buffer {
    return Buffer.from(this.user.welcome.token as string, 'hex');
  }

  get frames(): ReceivedFrame[] {
    return this.user.frames;
  }

  /** Every datagram received, in order. */
  get datagrams(): Buffer[] {
    return this.udp.received.map((datagram) => datagram.data);
  }

  /** The JSON payloads of the frames of `type` since `since`. */
  json(type: number, since = 0): Record<string, unknown>[] {
    return this.user.framesOfType(type, since).map((frame) => JSON.parse(frame.payload.toString()));
  }

  waitFor(what: string, matches: (frame: ReceivedFrame) => boolean, since = 0): Promise<ReceivedFrame> {
    return this.user.waitForFrame(what, matches, { since, timeoutMs: WAIT_MS });
  }

  async waitJson(type: number, what: string, since = 0): Promise<Record<string, unknown>> {
    return JSON.parse((await this.waitFor(what, (frame) => frame.type === type, since)).payload.toString());
  }

  async waitDatagram(what: string, matches: (datagram: Buffer) => boolean): Promise<Buffer> {
    return this.udp.waitFor(() => this.datagrams.find(matches), WAIT_MS, what, 'the server sends it by UDP to the address the user\'s PING came from', () => `${this.datagrams.length} datagrams of types ${this.datagrams.map((d) => d[0])}`);
  }

  close(): void {
    this.user.destroy();
    this.udp.close();
  }
}

t.test('a call over real sockets', async (t) => {
  const server = await startServer(HOST, 0, { udpPort: 0, ringTimeoutS: 0.5 });
  const users: CallUser[] = [];
  t.teardown(async () => {
    for (const user of users) user.close();
    await server.close();
  });
  const join = async (name: string, room: string) => {
    const user = await CallUser.join(server.address.port, name, room);
    users.push(user);
    return user;
  };
  const serverUdp = { address: HOST, port: server.udpPort };
  const ping = (user: CallUser, n: number) => user.udp.send(pingDatagram(user.token, n, 0), serverUdp);

  const ada = await join('Ada', 'lobby');
  const bob = await join('Bob', 'game-42');
  const cat = await join('Cat', 'lobby');
  const copy = await WireClient.connect(HOST, server.address.port);
  t.teardown(() => copy.destroy());
  copy.send(helloFrame('Ada', 'elsewhere'));
  const refused = await readFrame(copy, 'the answer to a second Ada\'s HELLO', { timeoutMs: WAIT_MS });
  t.equal(refused.type, MessageType.error, 'a name used in another room');
  t.equal(JSON.parse(refused.payload.toString()).code, 'name_taken', 'is name_taken: names are unique on the server');
  const adaId = ada.id;
  const bobId = bob.id;

  ping(ada, 1);
  ping(bob, 1);
  t.same(await ada.waitJson(MessageType.address, 'ADDRESS for Ada'), { address: '127.0.0.1', port: ada.udp.port }, 'ADDRESS: the socket the PING came from');
  t.same(await bob.waitJson(MessageType.address, 'ADDRESS for Bob'), { address: '127.0.0.1', port: bob.udp.port });
  ada.user.send(pathFrame('udp')); // Ada hears by UDP, Bob by TCP: the relay must use each one's path

  ada.user.send(lookupFrame('Bob'));
  t.same(await ada.waitJson(MessageType.found, 'FOUND'), { name: 'Bob', online: true, state: 'available' }, 'FOUND: online and available, nothing more');

  // Ada talks in her room (a VOICE_UP every 20 ms) until her call starts: Cat sees her in SPEAKING.
  let roomSequence = 60_000;
  const talking = setInterval(() => ada.udp.send(voiceUpDatagram(ada.token, roomSequence++, Buffer.from('room')), serverUdp), 20);
  t.teardown(() => clearInterval(talking));
  await cat.waitFor('SPEAKING with Ada', (frame) => frame.type === MessageType.speaking && frame.payload.toString().includes('"Ada"'));

  ada.user.send(inviteFrame('Bob'));
  const rang = await bob.waitJson(MessageType.invite, 'INVITE to Bob');
  t.same(rang, { call: rang.call, from: { id: adaId, name: 'Ada' } });
  t.same(await ada.waitJson(MessageType.ringing, 'RINGING'), { call: rang.call, to: { id: bobId, name: 'Bob' } });
  const catMark = cat.frames.length;
  bob.user.send(acceptFrame(rang.call as number));
  const startAda = await ada.waitJson(MessageType.callStart, 'CALL_START to Ada');
  clearInterval(talking);
  const startBob = await bob.waitJson(MessageType.callStart, 'CALL_START to Bob');
  t.same(startAda.peer_address, { address: '127.0.0.1', port: bob.udp.port }, 'Ada gets Bob\'s exact bound address');
  t.same(startBob.peer_address, { address: '127.0.0.1', port: ada.udp.port }, 'Bob gets Ada\'s');
  t.equal(startAda.token, startBob.token);
  t.same(await cat.waitJson(MessageType.presence, 'PRESENCE to Ada\'s room', catMark), { id: adaId, name: 'Ada', in_call: true }, 'the room learns Ada is in a call, not with whom');
  t.same(bob.json(MessageType.presence), [], 'Bob\'s room (only him) hears nothing of Ada');
  const presenceAt = cat.frames.findIndex((frame, i) => i >= catMark && frame.type === MessageType.presence);
  const silent = await cat.waitFor('SPEAKING without Ada', (frame) => frame.type === MessageType.speaking && !frame.payload.toString().includes('"Ada"'), presenceAt);
  // Without the rule, Ada would leave SPEAKING only when her last room voice is 200 ms old.
  t.ok(silent.at - cat.frames[presenceAt]!.at < 100, `Ada leaves SPEAKING as her call starts (${(silent.at - cat.frames[presenceAt]!.at).toFixed(0)} ms after PRESENCE)`);
  const inCallMark = cat.frames.length;

  await new Promise((resolve) => setTimeout(resolve, 1_100)); // past the guard
  const packet = Buffer.from('ada-voice');
  ada.udp.send(voiceUpDatagram(ada.token, 1, packet), serverUdp);
  const relayed = await bob.waitFor('Ada\'s voice relayed to Bob', (frame) => frame.type === MessageType.voice);
  t.same(relayed.payload, Buffer.concat([Buffer.from([adaId >> 8, adaId & 0xff, 0, 1]), packet]), 'TCP VOICE to Bob: Ada\'s id, her sequence and packet, byte for byte');
  bob.user.send(clientVoiceFrame(7, Buffer.from('bob-voice')));
  const down = await ada.waitDatagram('Bob\'s voice as VOICE_DOWN', (datagram) => datagram[0] === 0x02);
  t.same(down, Buffer.concat([Buffer.from([0x02, bobId >> 8, bobId & 0xff, 0, 7]), Buffer.from('bob-voice')]), 'VOICE_DOWN to Ada by her PATH');
  cat.user.send(clientVoiceFrame(1, Buffer.from('cat-voice')));
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.equal(cat.frames.slice(inCallMark).some((frame) => frame.type === MessageType.voice), false, 'the room never hears Ada in the call');
  t.equal(ada.datagrams.filter((datagram) => datagram[0] === 0x02).length, 1, 'Ada hears Bob only, not Cat\'s room voice');
  t.equal(ada.frames.some((frame) => frame.type === MessageType.voice), false);

  const before = ada.datagrams.length;
  ada.udp.send(callProbeDatagram(ada.token, 1, 0), serverUdp);
  ada.udp.send(callVoiceDatagram(ada.token, 2, packet), serverUdp);
  ping(ada, 2);
  await ada.waitDatagram('PONG after the peer datagrams', (datagram) => datagram[0] === 0x04 && datagram.readUInt32BE(1) === 2);
  t.equal(ada.datagrams.slice(before).filter((datagram) => datagram[0] !== 0x04).length, 0, 'CALL_PROBE and CALL_VOICE to the server: no answer');
  t.equal(bob.frames.filter((frame) => frame.type === MessageType.voice).length, 1, 'and nothing forwarded');
  t.equal(server.counters.bad_type, 2, 'both dropped as bad_type');

  const bobMark = bob.frames.length;
  const adaMark = ada.frames.length;
  ada.user.send(joinFrame('game-42'));
  const usersAfterMove = await ada.waitJson(MessageType.users, 'USERS after Ada\'s move', adaMark);
  t.same(usersAfterMove.users, [{ id: bobId, name: 'Bob', in_call: true }, { id: adaId, name: 'Ada', in_call: true }], 'USERS shows in_call');
  const joinedThenPresence = bob.frames.slice(bobMark).filter((frame) => frame.type === MessageType.joined || frame.type === MessageType.presence);
  t.same(joinedThenPresence.map((frame) => frame.type), [MessageType.joined, MessageType.presence], 'the new room: JOINED, then PRESENCE');
  t.same(JSON.parse(joinedThenPresence[1]!.payload.toString()), { id: adaId, name: 'Ada', in_call: true });
  t.equal(cat.json(MessageType.presence, inCallMark).length, 0, 'the old room gets no PRESENCE for the move (LEFT moved says it)');
  ada.udp.send(voiceUpDatagram(ada.token, 2, packet), serverUdp);
  await bob.waitFor('the call goes on after the move', (frame) => frame.type === MessageType.voice, bobMark);

  const moved = await DatagramPeer.start();
  moved.send(pingDatagram(ada.token, 3, 0), serverUdp);
  t.same(await ada.waitJson(MessageType.address, 'ADDRESS after a rebind', adaMark), { address: '127.0.0.1', port: moved.port }, 'ADDRESS again after a rebind');
  moved.close();

  const catPresence = cat.frames.length;
  ada.user.send(joinFrame('lobby'));
  t.same(await cat.waitJson(MessageType.presence, 'PRESENCE as Ada moves back in', catPresence), { id: adaId, name: 'Ada', in_call: true }, 'a party who moves in: PRESENCE after JOINED');
  const catBeforeEnd = cat.frames.length;
  bob.user.reset();
  t.same(await ada.waitJson(MessageType.callEnd, 'CALL_END peer_left'), { call: rang.call, reason: 'peer_left', by: { id: bobId, name: 'Bob' } });
  t.same(await cat.waitJson(MessageType.presence, 'PRESENCE in_call false', catBeforeEnd), { id: adaId, name: 'Ada', in_call: false }, 'the end: Ada\'s room is told');

  const mark = ada.frames.length;
  ada.user.send(inviteFrame('Cat'));
  await cat.waitJson(MessageType.invite, 'INVITE to Cat', catBeforeEnd);
  const rungAt = performance.now();
  t.same(await ada.waitJson(MessageType.callEnd, 'CALL_END no_answer', mark), { call: (rang.call as number) + 1, reason: 'no_answer' });
  t.ok(performance.now() - rungAt > 300, 'not before the ring timeout');
  ada.user.send(lookupFrame('Bob'));
  t.same(await ada.waitJson(MessageType.found, 'FOUND for Bob, gone', mark), { name: 'Bob', online: false });
});

t.test('errors: frame limits on the header, server-only types, fields, not_joined', async (t) => {
  const server = await startServer(HOST, 0, { udpPort: 0 });
  const clients: WireClient[] = [];
  t.teardown(async () => {
    for (const client of clients) client.destroy();
    await server.close();
  });
  /** Sends `bytes` (after a HELLO when `joined`) and returns the ERROR's code, once the server closed. */
  const errorFor = async (bytes: Buffer, joined: boolean, name: string): Promise<string> => {
    const client = await WireClient.connect(HOST, server.address.port);
    clients.push(client);
    if (joined) client.send(helloFrame(name, 'lobby'));
    client.send(bytes);
    const error = framesIn(await client.waitForClose(WAIT_MS)).frames.find((frame) => frame.type === MessageType.error);
    return error === undefined ? 'no ERROR' : JSON.parse(error.payload.toString()).code;
  };
  const header = (type: number, length: number) => Buffer.from([type, length >>> 24, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff]);
  t.equal(await errorFor(header(0x1b, 1025), true, 'a1'), 'frame_too_large', 'INVITE declaring 1025 bytes, refused on the header');
  t.equal(await errorFor(header(0x19, 1025), true, 'a2'), 'frame_too_large', 'LOOKUP declaring 1025 bytes');
  for (const type of [0x1d, 0x1e, 0x1f]) t.equal(await errorFor(header(type, 257), true, `b${type}`), 'frame_too_large', `0x${type.toString(16)} declaring 257 bytes`);
  for (const type of [0x18, 0x1a, 0x1c, 0x20, 0x21, 0x22]) t.equal(await errorFor(header(type, 2), true, `c${type}`), 'unknown_type', `0x${type.toString(16)} from a client`);
  t.equal(await errorFor(inviteFrame('Bob'), false, ''), 'not_joined', 'INVITE before HELLO');
  t.equal(await errorFor(hangupFrame(0), true, 'd1'), 'bad_field', 'HANGUP of call 0');
  t.equal(await errorFor(Buffer.concat([header(0x1b, 9), Buffer.from('{"to":7}\n')]), true, 'd2'), 'bad_field', 'INVITE with a number for "to"');
  t.equal(await errorFor(Buffer.concat([header(0x19, 1), Buffer.from([0xff])]), true, 'd3'), 'bad_utf8', 'LOOKUP that is not UTF-8');
});
