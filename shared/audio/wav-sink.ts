// Records what a client hears into a WAV file (48 kHz mono 16-bit).
//
// A WAV header states the data size, which is only known at the end. If we
// wrote it only in close(), a client killed with Ctrl-C or SIGKILL would
// leave a file that players refuse. So the header is rewritten after every
// frame: first the samples are appended, then the two size fields are
// updated in place. At every moment the header describes at most the bytes
// already on disk, so the file is always a valid WAV.

import { closeSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { BYTES_PER_SAMPLE, CHANNELS, SAMPLE_RATE } from './format.ts';
import { AudioFormatError, type AudioSink } from './types.ts';

export const WAV_HEADER_BYTES = 44;
const RIFF_SIZE_OFFSET = 4; // file size - 8
const DATA_SIZE_OFFSET = 40; // bytes of samples

/** The canonical 44-byte header of a PCM WAV file holding `dataBytes` of samples. */
export function wavHeader(dataBytes: number): Buffer {
  const header = Buffer.alloc(WAV_HEADER_BYTES);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(WAV_HEADER_BYTES - 8 + dataBytes, RIFF_SIZE_OFFSET);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(16, 16); // size of the fmt chunk
  header.writeUInt16LE(1, 20); // format 1 = PCM
  header.writeUInt16LE(CHANNELS, 22);
  header.writeUInt32LE(SAMPLE_RATE, 24);
  header.writeUInt32LE(SAMPLE_RATE * CHANNELS * BYTES_PER_SAMPLE, 28); // bytes per second
  header.writeUInt16LE(CHANNELS * BYTES_PER_SAMPLE, 32); // bytes per sample frame
  header.writeUInt16LE(BYTES_PER_SAMPLE * 8, 34); // bits per sample
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(dataBytes, DATA_SIZE_OFFSET);
  return header;
}

/** The reason a file cannot be created, in words (Node's own message names the system call). */
function whyNotWritable(error: NodeJS.ErrnoException, path: string): string {
  switch (error.code) {
    case 'ENOENT':
      return `the folder ${dirname(path)} does not exist`;
    case 'EACCES':
    case 'EPERM':
      return 'no permission to write there';
    case 'EISDIR':
      return 'that is a folder';
    case 'ENOTDIR':
      return `${dirname(path)} is not a folder`;
    case 'EROFS':
      return 'that file system is read-only';
    default:
      return error.message;
  }
}

export class WavFileSink implements AudioSink {
  readonly description: string;
  private fd: number | undefined;
  private dataBytes = 0;
  private readonly sizeField = Buffer.alloc(4); // reused for every size update

  /** Creates (or truncates) the file and writes a header for zero samples. Throws AudioFormatError (one line) if it cannot. */
  constructor(readonly path: string) {
    this.description = `file ${path}`;
    try {
      this.fd = openSync(path, 'w');
    } catch (error) {
      throw new AudioFormatError(`cannot write ${path}: ${whyNotWritable(error as NodeJS.ErrnoException, path)}`);
    }
    writeSync(this.fd, wavHeader(0), 0, WAV_HEADER_BYTES, 0);
  }

  write(frame: Buffer): void {
    if (this.fd === undefined) throw new Error(`${this.description}: write after close`);
    // Positional writes: samples at the end of the data, sizes in the header.
    writeSync(this.fd, frame, 0, frame.length, WAV_HEADER_BYTES + this.dataBytes);
    this.dataBytes += frame.length;
    this.writeSize(RIFF_SIZE_OFFSET, WAV_HEADER_BYTES - 8 + this.dataBytes);
    this.writeSize(DATA_SIZE_OFFSET, this.dataBytes);
  }

  async close(): Promise<void> {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }

  private writeSize(offset: number, value: number): void {
    this.sizeField.writeUInt32LE(value, 0);
    writeSync(this.fd!, this.sizeField, 0, 4, offset);
  }
}
