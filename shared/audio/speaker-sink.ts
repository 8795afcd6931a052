// The speaker, through naudiodon (Node bindings for PortAudio).
//
// The sound card sets the pace: it takes one frame every 20 ms by its own
// clock, which never quite matches the sender's. So frames from the network
// go into a small PlaybackBuffer, and whenever the device can take more we
// give it the next buffered frame, or silence if none has arrived (an
// underrun). If frames pile up, the buffer drops the oldest: the delay
// stays under bufferFrames * 20 ms.
//
// A real device accepts data only as fast as it plays it. The file-backed
// ALSA device used in headless tests accepts it instantly, which would spin
// a CPU core writing silence; a token bucket a little faster than real time
// (so it never holds back a real card whose clock runs slightly fast)
// paces writes to such devices.

import { once } from 'node:events';
import type { AudioOptions, IoStreamWrite } from 'naudiodon';
import { CHANNELS, FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE } from './format.ts';
import type { PortAudio } from './mic-source.ts';
import { PlaybackBuffer } from './playback-buffer.ts';
import { TokenBucket } from '../token-bucket.ts';
import type { AudioSink } from './types.ts';

/** 5 frames = at most 100 ms of audio waiting to be played. */
export const DEFAULT_PLAYBACK_FRAMES = 5;
/** Longest wait for the device to play what it holds when closing. */
const CLOSE_TIMEOUT_MS = 2000;

// naudiodon's defaults buffer about 170 ms; these keep the device queue short.
const OUTPUT_OPTIONS: AudioOptions = {
  channelCount: CHANNELS,
  sampleFormat: 16,
  sampleRate: SAMPLE_RATE,
  deviceId: -1, // the system's default output
  closeOnError: false, // an underrun is logged, not fatal
  framesPerBuffer: FRAME_SAMPLES / 2, // 10 ms blocks
  highwaterMark: FRAME_BYTES, // Node holds at most one frame...
  maxQueue: 2, // ...and naudiodon two blocks
};

export class SpeakerSink implements AudioSink {
  readonly description = 'speaker';
  private readonly buffer: PlaybackBuffer;
  private readonly pacer = new TokenBucket(FRAME_MS / 1.02, 3);
  private readonly stream: IoStreamWrite;
  private timer: NodeJS.Timeout | undefined;
  private closed: Promise<void> | undefined;

  /** Opens the default output and starts playing (silence until frames arrive). */
  constructor(portAudio: PortAudio, bufferFrames = DEFAULT_PLAYBACK_FRAMES) {
    this.buffer = new PlaybackBuffer(bufferFrames);
    this.stream = portAudio.AudioIO({ outOptions: OUTPUT_OPTIONS });
    this.stream.start();
    this.feedDevice();
  }

  write(frame: Buffer): void {
    if (!this.closed) this.buffer.push(frame);
  }

  /** Times the device found no frame to play (and played silence). */
  get underruns(): number {
    return this.buffer.underruns;
  }

  /** Frames dropped because too many were waiting. */
  get droppedFrames(): number {
    return this.buffer.droppedFrames;
  }

  /** Plays what is buffered, then closes the device. Safe to call more than once. */
  close(): Promise<void> {
    this.closed ??= this.finish();
    return this.closed;
  }

  // Writes frames while the device takes them; resumes on 'drain' or when the pacer allows.
  private readonly feedDevice = (): void => {
    this.timer = undefined;
    while (!this.closed) {
      const wait = this.pacer.msUntilNextToken();
      if (wait > 0) {
        this.timer = setTimeout(this.feedDevice, Math.ceil(wait));
        return;
      }
      this.pacer.tryTake();
      if (!this.stream.write(this.buffer.pull())) {
        this.stream.once('drain', this.feedDevice);
        return;
      }
    }
  };

  private async finish(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    while (this.buffer.length > 0) this.stream.write(this.buffer.pull());
    // naudiodon quits the device itself on 'finish' and then emits 'finished'.
    const finished = once(this.stream, 'finished');
    this.stream.end();
    let timeout: NodeJS.Timeout | undefined;
    await Promise.race([finished, new Promise((resolve) => (timeout = setTimeout(resolve, CLOSE_TIMEOUT_MS)))]);
    clearTimeout(timeout);
  }
}
