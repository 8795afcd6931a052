// --output FILE.wav is a recording of what you heard, so it keeps time: where nothing arrived
// (nobody spoke, the network paused) it holds silence, as the speaker played silence then. The file
// is as long as the session, and a pause between two sentences stays a pause.
//
// The clock is the wall clock, read when a frame arrives and at the end; no timer runs. A frame is
// appended after any silence owed for the time since the recording started, so every received
// frame is kept, in order, and none is ever dropped (the speaker's buffer may drop frames to stay
// in step with the sound card; a file has no sound card to keep up with). A frame may come a little
// late without a gap being recorded: up to RECORDING_SLACK_MS, what the speaker's playback buffer
// holds, so network jitter does not chop continuous speech into pieces.

import { DEFAULT_PLAYBACK_FRAMES } from './speaker-sink.ts';
import { FRAME_BYTES, FRAME_MS } from './format.ts';
import type { AudioSink } from './types.ts';

/** How late a frame may come before the recording gets silence in front of it: the speaker's buffer, 100 ms. */
export const RECORDING_SLACK_MS = DEFAULT_PLAYBACK_FRAMES * FRAME_MS;

export class TimeKeepingSink implements AudioSink {
  readonly description: string;
  private readonly startedAt: number;
  /** Frames handed to the inner sink, silence included: the recording's length in frames. */
  private framesRecorded = 0;
  private closed = false;

  /**
   * Starts the recording now.
   * @param inner where the frames go (a WAV file)
   * @param now a monotonic clock in milliseconds; tests pass a fake one
   */
  constructor(
    private readonly inner: AudioSink,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.description = inner.description;
    this.startedAt = now();
  }

  /** Seconds recorded so far, silence included. */
  get recordedSeconds(): number {
    return (this.framesRecorded * FRAME_MS) / 1000;
  }

  write(frame: Buffer): void {
    if (this.closed) throw new Error(`${this.description}: write after close`);
    this.recordSilenceUntil(this.now() - RECORDING_SLACK_MS);
    this.inner.write(frame);
    this.framesRecorded++;
  }

  /** Records silence up to this moment (the session is over), then closes the inner sink. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.recordSilenceUntil(this.now());
    this.closed = true;
    await this.inner.close();
  }

  /** Appends silent frames until the recording reaches `time` (whole frames, never beyond it). */
  private recordSilenceUntil(time: number): void {
    const due = Math.floor((time - this.startedAt) / FRAME_MS);
    // A fresh buffer each time: a sink may keep the frames it is given.
    for (; this.framesRecorded < due; this.framesRecorded++) this.inner.write(Buffer.alloc(FRAME_BYTES));
  }
}
