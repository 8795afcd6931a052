import t from 'tap';
import { FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE } from '#shared/audio/format.ts';
import { DEFAULT_GATE, VoiceGate, frameRmsDb } from '#shared/voice-gate.ts';

// A sine of amplitude A has RMS A / sqrt(2), so a tone at L dBFS has A = 32768 * sqrt(2) * 10^(L/20).
function amplitudeForDb(levelDb: number): number {
  return 32768 * Math.SQRT2 * 10 ** (levelDb / 20);
}

/** 1 kHz sine frame (20 whole cycles per 20 ms frame, so its RMS is exactly A / sqrt(2) before rounding). */
function toneAt(levelDb: number): Buffer {
  const amplitude = amplitudeForDb(levelDb);
  const frame = Buffer.alloc(FRAME_BYTES);
  for (let i = 0; i < FRAME_SAMPLES; i++) {
    frame.writeInt16LE(Math.round(amplitude * Math.sin((2 * Math.PI * 1000 * i) / SAMPLE_RATE)), i * 2);
  }
  return frame;
}

const silence = (): Buffer => Buffer.alloc(FRAME_BYTES);

/** Feed `count` copies of a frame; returns how many were let through. */
function feed(gate: VoiceGate, frame: Buffer, count: number): number {
  let passed = 0;
  for (let i = 0; i < count; i++) if (gate.accept(frame)) passed++;
  return passed;
}

/** Feed silence until the gate closes; returns how many silent frames passed first. */
function passedUntilClosed(gate: VoiceGate): number {
  let passed = 0;
  while (gate.accept(silence())) {
    passed++;
    if (passed > 10_000) throw new Error('gate never closed');
  }
  return passed;
}

t.test('frameRmsDb measures dBFS', async (t) => {
  t.equal(frameRmsDb(silence()), -Infinity, 'silence is -Infinity');
  t.ok(Math.abs(frameRmsDb(toneAt(-20)) - -20) < 0.01, 'a -20 dBFS sine');
  t.ok(Math.abs(frameRmsDb(toneAt(-45)) - -45) < 0.05, 'a -45 dBFS sine');
  const dc = Buffer.alloc(FRAME_BYTES);
  for (let i = 0; i < FRAME_SAMPLES; i++) dc.writeInt16LE(-16384, i * 2);
  t.ok(Math.abs(frameRmsDb(dc) - 20 * Math.log10(0.5)) < 1e-9, 'constant half scale is about -6.02 dBFS');
  t.throws(() => frameRmsDb(Buffer.alloc(10)), RangeError, 'wrong frame size');
});

t.test('frameRmsDb reads frames at odd byte offsets', async (t) => {
  const frame = toneAt(-20);
  const odd = Buffer.alloc(FRAME_BYTES + 1).subarray(1);
  frame.copy(odd);
  t.equal(odd.byteOffset % 2, 1);
  t.equal(frameRmsDb(odd), frameRmsDb(frame));
});

t.test('defaults are the documented ones', async (t) => {
  t.same(DEFAULT_GATE, { openDb: -40, closeDb: -50, hangoverMs: 300, windowFrames: 2 });
});

t.test('silence never opens the gate', async (t) => {
  const gate = new VoiceGate();
  t.equal(feed(gate, silence(), 100), 0);
  t.notOk(gate.isOpen);
  t.equal(gate.levelDb, -Infinity);
});

t.test('a -20 dBFS tone opens the gate within the window', async (t) => {
  const gate = new VoiceGate();
  let firstPassed = -1;
  for (let i = 0; i < DEFAULT_GATE.windowFrames; i++) {
    if (gate.accept(toneAt(-20))) {
      firstPassed = i;
      break;
    }
  }
  t.ok(firstPassed >= 0, 'opened before the window filled');
  t.ok(gate.isOpen);
  // Once the window holds only the tone, the gate reports the tone's level.
  feed(gate, toneAt(-20), DEFAULT_GATE.windowFrames);
  t.ok(Math.abs(gate.levelDb - -20) < 0.01, `level ${gate.levelDb} is about -20 dBFS`);
});

t.test('the level is the RMS over the window, not the last frame', async (t) => {
  const gate = new VoiceGate({ windowFrames: 4 });
  gate.accept(toneAt(-20));
  // One frame at power P among four frames: mean power P/4, i.e. 10*log10(1/4) = -6.02 dB lower.
  t.ok(Math.abs(gate.levelDb - (-20 + 10 * Math.log10(1 / 4))) < 0.01);
  feed(gate, silence(), 3);
  t.ok(Math.abs(gate.levelDb - (-20 + 10 * Math.log10(1 / 4))) < 0.01, 'still in the window after 3 more');
  gate.accept(silence());
  t.equal(gate.levelDb, -Infinity, 'slid out of the window: exactly silent again');
});

t.test('hysteresis: a level between close and open keeps an open gate open but cannot open it', async (t) => {
  const between = toneAt(-45); // above closeDb (-50), below openDb (-40)
  const closed = new VoiceGate();
  t.equal(feed(closed, between, 100), 0, 'does not open a closed gate');
  t.notOk(closed.isOpen);

  const open = new VoiceGate();
  feed(open, toneAt(-20), 5);
  t.ok(open.isOpen);
  t.equal(feed(open, between, 100), 100, 'keeps an open gate open');
  t.ok(open.isOpen);
});

t.test('after speech stops, exactly the hang-over passes, then the gate closes', async (t) => {
  const hangoverFrames = DEFAULT_GATE.hangoverMs / FRAME_MS; // 300 ms / 20 ms = 15
  t.test('window of one frame: silence is below closeDb at once', async (t) => {
    const gate = new VoiceGate({ windowFrames: 1 });
    feed(gate, toneAt(-20), 10);
    t.equal(passedUntilClosed(gate), hangoverFrames);
    t.notOk(gate.isOpen);
    t.equal(feed(gate, silence(), 50), 0, 'stays closed');
  });
  t.test('default window: speech lingers in the window for windowFrames - 1 frames first', async (t) => {
    // One -20 dBFS frame among two is -23 dBFS, still >= closeDb, so that frame re-arms the hang-over.
    const gate = new VoiceGate();
    feed(gate, toneAt(-20), 10);
    t.equal(passedUntilClosed(gate), DEFAULT_GATE.windowFrames - 1 + hangoverFrames);
  });
  t.test('a hang-over that is not a whole number of frames rounds up', async (t) => {
    const gate = new VoiceGate({ windowFrames: 1, hangoverMs: 2.5 * FRAME_MS });
    feed(gate, toneAt(-20), 10);
    t.equal(passedUntilClosed(gate), 3);
  });
  t.test('no hang-over: closes on the first quiet frame', async (t) => {
    const gate = new VoiceGate({ windowFrames: 1, hangoverMs: 0 });
    feed(gate, toneAt(-20), 10);
    t.equal(passedUntilClosed(gate), 0);
  });
});

t.test('a level >= closeDb during the hang-over re-arms it', async (t) => {
  const hangoverFrames = DEFAULT_GATE.hangoverMs / FRAME_MS;
  const gate = new VoiceGate({ windowFrames: 1 });
  feed(gate, toneAt(-20), 10);
  t.equal(feed(gate, silence(), hangoverFrames - 1), hangoverFrames - 1, 'partway into the hang-over');
  // A quiet syllable: not loud enough to open a closed gate, but loud enough to count as talking.
  t.ok(gate.accept(toneAt(-45)), 'the quiet syllable passes');
  t.equal(passedUntilClosed(gate), hangoverFrames, 'a full hang-over again, not the 1 frame left');
});

t.test('a closed gate reopens on new speech', async (t) => {
  const gate = new VoiceGate({ windowFrames: 1 });
  feed(gate, toneAt(-20), 3);
  passedUntilClosed(gate);
  t.notOk(gate.isOpen);
  t.ok(gate.accept(toneAt(-30)));
});

t.test('bad options are rejected with a RangeError', async (t) => {
  t.throws(() => new VoiceGate({ openDb: -50, closeDb: -40 }), { name: 'RangeError', message: /closeDb/ });
  t.throws(() => new VoiceGate({ openDb: NaN }), RangeError);
  t.throws(() => new VoiceGate({ hangoverMs: -1 }), { name: 'RangeError', message: /hangoverMs/ });
  t.throws(() => new VoiceGate({ hangoverMs: Infinity }), RangeError);
  t.throws(() => new VoiceGate({ windowFrames: 0 }), { name: 'RangeError', message: /windowFrames/ });
  t.throws(() => new VoiceGate({ windowFrames: 1.5 }), RangeError);
  t.doesNotThrow(() => new VoiceGate({ openDb: -45, closeDb: -45 }), 'equal thresholds: no hysteresis, allowed');
});
