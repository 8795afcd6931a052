// Specification of the wire framing (shared/framing/), used from stage 02 on:
//   type u8 | length u32 big-endian | payload (length bytes)

import t from 'tap';
import { FrameParser } from '#shared/framing/frame-parser.ts';
import { encodeFrame, writeFrameHeader, FRAME_HEADER_BYTES } from '#shared/framing/frame-encoder.ts';
import {
  decodeJsonObject,
  encodeJsonFrame,
  requireString,
} from '#shared/framing/json-payload.ts';
import { SeededRandom } from '../conformance/harness/seeded-random.ts';

// ---------------------------------------------------------------------------
// Test fixtures. Frames are built BY HAND here, not with encodeFrame, so the
// parser is checked against the layout itself rather than against our encoder.

const TYPE_JSON = 0x01; // control message, up to 1024 bytes
const TYPE_PING = 0x02; // limit 0: only empty frames allowed
const TYPE_AUDIO = 0x03; // one 20 ms audio frame, up to 1920 bytes
const TYPE_BLOB = 0x04; // up to 300 bytes
const LIMITS = new Map<number, number>([
  [TYPE_JSON, 1024],
  [TYPE_PING, 0],
  [TYPE_AUDIO, 1920],
  [TYPE_BLOB, 300],
]);
const maxPayload = (type: number) => LIMITS.get(type);

interface Frame {
  type: number;
  payload: Buffer;
}

function handMadeHeader(type: number, length: number): Buffer {
  return Buffer.from([type, (length >>> 24) & 0xff, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff]);
}

function handMadeFrame(frame: Frame): Buffer {
  return Buffer.concat([handMadeHeader(frame.type, frame.payload.length), frame.payload]);
}

// 1920 bytes where every byte value appears (251 is prime, so the pattern
// never lines up with the 5-byte header or 256-byte boundaries).
const audioPayload = Buffer.from(Array.from({ length: 1920 }, (_, i) => (i * 7) % 251));

const expectedFrames: Frame[] = [
  { type: TYPE_JSON, payload: Buffer.from('{"hello":"world"}') },
  { type: TYPE_PING, payload: Buffer.alloc(0) },
  { type: TYPE_AUDIO, payload: audioPayload },
  { type: TYPE_JSON, payload: Buffer.from(JSON.stringify({ name: 'Zoë 🎤', id: 7 })) },
  { type: TYPE_BLOB, payload: Buffer.alloc(300, 0xab) }, // exactly the limit
  { type: TYPE_PING, payload: Buffer.alloc(0) }, // empty frame LAST: must come out with no more bytes
];
const stream = Buffer.concat(expectedFrames.map(handMadeFrame));

/** Feeds the chunks in order; returns what came out and the parser. */
function parseChunks(chunks: Buffer[]): { frames: Frame[]; parser: FrameParser } {
  const frames: Frame[] = [];
  const parser = new FrameParser({ maxPayload, onFrame: (type, payload) => frames.push({ type, payload }) });
  for (const chunk of chunks) parser.push(chunk);
  return { frames, parser };
}

function sameFrames(actual: Frame[], expected: Frame[]): boolean {
  return (
    actual.length === expected.length &&
    actual.every((frame, i) => frame.type === expected[i]!.type && frame.payload.equals(expected[i]!.payload))
  );
}

/** Returns the error thrown by fn; throws (failing the test) if fn throws nothing. */
function errorFrom(fn: () => void): Error & { code?: string } {
  try {
    fn();
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error('expected an error, none was thrown');
}

// ---------------------------------------------------------------------------

t.test('FrameParser: however the stream is split, the same frames come out', async (t) => {
  t.test('the whole stream in one chunk', async (t) => {
    const { frames, parser } = parseChunks([stream]);
    t.strictSame(frames, expectedFrames);
    t.equal(parser.bufferedBytes, 0, 'nothing left over after the last frame');
  });

  t.test('split into two chunks at every possible byte offset', async (t) => {
    const badSplits: number[] = [];
    for (let at = 0; at <= stream.length; at++) {
      const { frames, parser } = parseChunks([stream.subarray(0, at), stream.subarray(at)]);
      if (!sameFrames(frames, expectedFrames) || parser.bufferedBytes !== 0) badSplits.push(at);
    }
    t.strictSame(badSplits, [], `all ${stream.length + 1} split points give the same frames`);
  });

  t.test('one byte at a time', async (t) => {
    const oneByteChunks = Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1));
    const { frames } = parseChunks(oneByteChunks);
    t.strictSame(frames, expectedFrames);
  });

  t.test('random chunk sizes (fixed seed)', async (t) => {
    const random = new SeededRandom(0xc0ffee); // the same "random" splits on every run
    const badRounds: string[] = [];
    for (const maxChunk of [3, 17, 300, 4000]) {
      for (let round = 0; round < 50; round++) {
        const chunks: Buffer[] = [];
        for (let at = 0; at < stream.length; ) {
          const size = 1 + Math.floor(random.next() * maxChunk);
          chunks.push(stream.subarray(at, at + size));
          at += size;
        }
        if (!sameFrames(parseChunks(chunks).frames, expectedFrames)) badRounds.push(`max ${maxChunk}, round ${round}`);
      }
    }
    t.strictSame(badRounds, []);
  });
});

t.test('FrameParser: payload memory', async (t) => {
  t.test('a frame lying whole inside one chunk is a view of that chunk (zero-copy)', async (t) => {
    const audio = handMadeFrame({ type: TYPE_AUDIO, payload: audioPayload });
    const chunk = Buffer.concat([audio, audio]);
    const { frames } = parseChunks([chunk]);
    t.equal(frames.length, 2);
    t.equal(frames[0]!.payload.buffer, chunk.buffer, 'same memory as the chunk');
    t.equal(frames[0]!.payload.byteOffset, chunk.byteOffset + FRAME_HEADER_BYTES);
    t.equal(frames[1]!.payload.byteOffset, chunk.byteOffset + audio.length + FRAME_HEADER_BYTES);
  });

  t.test('a frame straddling chunks is copied into its own buffer of the declared size', async (t) => {
    const audio = handMadeFrame({ type: TYPE_AUDIO, payload: audioPayload });
    const first = Buffer.from(audio.subarray(0, 1000));
    const second = Buffer.from(audio.subarray(1000));
    const { frames } = parseChunks([first, second]);
    first.fill(0); // the caller reuses its chunks: the payload must not change
    second.fill(0);
    t.equal(frames[0]!.payload.length, 1920);
    t.ok(frames[0]!.payload.equals(audioPayload));
  });
});

t.test('FrameParser: limits are enforced before anything is buffered', async (t) => {
  t.test('an unknown type is rejected as soon as its type byte arrives', async (t) => {
    const { parser } = parseChunks([]);
    const error = errorFrom(() => parser.push(Buffer.from([0x99])));
    t.equal(error.name, 'ProtocolError');
    t.equal(error.code, 'unknown_type');
    t.match(error.message, /0x99/, 'the message names the type');
  });

  t.test('frames before an unknown type are still delivered, in order', async (t) => {
    const frames: Frame[] = [];
    const parser = new FrameParser({ maxPayload, onFrame: (type, payload) => frames.push({ type, payload }) });
    const chunk = Buffer.concat([handMadeFrame(expectedFrames[0]!), Buffer.from([0x99, 0, 0])]);
    t.equal(errorFrom(() => parser.push(chunk)).code, 'unknown_type');
    t.strictSame(frames, [expectedFrames[0]]);
  });

  t.test('a declared length of limit + 1 is rejected with only the header held', async (t) => {
    const { frames, parser } = parseChunks([]);
    const chunk = Buffer.concat([handMadeHeader(TYPE_AUDIO, 1921), Buffer.alloc(1921)]);
    const error = errorFrom(() => parser.push(chunk));
    t.equal(error.code, 'frame_too_large');
    t.match(error.message, /0x03/, 'names the type');
    t.match(error.message, /1921/, 'names the declared length');
    t.match(error.message, /1920/, 'names the limit');
    t.ok(parser.bufferedBytes <= FRAME_HEADER_BYTES, `payload not buffered (${parser.bufferedBytes} bytes held)`);
    t.equal(frames.length, 0);
  });

  t.test('a declared length of 0xFFFFFFFF is rejected on the 5th header byte', async (t) => {
    const { parser } = parseChunks([]);
    const header = handMadeHeader(TYPE_JSON, 0xffffffff);
    for (let i = 0; i < 4; i++) parser.push(header.subarray(i, i + 1)); // not enough to decide yet
    const error = errorFrom(() => parser.push(header.subarray(4, 5)));
    t.equal(error.code, 'frame_too_large');
    t.match(error.message, /4294967295/);
    t.ok(parser.bufferedBytes <= FRAME_HEADER_BYTES);
  });

  t.test('a limit of 0 allows only empty frames', async (t) => {
    const { parser } = parseChunks([handMadeHeader(TYPE_PING, 0)]);
    t.equal(errorFrom(() => parser.push(handMadeHeader(TYPE_PING, 1))).code, 'frame_too_large');
  });
});

t.test('FrameParser: onHeader refuses a frame on its header, before any payload byte is kept', async (t) => {
  const seen: [number, number][] = [];
  const frames: Frame[] = [];
  const parser = new FrameParser({
    maxPayload,
    onFrame: (type, payload) => frames.push({ type, payload }),
    onHeader: (type, length) => {
      seen.push([type, length]);
      if (type === TYPE_AUDIO && length < 3) throw Object.assign(new Error('too short'), { code: 'bad_voice_size' });
    },
  });
  parser.push(handMadeFrame(expectedFrames[0]!));
  t.strictSame(frames, [expectedFrames[0]], 'a frame the hook accepts is delivered');
  t.equal(errorFrom(() => parser.push(handMadeHeader(TYPE_AUDIO, 2))).code, 'bad_voice_size', 'the header alone is refused');
  t.strictSame(seen, [[expectedFrames[0]!.type, expectedFrames[0]!.payload.length], [TYPE_AUDIO, 2]], 'called with type and declared length');
  t.ok(parser.bufferedBytes <= FRAME_HEADER_BYTES, 'no payload held');
});

t.test('FrameParser: memory grows with the bytes that arrived, not with the declared length', async (t) => {
  // A frame type allowed 64 MiB. A peer declares that much and sends one byte of payload: six
  // bytes must not make the parser allocate 64 MiB (the limit is a ceiling, not a reservation).
  const BIG = 0x09;
  const limit = 64 * 1024 * 1024;
  const parsers: FrameParser[] = []; // kept alive while memory is measured
  const frames: Buffer[] = [];
  const before = process.memoryUsage().arrayBuffers;
  for (let i = 0; i < 4; i++) {
    const parser = new FrameParser({ maxPayload: (type) => (type === BIG ? limit : undefined), onFrame: (_type, payload) => frames.push(payload) });
    parser.push(Buffer.concat([handMadeHeader(BIG, limit), Buffer.from([i])]));
    parsers.push(parser);
  }
  const grown = process.memoryUsage().arrayBuffers - before;
  t.ok(grown < 1024 * 1024, `four parsers that each received 6 bytes of a 64 MiB frame hold ${grown} bytes of buffers; expected well under 1 MiB`);
  t.equal(parsers[0]!.bufferedBytes, FRAME_HEADER_BYTES + 1, 'what arrived is held');

  // And the frame still comes out whole, however it is split.
  const payload = Buffer.alloc(300_000);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
  const parser = new FrameParser({ maxPayload: (type) => (type === BIG ? limit : undefined), onFrame: (_type, p) => frames.push(Buffer.from(p)) });
  const whole = Buffer.concat([handMadeHeader(BIG, payload.length), payload]);
  for (let at = 0; at < whole.length; at += 65_536) parser.push(whole.subarray(at, at + 65_536));
  t.equal(frames.length, 1, 'one frame');
  t.ok(frames[0]!.equals(payload), 'the payload assembled from its pieces is the one sent');
  t.equal(parser.bufferedBytes, 0, 'nothing held after it');
});

t.test('FrameParser: a frame split across chunks does not depend on the caller keeping those chunks', async (t) => {
  // A caller may reuse its read buffer after push() returns: the parser must copy what it keeps.
  const frame = handMadeFrame({ type: TYPE_AUDIO, payload: audioPayload });
  const { frames, parser } = parseChunks([]);
  const reused = Buffer.alloc(1000);
  for (let at = 0; at < frame.length; at += reused.length) {
    const piece = frame.subarray(at, at + reused.length);
    piece.copy(reused);
    parser.push(reused.subarray(0, piece.length));
    reused.fill(0xee); // the caller scribbles over its buffer
  }
  t.equal(frames.length, 1);
  t.ok(frames[0]!.payload.equals(audioPayload), 'the payload is what was sent, not what the buffer holds now');
});

t.test('FrameParser: a truncated stream is visible through bufferedBytes', async (t) => {
  const audio = handMadeFrame({ type: TYPE_AUDIO, payload: audioPayload });

  t.test('cut inside the payload: no frame, header + received payload held', async (t) => {
    const { frames, parser } = parseChunks([audio.subarray(0, audio.length - 1)]);
    t.equal(frames.length, 0);
    t.equal(parser.bufferedBytes, FRAME_HEADER_BYTES + 1919);
  });

  t.test('cut right after a header announcing a payload', async (t) => {
    const { frames, parser } = parseChunks([audio.subarray(0, FRAME_HEADER_BYTES)]);
    t.equal(frames.length, 0);
    t.equal(parser.bufferedBytes, FRAME_HEADER_BYTES);
  });

  t.test('cut inside the header', async (t) => {
    const { frames, parser } = parseChunks([audio.subarray(0, 3)]);
    t.equal(frames.length, 0);
    t.equal(parser.bufferedBytes, 3);
  });
});

t.test('FrameParser: after an error the parser stays failed', async (t) => {
  t.test('a protocol error is rethrown by every later push', async (t) => {
    const { frames, parser } = parseChunks([]);
    const first = errorFrom(() => parser.push(Buffer.from([0x99])));
    const second = errorFrom(() => parser.push(handMadeFrame(expectedFrames[0]!)));
    t.equal(second, first, 'the very same error object');
    t.equal(frames.length, 0, 'valid bytes after the error are not parsed');
  });

  t.test('an error thrown by onFrame propagates and also fails the parser', async (t) => {
    const boom = new Error('handler failed');
    const parser = new FrameParser({ maxPayload, onFrame: () => { throw boom; } });
    t.equal(errorFrom(() => parser.push(stream)), boom);
    t.equal(errorFrom(() => parser.push(stream)), boom);
  });
});

t.test('encodeFrame / writeFrameHeader', async (t) => {
  t.test('produces the documented layout', async (t) => {
    t.strictSame(encodeFrame(0x07, 'hi'), Buffer.from([0x07, 0, 0, 0, 2, 0x68, 0x69]));
    t.strictSame(encodeFrame(0xff, Buffer.alloc(0)), Buffer.from([0xff, 0, 0, 0, 0]));
  });

  t.test('encodes strings as UTF-8 and counts bytes, not characters', async (t) => {
    t.strictSame(encodeFrame(0x01, 'é'), Buffer.from([0x01, 0, 0, 0, 2, 0xc3, 0xa9]));
  });

  t.test('copies a Buffer payload (later changes to the source do not leak in)', async (t) => {
    const source = Buffer.from([1, 2, 3]);
    const frame = encodeFrame(0x04, source);
    source.fill(9);
    t.strictSame(frame, Buffer.from([0x04, 0, 0, 0, 3, 1, 2, 3]));
  });

  t.test('writeFrameHeader writes in place at an offset, up to the u32 maximum', async (t) => {
    const target = Buffer.alloc(10);
    writeFrameHeader(target, 3, 0xab, 0xffffffff);
    t.strictSame(target, Buffer.from([0, 0, 0, 0xab, 0xff, 0xff, 0xff, 0xff, 0, 0]));
    writeFrameHeader(target, 0, 0x01, 0x01020304);
    t.strictSame(target.subarray(0, 5), Buffer.from([0x01, 0x01, 0x02, 0x03, 0x04]));
  });

  t.test('rejects a type outside 0..255, a length outside u32, or no room', async (t) => {
    for (const type of [-1, 256, 1.5, NaN]) {
      t.throws(() => encodeFrame(type, ''), RangeError, `type ${type}`);
    }
    for (const length of [-1, 2 ** 32, 0.5]) {
      t.throws(() => writeFrameHeader(Buffer.alloc(5), 0, 1, length), RangeError, `length ${length}`);
    }
    t.throws(() => writeFrameHeader(Buffer.alloc(7), 3, 1, 0), RangeError, 'header would overflow the buffer');
  });

  t.test('round trip: encoded frames parse back to the same frames', async (t) => {
    const encoded = Buffer.concat(expectedFrames.map((f) => encodeFrame(f.type, f.payload)));
    t.strictSame(encoded, stream, 'same bytes as the hand-made stream');
    t.strictSame(parseChunks([encoded]).frames, expectedFrames);
  });
});

t.test('JSON control payloads', async (t) => {
  t.test('decodeJsonObject returns the object', async (t) => {
    t.strictSame(decodeJsonObject(Buffer.from('{"name":"Zoë","room":{"id":3}}')), { name: 'Zoë', room: { id: 3 } });
  });

  t.test('invalid UTF-8 is "bad_utf8" (not silently replaced by U+FFFD)', async (t) => {
    const invalid = [
      [0xc3, 0x28], // a lead byte followed by a non-continuation byte
      [0xff], // never valid in UTF-8
      [0xc0, 0x80], // overlong encoding of U+0000
    ];
    for (const bytes of invalid) {
      // The bad bytes sit inside a JSON string: {"a":"<bad>"}
      const payload = Buffer.concat([Buffer.from('{"a":"'), Buffer.from(bytes), Buffer.from('"}')]);
      t.equal(errorFrom(() => decodeJsonObject(payload)).code, 'bad_utf8', Buffer.from(bytes).toString('hex'));
    }
  });

  t.test('invalid JSON, or JSON that is not an object, is "bad_json"', async (t) => {
    for (const text of ['', '{', "{'a':1}", '[]', 'null', '"x"', '42', 'true']) {
      t.equal(errorFrom(() => decodeJsonObject(Buffer.from(text))).code, 'bad_json', JSON.stringify(text));
    }
  });

  t.test('encodeJsonFrame round trips through the parser', async (t) => {
    const message = { type: 'join', name: 'Zoë 🎤', room: 4 };
    const { frames } = parseChunks([encodeJsonFrame(TYPE_JSON, message)]);
    t.equal(frames[0]!.type, TYPE_JSON);
    t.strictSame(decodeJsonObject(frames[0]!.payload), message);
  });

  t.test('requireString', async (t) => {
    t.equal(requireString({ name: 'Zoë' }, 'name'), 'Zoë');
    for (const wrong of [{}, { name: 3 }, { name: null }, { name: ['Zoë'] }, { name: { first: 'Zoë' } }]) {
      const error = errorFrom(() => requireString(wrong, 'name'));
      t.equal(error.code, 'bad_field', JSON.stringify(wrong));
      t.match(error.message, /"name".*string/, 'names the field and the expected type');
    }
    t.equal(errorFrom(() => requireString({}, 'toString')).code, 'bad_field', 'inherited properties do not count');
  });
});
