// The two shapes every audio endpoint takes: a source produces 20 ms frames,
// a sink consumes them. Clients and servers only ever see these interfaces,
// so a microphone, a test tone and a WAV file are interchangeable.

/** Produces 1920-byte frames in real time until stopped or exhausted. */
export interface AudioSource {
  /** For logs and usage lines, e.g. "tone 440 Hz", "file voice.wav", "microphone". */
  readonly description: string;
  /** Starts producing; `onEnd` is called once if the source runs out (a file ends). */
  start(onFrame: (frame: Buffer) => void, onEnd: () => void): void;
  /** Stops producing; resolves when the source has released what it holds. */
  stop(): Promise<void>;
}

/** Consumes frames received from the network. */
export interface AudioSink {
  readonly description: string;
  /** Takes one 1920-byte frame. The sink may keep it: do not reuse the buffer. */
  write(frame: Buffer): void;
  /** Flushes and releases the sink. Safe to call more than once. */
  close(): Promise<void>;
}

/**
 * There is no sound card (or no input/output on it). The message is one line
 * that names the option to use instead, so a CLI can print it as is.
 */
export class AudioDeviceUnavailable extends Error {
  override readonly name = 'AudioDeviceUnavailable';
}

/** A WAV file that cannot be used, or a malformed --input/--output spec. One-line message. */
export class AudioFormatError extends Error {
  override readonly name = 'AudioFormatError';
}
