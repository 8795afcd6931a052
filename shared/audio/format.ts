// The one audio format used by every stage, on the wire and in WAV files:
// 48 000 Hz, mono, signed 16-bit little-endian PCM, sent in 20 ms frames.

export const SAMPLE_RATE = 48_000;
export const CHANNELS = 1;
export const BYTES_PER_SAMPLE = 2;
export const FRAME_MS = 20;
/** Samples in one 20 ms frame: 48 000 * 0.020 = 960. */
export const FRAME_SAMPLES = (SAMPLE_RATE * FRAME_MS) / 1000;
/** Bytes in one 20 ms frame: 960 samples * 2 bytes = 1920. */
export const FRAME_BYTES = FRAME_SAMPLES * BYTES_PER_SAMPLE * CHANNELS;
/** Largest and smallest 16-bit sample values: mixes are clipped to this range. */
export const SAMPLE_MAX = 32_767;
export const SAMPLE_MIN = -32_768;
