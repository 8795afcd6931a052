// Reads what a server sends on one connection and checks that every frame is well formed for the
// stage: a known server type, a length within the README's limit, control payloads that are UTF-8
// JSON objects, ERROR with string "code" and "message". The first thing wrong is kept as `problem`.
import { HEADER_BYTES } from './frames.ts';
import { AUDIO, CHUNK, CREDIT, ERROR, FRAME_BYTES, type StageWire } from './wire-spec.ts';

export interface ServerFrame {
  type: number;
  payload: Buffer;
  /** The JSON object of a control frame. */
  json?: Record<string, unknown>;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

export class ServerFrameReader {
  readonly frames: ServerFrame[] = [];
  problem: string | undefined;
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly wire: StageWire) {}

  push(chunk: Buffer): void {
    if (this.problem !== undefined) return;
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= HEADER_BYTES && this.problem === undefined) {
      const type = this.pending[0]!;
      const length = this.pending.readUInt32BE(1);
      const limit = this.wire.serverLimits.get(type);
      if (limit === undefined) {
        this.problem = `the server sent a frame of type 0x${type.toString(16)}, which is not a server message of stage ${this.wire.id}`;
        return;
      }
      if (length > limit || (type === AUDIO && (length < this.wire.serverVoiceBytes.min || length > this.wire.serverVoiceBytes.max))) {
        this.problem = `the server sent a ${this.wire.typeNames[type]} frame of ${length} bytes (limit ${limit})`;
        return;
      }
      if (this.pending.length < HEADER_BYTES + length) return;
      const payload = Buffer.from(this.pending.subarray(HEADER_BYTES, HEADER_BYTES + length));
      this.pending = this.pending.subarray(HEADER_BYTES + length);
      this.frames.push(this.check(type, payload));
    }
  }

  /** Bytes of a frame the server started and did not finish. */
  get partialBytes(): number {
    return this.pending.length;
  }

  private check(type: number, payload: Buffer): ServerFrame {
    if (type === AUDIO) return { type, payload };
    // Stage 07's CHUNK and CREDIT are binary (transfer u16 | u32 | data); their sizes were checked above.
    if (this.wire.chat && (type === CHUNK || type === CREDIT)) return { type, payload };
    let json: unknown;
    try {
      json = JSON.parse(strictUtf8.decode(payload));
    } catch {
      json = undefined;
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      this.problem = `the server sent ${this.wire.typeNames[type]} whose payload is not a UTF-8 JSON object: ${JSON.stringify(payload.toString('utf8').slice(0, 120))}`;
      return { type, payload };
    }
    const object = json as Record<string, unknown>;
    if (type === ERROR && (typeof object.code !== 'string' || typeof object.message !== 'string')) {
      this.problem = `the server sent ERROR without string "code" and "message": ${JSON.stringify(object)}`;
    } else if (type === ERROR && !this.wire.errorCodes.has(object.code as string)) {
      this.problem = `the server sent ERROR with code ${JSON.stringify(object.code)}, which the stage ${this.wire.id} README does not list`;
    }
    return { type, payload, json: object };
  }
}
