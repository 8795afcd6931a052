// One benchmark user: a real stage-04 connection over loopback. It joins a room, writes the frames
// it is given, and reads EVERYTHING it is sent (a client that stops reading would measure the
// server's slow-reader path, not its normal one), parsing frames incrementally like a real client.
import { connect, type Socket } from 'node:net';
import { FrameParser } from '#shared/framing/frame-parser.ts';
import { byeFrame, helloFrame, MessageType, parseError, serverMessageLimit } from '../04-rooms/protocol.ts';

/** Called for each AUDIO frame received, with performance.now() at the moment its chunk was read. */
export type AudioListener = (payload: Buffer, receivedAt: number) => void;

export class BenchClient {
  bytesReceived = 0;
  audioFramesReceived = 0;
  bytesSent = 0;
  framesSent = 0;
  private socket: Socket | null = null;
  private receivedAt = 0;

  constructor(
    readonly name: string,
    readonly room: string,
    private readonly onAudio: AudioListener | null = null,
  ) {}

  /** Connects and sends HELLO; resolves on WELCOME, rejects on ERROR or a failed connection. */
  join(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      this.socket = socket;
      socket.setNoDelay(true); // like the real client: a 20 ms frame must leave at once
      const parser = new FrameParser({
        maxPayload: serverMessageLimit,
        onFrame: (type, payload) => {
          if (type === MessageType.audio) {
            this.audioFramesReceived++;
            this.onAudio?.(payload, this.receivedAt);
          } else if (type === MessageType.welcome) {
            resolve();
          } else if (type === MessageType.error) {
            const error = parseError(payload);
            reject(new Error(`${this.name}: server sent ERROR ${error.code}: ${error.message}`));
          }
        },
      });
      socket.on('data', (chunk: Buffer) => {
        this.receivedAt = performance.now();
        this.bytesReceived += chunk.length;
        parser.push(chunk);
      });
      socket.once('error', (error) => reject(new Error(`${this.name}: ${error.message}`)));
      socket.on('error', () => {}); // after the handshake, a reset at shutdown is expected
      socket.write(helloFrame(this.name, this.room));
    });
  }

  /** Writes one whole frame (header included); the same Buffer may be sent again and again. */
  send(frame: Buffer): void {
    this.socket!.write(frame);
    this.bytesSent += frame.length;
    this.framesSent++;
  }

  /** Says BYE and closes; the server then frees the name. */
  leave(): void {
    this.socket?.end(byeFrame());
  }
}

/** Joins `clients` with at most `parallel` handshakes in flight, so the listen backlog never overflows. */
export async function joinAll(clients: BenchClient[], host: string, port: number, parallel = 50): Promise<void> {
  for (let i = 0; i < clients.length; i += parallel) {
    await Promise.all(clients.slice(i, i + parallel).map((client) => client.join(host, port)));
  }
}
