// Stage 08's server over real sockets, in this process (the graded checks over the wire are in
// conformance/checks/08-*): names unique on the server, ADDRESS after the first PING, LOOKUP,
// a call from INVITE to CALL_START with each party's exact bound address, PRESENCE to the room
// (never naming the peer), the relay to the peer only and never to the room, the peer datagram
// types dropped, no_answer on a short --ring-timeout, peer_left when a party's connection resets.
import { createSocket, type Socket as DatagramSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import t from 'tap';
import { acceptFrame, inviteFrame, lookupFrame } from '../08-calls/call-messages.ts';
import { callProbeDatagram, callVoiceDatagram, pingDatagram, voiceUpDatagram } from '../08-calls/datagrams.ts';
import { clientVoiceFrame, helloFrame, MessageType, pathFrame } from '../08-calls/protocol.ts';
import { startServer } from '../08-calls/server.ts';

const WAIT_MS = 3_000;

interface Frame {
  type: number;
  payload: Buffer;
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
        this.frames.push({ type: this.buffered[0]!, payload: this.buffered.subarray(5, 5 + length) });
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

  ada.socket.write(inviteFrame('Bob'));
  const rang = await bob.waitJson(MessageType.invite, 'INVITE to Bob');
  t.same(rang, { call: rang.call, from: { id: adaId, name: 'Ada' } });
  t.same(await ada.waitJson(MessageType.ringing, 'RINGING'), { call: rang.call, to: { id: bobId, name: 'Bob' } });
  const catMark = cat.frames.length;
  bob.socket.write(acceptFrame(rang.call as number));
  const startAda = await ada.waitJson(MessageType.callStart, 'CALL_START to Ada');
  const startBob = await bob.waitJson(MessageType.callStart, 'CALL_START to Bob');
  t.same(startAda.peer_address, { address: '127.0.0.1', port: bob.udpPort }, 'Ada gets Bob\'s exact bound address');
  t.same(startBob.peer_address, { address: '127.0.0.1', port: ada.udpPort }, 'Bob gets Ada\'s');
  t.equal(startAda.token, startBob.token);
  t.same(await cat.waitJson(MessageType.presence, 'PRESENCE to Ada\'s room', catMark), { id: adaId, name: 'Ada', in_call: true }, 'the room learns Ada is in a call, not with whom');
  t.same(bob.json(MessageType.presence), [], 'Bob\'s room (only him) hears nothing of Ada');

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
  t.equal(cat.frames.slice(catMark).some((frame) => frame.type === MessageType.voice), false, 'the room never hears Ada in the call');
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

  const catPresence = cat.frames.length;
  bob.socket.resetAndDestroy();
  t.same(await ada.waitJson(MessageType.callEnd, 'CALL_END peer_left'), { call: rang.call, reason: 'peer_left', by: { id: bobId, name: 'Bob' } });
  t.same(await cat.waitJson(MessageType.presence, 'PRESENCE in_call false', catPresence), { id: adaId, name: 'Ada', in_call: false });

  const mark = ada.frames.length;
  ada.socket.write(inviteFrame('Cat'));
  await cat.waitJson(MessageType.invite, 'INVITE to Cat', catPresence);
  const rungAt = performance.now();
  t.same(await ada.waitJson(MessageType.callEnd, 'CALL_END no_answer', mark), { call: (rang.call as number) + 1, reason: 'no_answer' });
  t.ok(performance.now() - rungAt > 300, 'not before the ring timeout');
  ada.socket.write(lookupFrame('Bob'));
  t.same(await ada.waitJson(MessageType.found, 'FOUND for Bob, gone', mark), { name: 'Bob', online: false });
});
