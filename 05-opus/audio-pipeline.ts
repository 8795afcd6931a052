// The client's audio, both ways. Every frame the input captures passes the voice gate (or
// push-to-talk, when chosen) and mute, and goes to the server as AUDIO only while we are talking;
// every AUDIO frame the server sends (the mix of the others) goes to the output.
import type { Socket } from 'node:net';
import { FRAME_BYTES } from '#shared/audio/format.ts';
import type { AudioSink, AudioSource } from '#shared/audio/types.ts';
import { ProtocolError } from '#shared/protocol-error.ts';
import type { VoiceGate } from '#shared/voice-gate.ts';
import { audioFrame, MAX_QUEUED_AUDIO_BYTES } from './protocol.ts';

export class AudioPipeline {
  /** Set by the commands mute and unmute: a muted client sends nothing. */
  muted = false;
  /** Push-to-talk only: on while the user has the floor (Enter toggles it). It starts off: nobody is on the air by surprise. */
  pushToTalkOn = false;
  framesSent = 0;
  framesHeard = 0;
  /** Whether the last captured frame was sent. */
  private talking = false;
  /** Where captured voice goes; null before start() and after stop(). */
  private server: Socket | null = null;

  constructor(
    readonly source: AudioSource,
    readonly sink: AudioSink,
    private readonly gate: VoiceGate,
    /** Send while push-to-talk is on, instead of while the gate is open. */
    readonly pushToTalk: boolean,
  ) {}

  /** Starts capturing: voice goes to `server` until stop(). `onInputEnd` is called if the input ends (a file). */
  start(server: Socket, onInputEnd: () => void): void {
    this.server = server;
    this.source.start((frame) => this.capture(frame), onInputEnd);
  }

  /** Stops capturing and sending (the conversation is over). */
  stop(): void {
    this.server = null;
    void this.source.stop();
  }

  /** One AUDIO payload from the server, the mix of the others: to the output. */
  play(payload: Buffer): void {
    if (payload.length !== FRAME_BYTES) {
      throw new ProtocolError('bad_audio_size', `AUDIO of ${payload.length} bytes; expected ${FRAME_BYTES}`);
    }
    this.framesHeard++;
    // Copied: the payload may be a view into a larger network chunk, and a sink may keep it.
    this.sink.write(Buffer.from(payload));
  }

  /** For the status line: what we are sending, and the input's level. */
  get status(): string {
    if (this.muted) return 'muted';
    if (this.pushToTalk && !this.pushToTalkOn) return 'push-to-talk off (Enter to talk)';
    return `${this.talking ? 'talking' : 'silent'}, level ${Math.max(-99, Math.round(this.gate.levelDb))} dBFS`;
  }

  /** One captured 20 ms frame. */
  private capture(frame: Buffer): void {
    if (this.server === null) return;
    // The gate hears every frame, even muted or on push-to-talk, so the level shown stays live.
    const voice = this.gate.accept(frame);
    this.talking = !this.muted && (this.pushToTalk ? this.pushToTalkOn : voice);
    if (!this.talking) return; // silence is not sent: the server mixes only who speaks
    // A server that stops reading must not make us buffer voice without bound either.
    if (this.server.writableLength > MAX_QUEUED_AUDIO_BYTES) return;
    this.server.write(audioFrame(frame));
    this.framesSent++;
  }
}
