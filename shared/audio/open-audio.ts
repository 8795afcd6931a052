// Turns the --input / --output command-line specs into sources and sinks:
//   --input  mic | tone:HZ | silence | FILE.wav
//   --output speaker | null | FILE.wav (a recording: as long as the session, silence where nothing arrived)
// naudiodon (PortAudio) is loaded only for mic and speaker, and only after a
// quiet probe has shown there is a device, so that everything else works on
// machines without a sound card or without the native module.

import { probeAudioDevices, type AudioDeviceSummary } from './device-probe.ts';
import type { PortAudio } from './mic-source.ts';
import { MicSource } from './mic-source.ts';
import { NullSink } from './null-sink.ts';
import { createSilenceSource } from './silence-source.ts';
import { SpeakerSink } from './speaker-sink.ts';
import { TimeKeepingSink } from './recording-sink.ts';
import { createToneSource } from './tone-source.ts';
import { AudioDeviceUnavailable, AudioFormatError, type AudioSink, type AudioSource } from './types.ts';
import { createWavSource } from './wav-source.ts';
import { WavFileSink } from './wav-sink.ts';

const INPUT_FORMS = 'mic, tone:HZ (HZ from 1 to 24000), silence or FILE.wav';
const OUTPUT_FORMS = 'speaker, null or FILE.wav';
const MAX_TONE_HZ = 24_000; // half the sample rate: higher tones cannot be represented

/**
 * Opens the source named by an --input spec. Throws AudioFormatError or AudioDeviceUnavailable.
 * `say` gets a line worth showing the user before a WAV file in another format is converted.
 */
export async function openSource(spec: string, say: (line: string) => void = console.log): Promise<AudioSource> {
  if (spec === 'mic') return new MicSource(await loadPortAudio('input'));
  if (spec === 'silence') return createSilenceSource();
  if (spec.startsWith('tone:')) return createToneSource(parseToneHz(spec));
  if (/\.wav$/i.test(spec)) return createWavSource(spec, undefined, say);
  throw new AudioFormatError(`invalid --input "${spec}": use ${INPUT_FORMS}`);
}

/** Opens the sink named by an --output spec. Throws AudioFormatError or AudioDeviceUnavailable. */
export async function openSink(spec: string): Promise<AudioSink> {
  if (spec === 'speaker') return new SpeakerSink(await loadPortAudio('output'));
  if (spec === 'null') return new NullSink();
  // A recording keeps time: silence where nothing arrived (recording-sink.ts).
  if (/\.wav$/i.test(spec)) return new TimeKeepingSink(new WavFileSink(spec));
  throw new AudioFormatError(`invalid --output "${spec}": use ${OUTPUT_FORMS}`);
}

function parseToneHz(spec: string): number {
  const text = spec.slice('tone:'.length);
  const hz = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || hz < 1 || hz > MAX_TONE_HZ) {
    throw new AudioFormatError(`invalid --input "${spec}": the tone must be 1 to 24000 Hz; use ${INPUT_FORMS}`);
  }
  return hz;
}

/** The one-line advice when `direction` has no device; with no sound card at all it names both fixes at once. */
export function noDeviceAdvice(direction: 'input' | 'output', devices: AudioDeviceSummary[]): string {
  const noCardAtAll = !devices.some((device) => device.maxInputChannels > 0 || device.maxOutputChannels > 0);
  if (noCardAtAll) {
    // Both --input mic and --output speaker (the defaults) would fail: say so now, not one try later.
    return 'no sound card found (no microphone, no speaker): use --input tone:440 --output out.wav (other inputs: silence, FILE.wav; other outputs: null)';
  }
  return direction === 'input'
    ? 'no microphone found: use --input tone:440, --input silence or --input FILE.wav'
    : 'no speaker found: use --output null or --output FILE.wav';
}

/** Loads naudiodon if a device for `direction` exists, else throws a one-line AudioDeviceUnavailable. */
async function loadPortAudio(direction: 'input' | 'output'): Promise<PortAudio> {
  const devices = probeAudioDevices();
  const found = devices.some((device) => (direction === 'input' ? device.maxInputChannels > 0 : device.maxOutputChannels > 0));
  if (!found) throw new AudioDeviceUnavailable(noDeviceAdvice(direction, devices));
  // Dynamic import: programs that never use mic or speaker never load the native module.
  return (await import('naudiodon')).default;
}
