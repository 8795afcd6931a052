// The microphone, through naudiodon (Node bindings for PortAudio).
//
// The sound card paces capture, so no FrameClock here. But a capture device
// may deliver FASTER than real time: the file-backed ALSA device used for
// headless tests runs dozens of times faster (and repeats stale data once
// its file ends). Passing all of that on would flood the network, so a
// token bucket lets through one frame per 20 ms on average plus a short
// burst; the excess is dropped and counted. A real microphone delivers at
// the nominal rate and is not affected.

import type { AudioOptions, IoStreamRead } from 'naudiodon';
import { CHANNELS, FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE } from './format.ts';
import { FrameChunker } from './frame-chunker.ts';
import { TokenBucket } from '../token-bucket.ts';
import type { AudioSource } from './types.ts';

/** The naudiodon module, passed in so that only open-audio.ts decides when to load it. */
export type PortAudio = typeof import('naudiodon');

/** Frames a burst may carry beyond the steady rate (sound cards deliver in blocks). */
export const MIC_BURST_FRAMES = 5;

// Typed so that sampleFormat stays the literal 16 naudiodon's typings expect.
const INPUT_OPTIONS: AudioOptions = {
  channelCount: CHANNELS,
  sampleFormat: 16,
  sampleRate: SAMPLE_RATE,
  deviceId: -1, // the system's default input
  closeOnError: false, // an overrun is logged, not fatal
  framesPerBuffer: FRAME_SAMPLES / 2, // 10 ms blocks: low latency
  highwaterMark: FRAME_BYTES * 2, // Node buffers at most 40 ms
};

export class MicSource implements AudioSource {
  readonly description = 'microphone';
  /** Frames passed on to onFrame. */
  framesDelivered = 0;
  /** Frames dropped because the device delivered faster than real time. */
  framesDropped = 0;
  private stream: IoStreamRead | undefined;
  private stopped: Promise<void> | undefined;

  constructor(private readonly portAudio: PortAudio) {}

  /**
   * Opens the default input and starts capturing. A MicSource is used once:
   * naudiodon can crash when streams are opened and closed repeatedly, so a
   * program keeps one microphone stream for its whole life.
   */
  start(onFrame: (frame: Buffer) => void, onEnd: () => void): void {
    if (this.stream) throw new Error('the microphone is already started (open one MicSource per program)');
    const rateLimit = new TokenBucket(FRAME_MS, MIC_BURST_FRAMES);
    const chunker = new FrameChunker();
    const deliver = (frame: Buffer): void => {
      if (rateLimit.tryTake()) {
        this.framesDelivered++;
        onFrame(frame);
      } else {
        this.framesDropped++;
      }
    };
    const stream = this.portAudio.AudioIO({ inOptions: INPUT_OPTIONS });
    stream.on('data', (chunk: Buffer) => {
      if (!this.stopped) chunker.push(chunk, deliver);
    });
    stream.on('end', () => {
      if (!this.stopped) onEnd(); // the device went away
    });
    this.stream = stream;
    stream.start();
  }

  /** Stops capturing and closes the device. Safe to call more than once. */
  stop(): Promise<void> {
    const stream = this.stream;
    if (!stream) return Promise.resolve();
    // quit() is asynchronous although typed as returning void: wait for its callback.
    this.stopped ??= new Promise<void>((resolve) => stream.quit(resolve));
    return this.stopped;
  }
}
