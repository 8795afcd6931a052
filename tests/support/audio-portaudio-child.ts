// Helper for audio-portaudio.test.ts, run as a child process (ALSA reads its
// configuration once per process, so the pretend sound card needs a fresh
// one). Uses the real mic and speaker code paths:
//   capture MS  opens 'mic' for MS milliseconds, saves the frames to captured.raw
//   play        opens 'speaker' and plays play.raw in real time
// Files are in the working directory. Prints "@@result@@" + JSON counters.
// Like a command-line program, it prints a device or format error as its
// one-line message and exits with code 2.
import { readFileSync, writeFileSync } from 'node:fs';
import { FRAME_BYTES } from '#shared/audio/format.ts';
import { FrameClock } from '#shared/audio/frame-clock.ts';
import type { MicSource } from '#shared/audio/mic-source.ts';
import { openSink, openSource } from '#shared/audio/open-audio.ts';
import type { SpeakerSink } from '#shared/audio/speaker-sink.ts';
import { AudioDeviceUnavailable, AudioFormatError } from '#shared/audio/types.ts';

async function capture(durationMs: number): Promise<object> {
  const mic = (await openSource('mic')) as MicSource;
  const frames: Buffer[] = [];
  const started = performance.now();
  mic.start((frame) => frames.push(frame), () => {});
  await new Promise((resolve) => setTimeout(resolve, durationMs));
  await mic.stop();
  const elapsedMs = performance.now() - started;
  writeFileSync('captured.raw', Buffer.concat(frames));
  return { elapsedMs, framesDelivered: mic.framesDelivered, framesDropped: mic.framesDropped };
}

async function play(): Promise<object> {
  const pcm = readFileSync('play.raw');
  const speaker = (await openSink('speaker')) as SpeakerSink;
  const started = performance.now();
  await new Promise<void>((resolve) => {
    const clock = new FrameClock((tick) => {
      const offset = tick * FRAME_BYTES;
      if (offset >= pcm.length) {
        clock.stop();
        resolve();
      } else {
        speaker.write(pcm.subarray(offset, offset + FRAME_BYTES));
      }
    });
    clock.start();
  });
  await speaker.close();
  const elapsedMs = performance.now() - started;
  return { elapsedMs, underruns: speaker.underruns, droppedFrames: speaker.droppedFrames };
}

try {
  const [mode, argument] = process.argv.slice(2);
  const result = mode === 'capture' ? await capture(Number(argument)) : await play();
  // No process.exit() here: the child must end by itself, which shows that
  // stop() and close() really released the device.
  console.log('@@result@@' + JSON.stringify(result));
} catch (error) {
  if (error instanceof AudioDeviceUnavailable || error instanceof AudioFormatError) {
    console.error(error.message);
    process.exit(2);
  }
  throw error;
}
