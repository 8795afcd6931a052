// libopus's own decoder calls, reached through a foreign-function interface (koffi), for the one
// thing no npm Opus binding offers: decoding a lost frame from the in-band FEC copy that the
// NEXT packet carries, `opus_decode(decoder, nextPacket, len, pcm, 960, decode_fec = 1)`.
//
// Which libopus? The one @discordjs/opus already compiled into its addon (opus.node): libopus is
// linked statically into it and, on Linux and macOS, exports its public C API (OPUS_EXPORT is
// `visibility("default")` under GCC/Clang). So there is no second libopus to install and the
// encoder and decoder are the same library version. Where the addon does not export them (a
// Windows build exports nothing it was not told to), `libopusDecoderApi` is undefined and
// `libopusUnavailableReason` says why; opus.ts then decodes through the binding without FEC.
import koffi from 'koffi';
import { createRequire } from 'node:module';

export interface LibopusDecoderApi {
  /** `opus_decoder_create(Fs, channels, &error)`: a decoder state (malloc'ed by libopus). */
  create(sampleRate: number, channels: number): unknown;
  /**
   * `opus_decode(st, data, len, pcm, frame_size, decode_fec)`: samples decoded per channel, or a
   * negative libopus error code. `data` null means "this packet was lost" (concealment).
   */
  decode(state: unknown, data: Buffer | null, pcm: Buffer, frameSamples: number, decodeFec: boolean): number;
  destroy(state: unknown): void;
  /** `opus_strerror(code)`: libopus's words for an error code. */
  errorText(code: number): string;
  version: string;
}

function load(): LibopusDecoderApi {
  // Find the addon exactly as @discordjs/opus's own lib/index.js does, so it is the very file
  // that package loaded (the dynamic loader then hands back the same library, not a copy).
  const requireFromHere = createRequire(import.meta.url);
  const opusPackageJson = requireFromHere.resolve('@discordjs/opus/package.json');
  const requireFromOpus = createRequire(opusPackageJson);
  const { find } = requireFromOpus('@discordjs/node-pre-gyp') as { find(packageJsonPath: string): string };
  const lib = koffi.load(find(opusPackageJson));

  const create = lib.func('void *opus_decoder_create(int32_t Fs, int channels, _Out_ int *error)');
  const decode = lib.func('int opus_decode(void *st, const uint8_t *data, int32_t len, _Out_ int16_t *pcm, int frame_size, int decode_fec)');
  const destroy = lib.func('void opus_decoder_destroy(void *st)');
  const strerror = lib.func('const char *opus_strerror(int error)');
  const versionString = lib.func('const char *opus_get_version_string(void)');

  return {
    create(sampleRate, channels) {
      const error = [0];
      const state = create(sampleRate, channels, error);
      if (error[0] !== 0 || state === null) throw new Error(`opus_decoder_create failed: ${strerror(error[0])}`);
      return state;
    },
    decode(state, data, pcm, frameSamples, decodeFec) {
      return decode(state, data, data === null ? 0 : data.length, pcm, frameSamples, decodeFec ? 1 : 0) as number;
    },
    destroy(state) {
      destroy(state);
    },
    errorText(code) {
      return strerror(code) as string;
    },
    version: versionString() as string,
  };
}

let api: LibopusDecoderApi | undefined;
let reason: string | undefined;
try {
  api = load();
} catch (error) {
  reason = `libopus's decoder API is not reachable through @discordjs/opus's addon on this platform (${(error as Error).message})`;
}

export const libopusDecoderApi = api;
export const libopusUnavailableReason = reason;
