// The client's audio, both ways. Every frame the input captures passes the voice gate (or
// push-to-talk, when chosen) and mute; while we are talking it is encoded with Opus (with in-band
// FEC when UDP may carry it) and sent with the next sequence number: as a VOICE_UP datagram while
// the UDP path is up, else as TCP VOICE (one sequence for both, so a listener's jitter buffer
// drops a packet that comes both ways). The server forwards the others' packets as they come, by
// either path; the VoiceReceiver decodes and mixes them, and our own 20 ms playback clock writes
// one mixed frame to the output per tick (silence when nobody speaks).
// Stage 08: in a call, `route` sends each frame to the peer as CALL_VOICE (direct), to the server
// as above (relayed: the server passes it to the peer only), or nowhere (connecting, and the
// guard second after a call): always with the one sequence counter, so the peer's jitter buffer
// takes packets from both ways as one stream. `mayHear` keeps everyone but the peer out of a call.
import type { Socket } from 'node:net';
import { FRAME_MS } from '#shared/audio/format.ts';
import { FrameClock } from '#shared/audio/frame-clock.ts';
import type { AudioSink, AudioSource } from '#shared/audio/types.ts';
import { createOpusDecoder, createOpusEncoder, type OpusVoiceEncoder } from '#shared/codec/opus.ts';
import type { VoiceGate } from '#shared/voice-gate.ts';
import { clientVoiceFrame, MAX_QUEUED_VOICE_BYTES, nextSequence, parseServerVoice } from './protocol.ts';
import type { CallPath } from './call-path.ts';
import { MIN_EXPECTED_LOSS_PERCENT, type UdpPath } from './udp-path.ts';
import { VoiceReceiver } from './voice-receiver.ts';

export class AudioPipeline {
  /** Set by the commands mute and unmute: a muted client sends nothing. */
  muted = false;
  /** Push-to-talk only: on while the user has the floor (Enter toggles it). It starts off: nobody is on the air by surprise. */
  pushToTalkOn = false;
  /** VOICE messages sent, and the Opus bytes they carried (the packets alone). */
  packetsSent = 0;
  packetBytesSent = 0;
  /** Of packetsSent, how many went as datagrams. */
  packetsSentByUdp = 0;
  /** The UDP path, when there is one (not with --tcp): voice goes there while it says 'udp'. */
  udp: UdpPath | null = null;
  /** Of packetsSent, how many went to a call's peer directly (CALL_VOICE). */
  packetsSentDirect = 0;
  /** The active call's path (CALL_START to CALL_END): voice goes there while `route` says 'peer'. */
  callPath: CallPath | null = null;
  /** Where each captured frame goes: the server (room, or a relayed call), the call's peer, or nowhere. */
  route: () => 'server' | 'peer' | 'none' = () => 'server';
  /** Whether a speaker's voice may be played (in a call: only the peer's). */
  mayHear: (speaker: number) => boolean = () => true;
  /** Decodes and mixes the others' voices; its ownId is set from WELCOME. */
  readonly receiver = new VoiceReceiver({ createDecoder: createOpusDecoder });
  /** Whether the last captured frame was sent. */
  private talking = false;
  private readonly encoder: OpusVoiceEncoder;
  /** Sequence number of the next VOICE: +1 per VOICE sent, wrapping at 65536. */
  private sequence = 0;
  /** Where captured voice goes; null before start() and after stop(). */
  private server: Socket | null = null;
  /** Our playback clock: one mixed frame to the output every 20 ms, whatever arrives. */
  private readonly playback: FrameClock;

  constructor(
    readonly source: AudioSource,
    readonly sink: AudioSink,
    private readonly gate: VoiceGate,
    /** Send while push-to-talk is on, instead of while the gate is open. */
    readonly pushToTalk: boolean,
    /** Opus bitrate of our voice, in bits per second. */
    readonly bitrate: number,
    /** In-band FEC in every packet (for UDP; pointless with --tcp, where nothing is lost). */
    fec = true,
  ) {
    this.encoder = createOpusEncoder({ bitrate, fec, expectedLossPercent: fec ? MIN_EXPECTED_LOSS_PERCENT : 0 });
    this.playback = new FrameClock(() => this.sink.write(this.receiver.nextFrame()));
  }

  /** Starts capturing and playing: voice goes to `server` until stop(). `onInputEnd` is called if the input ends (a file). */
  start(server: Socket, onInputEnd: () => void): void {
    this.server = server;
    this.playback.start();
    this.source.start((frame) => this.capture(frame), onInputEnd);
  }

  /** Stops capturing, sending and playing (the conversation is over). */
  stop(): void {
    this.server = null;
    this.playback.stop();
    void this.source.stop();
  }

  /** One TCP VOICE payload from the server (speaker, sequence, packet): into that speaker's jitter buffer. */
  hear(payload: Buffer): void {
    const { speaker, sequence, packet } = parseServerVoice(payload);
    if (this.mayHear(speaker)) this.receiver.receive(speaker, sequence, packet, 'tcp');
  }

  /** The loss the encoder should plan its FEC for, measured on the path (udp-path.ts). */
  expectLoss(percent: number): void {
    this.encoder.setExpectedLossPercent(percent);
  }

  /** Kilobits per second of Opus we sent while talking (packet bytes only, as the README's tables count). */
  get sentKbps(): number {
    return this.packetsSent === 0 ? 0 : (this.packetBytesSent * 8) / (this.packetsSent * FRAME_MS);
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
    if (!this.talking) return; // silence is not sent: the server forwards only who speaks
    const route = this.route();
    if (route === 'none') return; // dropped, not queued: no sequence number taken
    const direct = route === 'peer' && this.callPath !== null;
    const byUdp = !direct && this.udp !== null && this.udp.path === 'udp';
    // A server that stops reading must not make us buffer voice without bound either. The frame
    // is not encoded and takes no sequence number: a sequence gap means a packet lost on the way.
    if (!direct && !byUdp && this.server.writableLength > MAX_QUEUED_VOICE_BYTES) return;
    const packet = this.encoder.encode(frame);
    if (direct) {
      this.callPath!.sendVoice(this.sequence, packet);
      this.packetsSentDirect++;
    } else if (byUdp) {
      this.udp!.sendVoice(this.sequence, packet);
      this.packetsSentByUdp++;
    } else {
      this.server.write(clientVoiceFrame(this.sequence, packet));
    }
    this.sequence = nextSequence(this.sequence);
    this.packetsSent++;
    this.packetBytesSent += packet.length;
  }
}
