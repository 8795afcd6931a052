// The fuzz cases: what one hostile connection sends. Each case is built from its seed alone:
//   - random:   random bytes (sometimes behind a plausible header);
//   - mutated:  a valid session (HELLO, audio, BYE, and in stage 04 JOIN and LIST_ROOMS) with a few
//               mutations: bit flips, truncations, duplicated, dropped or swapped frames, a rewritten
//               length, inserted junk.
// The bytes are then split into 1-4 writes at random offsets, and the connection ends with a FIN or
// a reset (TCP cuts streams anywhere; a server must not care).
import { jsonFrame, frame } from './frames.ts';
import { SeededRandom } from '../harness/seeded-random.ts';
import { ACCEPT, ACK, AUDIO, BYE, CANCEL, CHUNK, DECLINE, FRAME_BYTES, HANGUP, HELLO, INVITE, JOIN, LIST_ROOMS, LOOKUP, OFFER, PATH, type StageWire, TEXT } from './wire-spec.ts';

export interface FuzzCase {
  seed: number;
  kind: 'random' | 'mutated';
  /** What was done to the stream, for the failure report ("bit flip at 17, swap 1<->2"). */
  recipe: string;
  /** The writes, in order. */
  chunks: Buffer[];
  /** How the connection ends if the server has not closed it: a clean FIN or a reset. */
  ending: 'fin' | 'reset';
}

/** The room fuzz users of stage 04 join (and the probe looks at). */
export const FUZZ_ROOM = 'fuzz';

/** Names a server must refuse (and one that is not even a string). */
export const HOSTILE_NAMES: readonly unknown[] = [
  '', ' ', '   ', ' Ada', 'Ada ', '\x1b[2J\x1b[31mgotcha', 'bell\x07', 'two\nlines', 'back\rspace', 'nul\u0000',
  'del\x7f', 'csi\u009b31m', '\u202egnp.exe', 'iso\u2066late', 'line\u2028sep', 'x'.repeat(33), '🎧'.repeat(33), 42, null, ['Ada'],
];
const HOSTILE_ROOMS: readonly unknown[] = ['', 'a b', 'r'.repeat(65), 'caf\u00e9', '\x1b[2J', 7];

export function fuzzCase(wire: StageWire, seed: number): FuzzCase {
  const random = new SeededRandom(seed);
  const kind = random.chance(0.25) ? 'random' : 'mutated';
  const { bytes, recipe } = kind === 'random' ? randomStream(wire, random) : mutatedStream(wire, random, seed);
  return { seed, kind, recipe, chunks: split(bytes, random), ending: random.chance(0.5) ? 'fin' : 'reset' };
}

function randomStream(wire: StageWire, random: SeededRandom): { bytes: Buffer; recipe: string } {
  const junk = random.bytes(random.int(1, random.chance(0.5) ? 16 : 4000));
  if (random.chance(0.5)) return { bytes: junk, recipe: `${junk.length} random bytes` };
  // A known type byte first, so the junk gets past the type check and tests the length and payload.
  const type = random.pick([...wire.clientLimits.keys()]);
  junk[0] = type;
  return { bytes: junk, recipe: `type 0x${type.toString(16)} then ${junk.length - 1} random bytes` };
}

function mutatedStream(wire: StageWire, random: SeededRandom, seed: number): { bytes: Buffer; recipe: string } {
  // Mostly a fine name (the mutations then do the damage), sometimes one the name rule forbids.
  const name = random.chance(0.15) ? random.pick(HOSTILE_NAMES) : `fz${seed}`;
  const room = random.chance(0.1) ? random.pick(HOSTILE_ROOMS) : FUZZ_ROOM;
  const frames: Buffer[] = [jsonFrame(HELLO, wire.hello(name as string, room as string))];
  const count = random.int(0, 6);
  for (let i = 0; i < count; i++) {
    // Stage 06 adds PATH (choice 6); the draws of earlier stages stay as they were (their seeds replay).
    // Stage 07 adds TEXT, OFFER, CHUNK, ACK and CANCEL (choices 7-11); stage 08 LOOKUP, INVITE,
    // ACCEPT, DECLINE and HANGUP (12-16), never to a name that is online but its own (no fuzz case rings another).
    const choice = random.int(0, wire.moves === undefined ? 3 : wire.calls ? 16 : wire.chat ? 11 : wire.clientLimits.has(PATH) ? 6 : 5);
    const callee = () => random.pick(['Nobody-here', `fz${seed}`, '\x1b[2J', 'x'.repeat(40), '']);
    // Stage 05's VOICE: a sequence number and a (random, never decoded) packet of 1-200 bytes.
    if (choice <= 2) frames.push(frame(AUDIO, random.bytes(wire.opusVoice ? random.int(3, 202) : FRAME_BYTES)));
    else if (choice === 3) frames.push(frame(BYE));
    else if (choice === 4) frames.push(jsonFrame(JOIN, { room: random.pick([FUZZ_ROOM, 'fuzz-2', 'fuzz:3']) }));
    else if (choice === 5) frames.push(frame(LIST_ROOMS));
    else if (choice === 6) frames.push(jsonFrame(PATH, { path: random.pick(['udp', 'tcp']) }));
    else if (choice === 7) frames.push(jsonFrame(TEXT, { text: random.pick(['hi', 'x'.repeat(1001), 'esc\x1b[2J', '   ', 'psst']), ...(random.chance(0.3) ? { to: random.int(0, 70000) } : {}) }));
    else if (choice === 8) frames.push(jsonFrame(OFFER, { name: random.pick(['a.txt', '../../x', '..', 'a/b']), size: random.pick([0, 1, 16384, 67108865]), sha256: random.pick(['ab'.repeat(32), 'AB'.repeat(32), 'x']) }));
    else if (choice === 9) frames.push(frame(CHUNK, random.bytes(random.int(7, 300))));
    else if (choice === 10) frames.push(frame(ACK, random.bytes(6)));
    else if (choice === 11) frames.push(jsonFrame(CANCEL, { transfer: random.int(0, 70000) }));
    else if (choice === 12) frames.push(jsonFrame(LOOKUP, { name: callee() }));
    else if (choice === 13) frames.push(jsonFrame(INVITE, { to: callee(), ...(random.chance(0.3) ? { relay_only: random.chance(0.5) } : {}) }));
    else frames.push(jsonFrame(random.pick([ACCEPT, DECLINE, HANGUP]), { call: random.int(0, 70000) }));
  }
  const steps: string[] = [];
  const mutations = random.int(1, 3);
  for (let i = 0; i < mutations; i++) steps.push(mutateFrames(frames, random));
  let bytes = Buffer.concat(frames);
  if (random.chance(0.2) && bytes.length > 1) {
    const at = random.int(1, bytes.length - 1);
    bytes = bytes.subarray(0, at);
    steps.push(`truncate to ${at} bytes`);
  }
  return { bytes, recipe: `${frames.length} frames; ${steps.join(', ')}` };
}

/** Applies one mutation to the list of frames in place and says which. */
function mutateFrames(frames: Buffer[], random: SeededRandom): string {
  const i = random.int(0, frames.length - 1);
  const target = Buffer.from(frames[i]!);
  switch (random.int(0, 6)) {
    case 0: {
      // In the first 64 bytes most of the time: that is where headers and JSON are.
      const at = random.chance(0.8) ? random.int(0, Math.min(63, target.length - 1)) : random.int(0, target.length - 1);
      const bit = random.int(0, 7);
      target[at] = target[at]! ^ (1 << bit);
      frames[i] = target;
      return `flip bit ${bit} of byte ${at} of frame ${i}`;
    }
    case 1: {
      const at = random.int(0, target.length);
      frames[i] = target.subarray(0, at);
      return `cut frame ${i} to ${at} bytes`;
    }
    case 2:
      frames.splice(i, 0, target);
      return `duplicate frame ${i}`;
    case 3: {
      const j = random.int(0, frames.length - 1);
      [frames[i], frames[j]] = [frames[j]!, frames[i]!];
      return `swap frames ${i} and ${j}`;
    }
    case 4:
      if (frames.length > 1) {
        frames.splice(i, 1);
        return `drop frame ${i}`;
      }
      return 'nothing';
    case 5: {
      if (target.length < 5) return 'nothing';
      const length = random.pick([0, 1, 2, 3, target.length - 5 + 1, 1024, 1025, 1277, 1278, 1919, 1921, 0xffff, 0xffffffff, random.int(0, 5000)]);
      target.writeUInt32BE(length >>> 0, 1);
      frames[i] = target;
      return `length of frame ${i} := ${length}`;
    }
    default: {
      const junk = random.bytes(random.int(1, 12));
      frames.splice(i, 0, junk);
      return `insert ${junk.length} random bytes before frame ${i}`;
    }
  }
}

/** Cuts the stream into 1-4 writes at random offsets. */
function split(bytes: Buffer, random: SeededRandom): Buffer[] {
  const cuts = new Set<number>();
  const count = random.int(0, 3);
  for (let i = 0; i < count && bytes.length > 1; i++) cuts.add(random.int(1, bytes.length - 1));
  const offsets = [...cuts].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const offset of [...offsets, bytes.length]) {
    if (offset > start) chunks.push(bytes.subarray(start, offset));
    start = offset;
  }
  return chunks;
}
