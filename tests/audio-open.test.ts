// openSource / openSink: the --input and --output specs.
// (mic and speaker are tested against a pretend sound card in audio-portaudio.test.ts.)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { FRAME_BYTES } from '#shared/audio/format.ts';
import { NullSink } from '#shared/audio/null-sink.ts';
import { noDeviceAdvice, openSink, openSource } from '#shared/audio/open-audio.ts';
import { AudioFormatError } from '#shared/audio/types.ts';
import { wavHeader } from '#shared/audio/wav-sink.ts';

const dir = mkdtempSync(join(tmpdir(), 'audio-open-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('valid input specs open the matching source', async (t) => {
  const wavPath = join(dir, 'voice.wav');
  writeFileSync(wavPath, Buffer.concat([wavHeader(4), Buffer.from([1, 0, 2, 0])]));
  const cases: [string, string][] = [
    ['tone:440', 'tone 440 Hz'],
    ['tone:1', 'tone 1 Hz'],
    ['tone:24000', 'tone 24000 Hz'],
    ['tone:261.63', 'tone 261.63 Hz'],
    ['silence', 'silence'],
    [wavPath, `file ${wavPath}`],
  ];
  for (const [spec, description] of cases) {
    const source = await openSource(spec);
    t.equal(source.description, description, spec);
    await source.stop(); // never started: stopping is harmless
  }
});

t.test('invalid input specs are refused in one line that lists the valid forms', async (t) => {
  for (const spec of ['', 'microphone', 'speaker', 'tone', 'tone:', 'tone:0', 'tone:24001', 'tone:-5', 'tone:1e3', 'tone:abc', 'file.mp3']) {
    await t.rejects(openSource(spec), AudioFormatError, JSON.stringify(spec));
    const message = await openSource(spec).catch((error: Error) => error.message);
    t.match(message, `invalid --input "${spec}"`);
    t.match(message, 'use mic, tone:HZ (HZ from 1 to 24000), silence or FILE.wav');
    t.notMatch(message, '\n');
  }
  await t.rejects(openSource(join(dir, 'missing.wav')), { name: 'AudioFormatError', message: /cannot read .*missing\.wav/ });
});

t.test('valid output specs open the matching sink', async (t) => {
  const nullSink = await openSink('null');
  t.type(nullSink, NullSink);
  nullSink.write(Buffer.alloc(FRAME_BYTES));
  t.equal((nullSink as NullSink).framesWritten, 1, 'the null sink counts what it discards');
  await nullSink.close();

  const path = join(dir, 'out.wav');
  const wavSink = await openSink(path);
  t.equal(wavSink.description, `file ${path}`);
  await wavSink.close();
});

t.test('invalid output specs are refused in one line that lists the valid forms', async (t) => {
  for (const spec of ['', 'mic', 'speakers', 'out.mp3']) {
    await t.rejects(openSink(spec), {
      name: 'AudioFormatError',
      message: `invalid --output "${spec}": use speaker, null or FILE.wav`,
    });
  }
});

t.test('none of this loads the native audio module', async (t) => {
  const loaded = Object.keys(createRequire(import.meta.url).cache);
  t.notOk(loaded.some((path) => path.includes('naudiodon')), 'naudiodon is imported only for mic and speaker');
});

t.test('a missing device: with no sound card at all, one line names the input AND the output fix', async (t) => {
  const mic = { name: 'mic', maxInputChannels: 1, maxOutputChannels: 0 };
  const speaker = { name: 'speaker', maxInputChannels: 0, maxOutputChannels: 2 };
  for (const direction of ['input', 'output'] as const) {
    const line = noDeviceAdvice(direction, []);
    t.match(line, '--input tone:440 --output out.wav', `${direction}: both fixes`);
    t.notMatch(line, '\n');
  }
  t.equal(noDeviceAdvice('input', [speaker]), 'no microphone found: use --input tone:440, --input silence or --input FILE.wav');
  t.equal(noDeviceAdvice('output', [mic]), 'no speaker found: use --output null or --output FILE.wav');
});
