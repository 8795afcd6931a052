// Opus voice codec for the course's audio format: 48 kHz mono, one 20 ms frame (960 samples,
// 1920 bytes of s16le PCM) <-> one Opus packet. From stage 05 on, voice on the wire is Opus;
// audio at the edges (microphone, speaker, WAV files) stays PCM.
//
//   const encoder = createOpusEncoder({ bitrate: 24_000 });
//   const packet = encoder.encode(pcmFrame);        // ~60-100 bytes at 24-32 kb/s
//   const decoder = createOpusDecoder();             // one per speaker: it keeps that stream's history
//   const pcm = decoder.decode(packet);              // 1920 bytes again
//   const guess = decoder.conceal();                 // 20 ms of "what probably came next" for a lost packet
//   const recovered = decoder.decodeFec(nextPacket); // the lost frame, rebuilt from the FEC copy in the next packet
//
// The binding is @discordjs/opus (native libopus). This file is the only one that knows it, so
// swapping bindings touches nothing else.
//
// What no npm binding offers (checked: @discordjs/opus 0.10.0, opusscript 0.1.1, @evan/opus
// 1.0.3): decoding with libopus's decode_fec flag (in-band FEC recovery). So the decoder calls
// libopus's own `opus_decode` in the library @discordjs/opus built (libopus-ffi.ts); where that
// is not reachable, it decodes through the binding and `decodeFec()` conceals instead
// (`fecAvailable` is then false).
import opus from '@discordjs/opus';
import { libopusDecoderApi, libopusUnavailableReason, type LibopusDecoderApi } from './libopus-ffi.ts';
import { FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE, CHANNELS } from '../audio/format.ts';

const { OpusEncoder: Libopus } = opus;

/** The largest Opus packet libopus produces or accepts for one frame (RFC 6716, 3.4 R2). */
export const OPUS_MAX_PACKET_BYTES = 1275;
/** Voice bitrates this wrapper accepts, in bits per second (libopus itself allows 500-512000). */
export const OPUS_MIN_BITRATE = 6_000;
export const OPUS_MAX_BITRATE = 128_000;
/** The course's default voice bitrate: ~60-80 bytes per 20 ms packet. */
export const OPUS_DEFAULT_BITRATE = 24_000;

// libopus CTL request numbers (opus_defines.h), passed through the binding's applyEncoderCTL.
const OPUS_SET_APPLICATION = 4000;
const OPUS_APPLICATION_VOIP = 2048;
const OPUS_SET_INBAND_FEC = 4012;
const OPUS_SET_PACKET_LOSS_PERC = 4014;

/** Whether decoders can recover a lost frame from the next packet's FEC copy, and if not, why. */
export const OPUS_FEC_DECODING: { available: boolean; reason?: string } = libopusDecoderApi
  ? { available: true }
  : { available: false, reason: libopusUnavailableReason };

export type OpusCodecErrorCode = 'bad_pcm_frame' | 'bad_bitrate' | 'empty_packet' | 'packet_too_large' | 'invalid_packet' | 'bad_packet_duration';

/** A codec refusal with a stable code and a reason a person can act on. */
export class OpusCodecError extends Error {
  constructor(
    readonly code: OpusCodecErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'OpusCodecError';
  }
}

export interface OpusEncoderOptions {
  /** Target bitrate in bits per second (OPUS_MIN_BITRATE..OPUS_MAX_BITRATE). */
  bitrate: number;
  /** Put a low-rate copy of each frame into the next packet (in-band FEC, for lossy paths: stage 06). */
  fec?: boolean;
  /** The loss rate (0-100 %) the encoder should expect; FEC is only spent when this is above 0. */
  expectedLossPercent?: number;
}

export interface OpusVoiceEncoder {
  readonly bitrate: number;
  /** One 20 ms PCM frame (exactly 1920 bytes) in, one Opus packet out. */
  encode(pcmFrame: Buffer): Buffer;
  /** Changes the expected loss (0-100 %, an integer) for the next packets: a client measures its path's loss as it goes. */
  setExpectedLossPercent(percent: number): void;
}

export interface OpusVoiceDecoder {
  /** One Opus packet (1..1275 bytes, 20 ms) in, one 1920-byte PCM frame out. Throws OpusCodecError. */
  decode(packet: Buffer): Buffer;
  /**
   * Packet-loss concealment: a 1920-byte frame that continues the stream as if the missing packet
   * had been there (it fades out over repeated losses). Silence before any packet was decoded.
   */
  conceal(): Buffer;
  /**
   * In-band FEC: the frame BEFORE `nextPacket` (which was lost), rebuilt from the low-rate copy
   * that `nextPacket` carries when its encoder had `fec: true` and `expectedLossPercent` > 0.
   * Where `nextPacket` carries no copy, libopus conceals instead (the same as conceal()).
   * Decode `nextPacket` itself with decode() afterwards, as usual. Throws like decode().
   */
  decodeFec(nextPacket: Buffer): Buffer;
  /** False where libopus's decoder API is unreachable (see OPUS_FEC_DECODING): decodeFec() then conceals. */
  readonly fecAvailable: boolean;
}

export function createOpusEncoder(options: OpusEncoderOptions): OpusVoiceEncoder {
  const { bitrate, fec = false, expectedLossPercent = 0 } = options;
  if (!Number.isInteger(bitrate) || bitrate < OPUS_MIN_BITRATE || bitrate > OPUS_MAX_BITRATE) {
    throw new OpusCodecError('bad_bitrate', `bitrate ${bitrate} b/s is not an integer from ${OPUS_MIN_BITRATE} to ${OPUS_MAX_BITRATE}`);
  }
  checkLossPercent(expectedLossPercent);
  const libopus = new Libopus(SAMPLE_RATE, CHANNELS);
  // VOIP favours speech intelligibility; it must be chosen before the first frame is encoded.
  libopus.applyEncoderCTL(OPUS_SET_APPLICATION, OPUS_APPLICATION_VOIP);
  libopus.setBitrate(bitrate);
  libopus.applyEncoderCTL(OPUS_SET_INBAND_FEC, fec ? 1 : 0);
  libopus.applyEncoderCTL(OPUS_SET_PACKET_LOSS_PERC, expectedLossPercent);
  return {
    bitrate,
    encode(pcmFrame: Buffer): Buffer {
      // The binding derives the frame length from the buffer length: any other size would be
      // encoded as some other duration (or fail inside libopus), so refuse it here.
      if (pcmFrame.length !== FRAME_BYTES) {
        throw new OpusCodecError('bad_pcm_frame', `a PCM frame is ${FRAME_BYTES} bytes (20 ms at 48 kHz mono); got ${pcmFrame.length}`);
      }
      return libopus.encode(pcmFrame);
    },
    setExpectedLossPercent(percent: number): void {
      checkLossPercent(percent);
      libopus.applyEncoderCTL(OPUS_SET_PACKET_LOSS_PERC, percent);
    },
  };
}

function checkLossPercent(percent: number): void {
  if (!Number.isInteger(percent) || percent < 0 || percent > 100) {
    throw new OpusCodecError('bad_bitrate', `expected loss ${percent} % is not an integer from 0 to 100`);
  }
}

/** The one decoding call the decoder needs: a packet (or its FEC copy) in, PCM out, or an Error. */
type DecodeCall = (packet: Buffer, fec: boolean) => Buffer;

/** Frees each libopus decoder state when its decoder object is garbage-collected. */
const freeLibopusState = new FinalizationRegistry<{ api: LibopusDecoderApi; state: unknown }>(({ api, state }) => api.destroy(state));

/** libopus's own opus_decode, with the decode_fec flag the bindings leave out. */
function libopusDecodeCall(api: LibopusDecoderApi, state: unknown): DecodeCall {
  return (packet, fec) => {
    const pcm = Buffer.alloc(FRAME_BYTES);
    // frame_size 960: for FEC it must be exactly the lost frame's duration; otherwise it is the
    // most we accept, so a longer packet fails here and is reported as the wrong duration.
    const samples = api.decode(state, packet, pcm, FRAME_SAMPLES, fec);
    if (samples >= 0) return pcm.subarray(0, samples * 2 * CHANNELS);
    if (samples === OPUS_BUFFER_TOO_SMALL) {
      throw new OpusCodecError('bad_packet_duration', 'this Opus packet holds more than 20 ms of audio; every packet must hold exactly 20 ms');
    }
    throw new Error(api.errorText(samples));
  };
}

/** The binding's decode (no FEC): used only where libopus's own API is not reachable. */
function bindingDecodeCall(): DecodeCall {
  const libopus = new Libopus(SAMPLE_RATE, CHANNELS);
  return (packet) => libopus.decode(packet);
}

// opus_defines.h: the output buffer cannot hold the packet's samples (it is longer than 20 ms).
const OPUS_BUFFER_TOO_SMALL = -2;

export function createOpusDecoder(): OpusVoiceDecoder {
  const api = libopusDecoderApi;
  const fecAvailable = api !== undefined;
  const libopusState = api?.create(SAMPLE_RATE, CHANNELS);
  const decodeCall = api ? libopusDecodeCall(api, libopusState) : bindingDecodeCall();
  let lastToc: number | undefined;

  function checkPacket(packet: Buffer): void {
    if (packet.length === 0) {
      // The binding would treat an empty buffer as 120 ms lost: a caller's bug, not a loss.
      throw new OpusCodecError('empty_packet', 'an Opus packet is at least 1 byte; use conceal() for a lost packet');
    }
    if (packet.length > OPUS_MAX_PACKET_BYTES) {
      throw new OpusCodecError('packet_too_large', `an Opus packet is at most ${OPUS_MAX_PACKET_BYTES} bytes; got ${packet.length}`);
    }
  }

  function decodeChecked(packet: Buffer, fec = false): Buffer {
    let pcm: Buffer;
    try {
      pcm = decodeCall(packet, fec);
    } catch (error) {
      if (error instanceof OpusCodecError) throw error;
      const first = packet.length > 0 ? ` (first byte 0x${packet[0].toString(16).padStart(2, '0')})` : '';
      throw new OpusCodecError('invalid_packet', `not a valid Opus packet: ${packet.length} bytes${first}; libopus says: ${(error as Error).message}`);
    }
    if (pcm.length !== FRAME_BYTES) {
      const ms = (pcm.length / 2 / FRAME_SAMPLES) * 20;
      throw new OpusCodecError('bad_packet_duration', `this Opus packet holds ${ms} ms of audio; every packet must hold exactly 20 ms`);
    }
    return pcm;
  }

  function conceal(): Buffer {
    if (lastToc === undefined) return Buffer.alloc(FRAME_BYTES);
    // Opus defines a "packet lost" of exactly one frame: a packet whose only frame is 0 bytes
    // long is decoded as lost (RFC 6716, 3.2.1), for the duration its TOC byte names. So send
    // the last TOC byte, set to 20 ms and one frame. (The binding offers no other way.)
    return decodeChecked(Buffer.of(concealmentToc(lastToc)));
  }

  const decoder: OpusVoiceDecoder = {
    fecAvailable,
    decode(packet: Buffer): Buffer {
      checkPacket(packet);
      const pcm = decodeChecked(packet);
      lastToc = packet[0];
      return pcm;
    },
    conceal,
    decodeFec(nextPacket: Buffer): Buffer {
      checkPacket(nextPacket);
      if (!fecAvailable) return conceal();
      const pcm = decodeChecked(nextPacket, true);
      lastToc = nextPacket[0];
      return pcm;
    },
  };
  if (api) freeLibopusState.register(decoder, { api, state: libopusState });
  return decoder;
}

/**
 * The TOC byte (RFC 6716, 3.1) of a one-frame, 20 ms packet in the same mode, bandwidth and
 * channel count as `toc`: config in the top 5 bits, stereo flag, frame-count code 0.
 */
export function concealmentToc(toc: number): number {
  const config = toc >> 3;
  let config20ms: number;
  if (config < 12) config20ms = (config & ~3) | 1; // SILK: 10, 20, 40, 60 ms per bandwidth
  else if (config < 16) config20ms = config | 1; // hybrid: 10, 20 ms per bandwidth
  else config20ms = config | 3; // CELT: 2.5, 5, 10, 20 ms per bandwidth
  return (config20ms << 3) | (toc & 0x04);
}
