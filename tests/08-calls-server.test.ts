// Stage 08's server over real sockets, in this process (the graded checks over the wire are in
// conformance/checks/08-*): names unique on the server, ADDRESS after the first PING, LOOKUP,
// a call from INVITE to CALL_START with each party's exact bound address, PRESENCE to the room
// (never naming the peer), the relay to the peer only and never to the room, the peer datagram
// types dropped, no_answer on a short --ring-timeout, peer_left when a party's connection resets.
import { createSocket, type Socket as DatagramSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import t from 'tap';
import { acceptFrame, hangupFrame, inviteFrame, lookupFrame } from '../08-calls/call-messages.ts';
import { callProbeDatagram, callVoiceDatagram, pingDatagram, voiceUpDatagram } from '../08-calls/datagrams.ts';
import { clientVoiceFrame, helloFrame, joinFrame, MessageType, pathFrame } from '../08-calls/protocol.ts';
import { startServer } from '../08-calls/server.ts';

const WAIT_MS = 3_000;

interface Frame {
  type: number;
  payload: Buffer;
  /** performance.now() when it was read. */
  at: number;
}

/** A raw protocol user: a TCP connection that keeps every frame, and a UDP socket of its own. */
class RawUser {
  readonly frames: Frame[] = [];
  readonly datagrams: Buffer[] = [];
  private buffered = Buffer.alloc(0);
  private wakers: (() => void)[] = [];
  welcome: Record<string, unknown> = {};
  closed = false;

  private constructor(
    readonly socket: Socket,
    readonly udp: DatagramSocket,
  ) {
    socket.on('data', (chunk) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      while (this.buffered.length >= 5 && this.buffered.length >= 5 + this.buffered.readUInt32BE(1)) {
        const length = this.buffered.readUInt32BE(1);
        this.frames.push({ type: this.buffered[0]!, payload: this.buffered.subarray(5, 5 + length), at: performance.now() });
        this.buffered = this.buffered.subarray(5 + length);
      }
      this.wake();
    });
    socket.on('close', () => ((this.closed = true), this.wake()));
    socket.on('error', () => {});
    udp.on('message', (datagram) => (this.datagrams.push(datagram), this.wake()));
  }

  static async join(port: number, name: string, room: string): Promise<RawUser> {
    const socket = connect(port, '127.0.0.1');
    const udp = createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    const user = new RawUser(socket, udp);
    socket.write(helloFrame(name, room));
    const welcome = await user.waitFor('WELCOME', (frame) => frame.type === MessageType.welcome || frame.type === MessageType.error);
    user.welcome = JSON.parse(welcome.payload.toString());
    return user;
  }

  get udpPort(): number {
    return this.udp.address().port;
  }

  get token(): Buffer {
    return Buffer.from(this.welcome.token as string, 'hex');
  }

  json(type: number, since = 0): Record<string, unknown>[] {
    return this.frames.slice(since).filter((frame) => frame.type === type).map((frame) => JSON.parse(frame.payload.toString()));
  }

  async waitFor(what: string, matches: (frame: Frame) => boolean, since = 0): Promise<Frame> {
    const deadline = performance.now() + WAIT_MS;
    for (;;) {
      const found = this.frames.slice(since).find(matches);
      if (found !== undefined) return found;
      if (this.closed || performance.now() > deadline) throw new Error(`no ${what} within ${WAIT_MS} ms (closed: ${this.closed}); got types ${this.frames.map((f) => f.type.toString(16))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.wakers.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }

  async waitJson(type: number, what: string, since = 0): Promise<Record<string, unknown>> {
    return JSON.parse((await this.waitFor(what, (frame) => frame.type === type, since)).payload.toString());
  }

  async waitDatagram(what: string, matches: (datagram: Buffer) => boolean): Promise<Buffer> {
    const deadline = performance.now() + WAIT_MS;
    for (;;) {
      const found = this.datagrams.find(matches);
      if (found !== undefined) return found;
      if (performance.now() > deadline) throw new Error(`no ${what} within ${WAIT_MS} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.wakers.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }

  close(): void {
    this.socket.destroy();
    this.udp.close();
  }

  private wake(): void {
    for (const wake of this.wakers.splice(0)) wake();
  }
}

t.test('a call over real sockets', async (t) => {
  const server = await startServer('127.0.0.1', 0, { udpPort: 0, ringTimeoutS: 0.5 });
  const users: RawUser[] = [];
  t.teardown(async () => {
    for (const user of users) user.close();
    await server.close();
  });
  const join = async (name: string, room: string) => {
    const user = await RawUser.join(server.address.port, name, room);
    users.push(user);
    return user;
  };
  const serverUdp = { address: '127.0.0.1', port: server.udpPort };
  const ping = (user: RawUser, n: number) => user.udp.send(pingDatagram(user.token, n, 0), serverUdp.port, serverUdp.address);

  const ada = await join('Ada', 'lobby');
  const bob = await join('Bob', 'game-42');
  const cat = await join('Cat', 'lobby');
  const copy = await join('Ada', 'elsewhere');
  t.equal(copy.frames[0]!.type, MessageType.error, 'a name used in another room');
  t.equal(JSON.parse(copy.frames[0]!.payload.toString()).code, 'name_taken', 'is name_taken: names are unique on the server');
  const adaId = ada.welcome.id as number;
  const bobId = bob.welcome.id as number;

  ping(ada, 1);
  ping(bob, 1);
  t.same(await ada.waitJson(MessageType.address, 'ADDRESS for Ada'), { address: '127.0.0.1', port: ada.udpPort }, 'ADDRESS: the socket the PING came from');
  t.same(await bob.waitJson(MessageType.address, 'ADDRESS for Bob'), { address: '127.0.0.1', port: bob.udpPort });
  ada.socket.write(pathFrame('udp')); // Ada hears by UDP, Bob by TCP: the relay must use each one's path

  ada.socket.write(lookupFrame('Bob'));
  t.same(await ada.waitJson(MessageType.found, 'FOUND'), { name: 'Bob', online: true, state: 'available' }, 'FOUND: online and available, nothing more');

  // Ada talks in her room (a VOICE_UP every 20 ms) until her call starts: Cat sees her in SPEAKING.
  let roomSequence = 60_000;
  const talking = setInterval(() => ada.udp.send(voiceUpDatagram(ada.token, roomSequence++, Buffer.from('room')), serverUdp.port, serverUdp.address), 20);
  t.teardown(() => clearInterval(talking));
  await cat.waitFor('SPEAKING with Ada', (frame) => frame.type === MessageType.speaking && frame.payload.toString().includes('"Ada"'));

  ada.socket.write(inviteFrame('Bob'));
  const rang = await bob.waitJson(MessageType.invite, 'INVITE to Bob');
  t.same(rang, { call: rang.call, from: { id: adaId, name: 'Ada' } });
  t.same(await ada.waitJson(MessageType.ringing, 'RINGING'), { call: rang.call, to: { id: bobId, name: 'Bob' } });
  const catMark = cat.frames.length;
  bob.socket.write(acceptFrame(rang.call as number));
  const startAda = await ada.waitJson(MessageType.callStart, 'CALL_START to Ada');
  clearInterval(talking);
  const startBob = await bob.waitJson(MessageType.callStart, 'CALL_START to Bob');
  t.same(startAda.peer_address, { address: '127.0.0.1', port: bob.udpPort }, 'Ada gets Bob\'s exact bound address');
  t.same(startBob.peer_address, { address: '127.0.0.1', port: ada.udpPort }, 'Bob gets Ada\'s');
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
  ada.udp.send(voiceUpDatagram(ada.token, 1, packet), serverUdp.port, serverUdp.address);
  const relayed = await bob.waitFor('Ada\'s voice relayed to Bob', (frame) => frame.type === MessageType.voice);
  t.same(relayed.payload, Buffer.concat([Buffer.from([adaId >> 8, adaId & 0xff, 0, 1]), packet]), 'TCP VOICE to Bob: Ada\'s id, her sequence and packet, byte for byte');
  bob.socket.write(clientVoiceFrame(7, Buffer.from('bob-voice')));
  const down = await ada.waitDatagram('Bob\'s voice as VOICE_DOWN', (datagram) => datagram[0] === 0x02);
  t.same(down, Buffer.concat([Buffer.from([0x02, bobId >> 8, bobId & 0xff, 0, 7]), Buffer.from('bob-voice')]), 'VOICE_DOWN to Ada by her PATH');
  cat.socket.write(clientVoiceFrame(1, Buffer.from('cat-voice')));
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.equal(cat.frames.slice(inCallMark).some((frame) => frame.type === MessageType.voice), false, 'the room never hears Ada in the call');
  t.equal(ada.datagrams.filter((datagram) => datagram[0] === 0x02).length, 1, 'Ada hears Bob only, not Cat\'s room voice');
  t.equal(ada.frames.some((frame) => frame.type === MessageType.voice), false);

  const before = ada.datagrams.length;
  ada.udp.send(callProbeDatagram(ada.token, 1, 0), serverUdp.port, serverUdp.address);
  ada.udp.send(callVoiceDatagram(ada.token, 2, packet), serverUdp.port, serverUdp.address);
  ping(ada, 2);
  await ada.waitDatagram('PONG after the peer datagrams', (datagram) => datagram[0] === 0x04 && datagram.readUInt32BE(1) === 2);
  t.equal(ada.datagrams.slice(before).filter((datagram) => datagram[0] !== 0x04).length, 0, 'CALL_PROBE and CALL_VOICE to the server: no answer');
  t.equal(bob.frames.filter((frame) => frame.type === MessageType.voice).length, 1, 'and nothing forwarded');
  t.equal(server.counters.bad_type, 2, 'both dropped as bad_type');

  const bobMark = bob.frames.length;
  const adaMark = ada.frames.length;
  ada.socket.write(joinFrame('game-42'));
  const usersAfterMove = await ada.waitJson(MessageType.users, 'USERS after Ada\'s move', adaMark);
  t.same(usersAfterMove.users, [{ id: bobId, name: 'Bob', in_call: true }, { id: adaId, name: 'Ada', in_call: true }], 'USERS shows in_call');
  const joinedThenPresence = bob.frames.slice(bobMark).filter((frame) => frame.type === MessageType.joined || frame.type === MessageType.presence);
  t.same(joinedThenPresence.map((frame) => frame.type), [MessageType.joined, MessageType.presence], 'the new room: JOINED, then PRESENCE');
  t.same(JSON.parse(joinedThenPresence[1]!.payload.toString()), { id: adaId, name: 'Ada', in_call: true });
  t.equal(cat.json(MessageType.presence, inCallMark).length, 0, 'the old room gets no PRESENCE for the move (LEFT moved says it)');
  ada.udp.send(voiceUpDatagram(ada.token, 2, packet), serverUdp.port, serverUdp.address);
  await bob.waitFor('the call goes on after the move', (frame) => frame.type === MessageType.voice, bobMark);

  const moved = createSocket('udp4');
  await new Promise<void>((resolve) => moved.bind(0, '127.0.0.1', resolve));
  moved.send(pingDatagram(ada.token, 3, 0), serverUdp.port, serverUdp.address);
  t.same(await ada.waitJson(MessageType.address, 'ADDRESS after a rebind', adaMark), { address: '127.0.0.1', port: moved.address().port }, 'ADDRESS again after a rebind');
  moved.close();

  const catPresence = cat.frames.length;
  ada.socket.write(joinFrame('lobby'));
  t.same(await cat.waitJson(MessageType.presence, 'PRESENCE as Ada moves back in', catPresence), { id: adaId, name: 'Ada', in_call: true }, 'a party who moves in: PRESENCE after JOINED');
  const catBeforeEnd = cat.frames.length;
  bob.socket.resetAndDestroy();
  t.same(await ada.waitJson(MessageType.callEnd, 'CALL_END peer_left'), { call: rang.call, reason: 'peer_left', by: { id: bobId, name: 'Bob' } });
  t.same(await cat.waitJson(MessageType.presence, 'PRESENCE in_call false', catBeforeEnd), { id: adaId, name: 'Ada', in_call: false }, 'the end: Ada\'s room is told');

  const mark = ada.frames.length;
  ada.socket.write(inviteFrame('Cat'));
  await cat.waitJson(MessageType.invite, 'INVITE to Cat', catBeforeEnd);
  const rungAt = performance.now();
  t.same(await ada.waitJson(MessageType.callEnd, 'CALL_END no_answer', mark), { call: (rang.call as number) + 1, reason: 'no_answer' });
  t.ok(performance.now() - rungAt > 300, 'not before the ring timeout');
  ada.socket.write(lookupFrame('Bob'));
  t.same(await ada.waitJson(MessageType.found, 'FOUND for Bob, gone', mark), { name: 'Bob', online: false });
});

t.test('errors: frame limits on the header, server-only types, fields, not_joined', async (t) => {
  const server = await startServer('127.0.0.1', 0, { udpPort: 0 });
  const sockets: Socket[] = [];
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy();
    await server.close();
  });
  /** Sends `bytes` (after a HELLO when `joined`) and returns the ERROR's code, once the server closed. */
  const errorFor = async (bytes: Buffer, joined: boolean, name: string): Promise<string> => {
    const socket = connect(server.address.port, '127.0.0.1');
    sockets.push(socket);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', () => {});
    const closed = new Promise((resolve) => socket.on('close', resolve));
    if (joined) socket.write(helloFrame(name, 'lobby'));
    socket.write(bytes);
    await closed;
    const all = Buffer.concat(chunks);
    let offset = 0;
    while (offset + 5 <= all.length) {
      const length = all.readUInt32BE(offset + 1);
      if (all[offset] === MessageType.error) return JSON.parse(all.subarray(offset + 5, offset + 5 + length).toString()).code;
      offset += 5 + length;
    }
    return 'no ERROR';
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
