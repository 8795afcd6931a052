// Hostile datagrams against a stage 06 server (spoken only through the datagram layouts of
// 06-udp/README.md): while one user talks to another over UDP, an attacker throws seeded random
// datagrams, guessed tokens, another user's id, truncated and oversized datagrams, replays of the
// talker's own datagrams and a flood at the server's UDP port. None may be answered (no
// reflection, no amplification), none may reach the room, and the conversation must go on.
import { expect, type Check } from '../harness/checks.ts';
import { DatagramPeer } from '../harness/datagram-peer.ts';
import type { StageWire } from './wire-spec.ts';
import { SeededRandom } from '../harness/seeded-random.ts';
import { FRAME_MS } from '#shared/audio/format.ts';
import { bindAndPath, describeAll, packets, ping, pingPong, udpBarrier, voiceDown, voiceDownsAt, voiceUp, withMembers } from '../checks/06-udp.ts';

/** The talker's packets: 2 s of voice, one every 20 ms. */
const TALK_PACKETS = 100;
/** Hostile datagrams sent per 20 ms while the talker talks (1500 per second). */
const ATTACK_PER_TICK = 30;
/** Of the talker's voice, the listener must get at least this share (the attack shares the server's socket buffer). */
const MIN_DELIVERED = 0.9;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One seeded hostile datagram. */
function hostileDatagram(random: SeededRandom, talker: { id: number; token: Buffer }, recorded: Buffer[]): Buffer {
  const packet = random.bytes(random.int(1, 200));
  switch (random.int(0, 7)) {
    case 0: // random bytes of any length, up to a large datagram
      return random.bytes(random.int(0, 1400));
    case 1: // a VOICE_UP with a guessed token
      return voiceUp(random.bytes(8), random.int(0, 0xffff), packet);
    case 2: // a PING with a guessed token
      return ping(random.bytes(8), random.int(1, 1_000_000), random.int(0, 0xffffffff));
    case 3: // "another user's id": a VOICE_DOWN naming the talker, sent to the server
      return voiceDown(talker.id, random.int(0, 0xffff), packet);
    case 4: // the talker's token, truncated (no packet: 11 bytes) or oversized (1287 bytes)
      return voiceUp(talker.token, random.int(0, 0xffff), random.chance(0.5) ? Buffer.alloc(0) : random.bytes(1276));
    case 5: { // the talker's token with one bit flipped
      const token = Buffer.from(talker.token);
      token[random.int(0, 7)]! ^= 1 << random.int(0, 7);
      return voiceUp(token, random.int(0, 0xffff), packet);
    }
    case 6: // a replay of one of the talker's datagrams (stolen from the path, sent again from elsewhere)
      return recorded.length > 0 ? recorded[random.int(0, recorded.length - 1)]! : random.bytes(17);
    default: // a PONG or unknown type byte with junk
      return Buffer.concat([Buffer.of(random.pick([0x04, 0x05, 0x7f, 0xff])), random.bytes(random.int(0, 40))]);
  }
}

/** The hostile datagram checks for a stage with datagrams (06 on), joining with its protocol. */
export const datagramChecks = (wire: StageWire): Check[] => [
  {
    name: `hostile ${wire.id}: random datagrams, guessed and flipped tokens, another user\'s id, truncated and oversized datagrams, replays and a flood get no answer and never reach the room; the conversation goes on`,
    run: (context) =>
      withMembers(context, async (members) => {
        const tal = await members.join('Tal', 'hostile-udp');
        const lis = await members.join('Lis', 'hostile-udp');
        const mal = await members.join('Mal', 'hostile-udp'); // a joined attacker, with its own bound socket
        await bindAndPath(tal, 'tcp');
        await bindAndPath(lis, 'udp');
        await bindAndPath(mal, 'udp');
        const stranger = await DatagramPeer.start(); // an attacker who never joined
        try {
          const random = new SeededRandom(606);
          const voice = packets(607, Array.from({ length: TALK_PACKETS }, (_, i) => 40 + (i % 60)));
          const recorded: Buffer[] = [];
          const since = { lis: lis.udp.received.length, mal: mal.udp.received.length, tal: tal.udp.received.length };
          let attacks = 0;
          for (const [i, packet] of voice.entries()) {
            const datagram = voiceUp(tal.token, i, packet);
            tal.udp.send(datagram, tal.server);
            recorded.push(datagram);
            for (let k = 0; k < ATTACK_PER_TICK; k++) {
              const hostile = hostileDatagram(random, tal, recorded);
              (k % 3 === 0 ? mal.udp : stranger).send(hostile, tal.server);
              attacks++;
            }
            await sleep(FRAME_MS);
          }
          await udpBarrier([tal, lis, mal]);
          expect(stranger.received.length === 0, 'the server answered a hostile datagram from an address that never joined', {
            expected: `no answer to any of the ~${Math.round((attacks * 2) / 3)} datagrams the stranger sent`,
            actual: `the stranger got ${stranger.received.length}: ${describeAll(stranger.received)}`,
            received: stranger.received[0]?.data,
            hint: 'answer only a PING whose token is valid (and new), only at the bound address: a bad datagram is dropped silently',
          });
          const expected = new Set(voice.map((p, i) => voiceDown(tal.id, i, p).toString('hex')));
          const malGot = mal.udp.received.slice(since.mal).filter((d) => !expected.has(d.data.toString('hex')) && !(d.data[0] === 0x04 && d.data.length === 13 && d.data.readUInt32BE(1) >= mal.nextPing - 3));
          expect(malGot.length === 0, 'the server answered or forwarded a hostile datagram to the joined attacker', {
            expected: 'nothing but PONGs to Mal\'s own valid PINGs (the talker\'s voice goes to Mal only if it passed every check)',
            actual: `Mal's socket got: ${describeAll(malGot)}`,
            hint: 'a datagram with another user\'s id, a guessed token or a replay is dropped, never answered',
          });
          const got = voiceDownsAt(lis, since.lis);
          const strange = got.filter((d) => !expected.has(d.data.toString('hex')));
          expect(strange.length === 0, 'a hostile datagram reached the listener', {
            expected: 'only the talker\'s own VOICE_DOWN, byte for byte',
            actual: `${strange.length} others: ${describeAll(strange)}`,
            received: strange[0]?.data,
            hint: 'forward only VOICE_UP with a valid token and a sequence the replay window has not seen; the speaker id comes from the token, never from the datagram',
          });
          const distinct = new Set(got.map((d) => d.data.toString('hex'))).size;
          expect(distinct === got.length && distinct >= TALK_PACKETS * MIN_DELIVERED, 'the talker\'s voice did not get through the attack', {
            expected: `at least ${Math.ceil(TALK_PACKETS * MIN_DELIVERED)} of the talker's ${TALK_PACKETS} VOICE_UP forwarded, each once`,
            actual: `${got.length} VOICE_DOWN, ${distinct} different`,
            hint: 'a replay must not be forwarded twice; an attack of bad datagrams must not stop good ones (drop bad ones early, before any work)',
          });
          await pingPong(tal, 'the talker\'s binding must survive replays of its datagrams from elsewhere: they are not new, so they do not rebind');
          expect(tal.udp.received.slice(since.tal).every((d) => d.data.length <= 17), 'the talker got a datagram larger than a PING', {
            expected: 'PONGs of 13 bytes only', actual: describeAll(tal.udp.received.slice(since.tal)), hint: 'no answer larger than what provoked it',
          });
        } finally {
          stranger.close();
        }
      }, wire.protocol),
  },
];
