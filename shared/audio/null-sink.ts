// A sink that plays nothing: for servers, benchmarks and machines without a
// sound card. It still counts frames, so tests can check what arrived.

import type { AudioSink } from './types.ts';

export class NullSink implements AudioSink {
  readonly description = 'null (discard)';
  framesWritten = 0;

  write(_frame: Buffer): void {
    this.framesWritten++;
  }

  async close(): Promise<void> {}
}
