// A pretend sound card for headless machines (CI has none): an ALSA
// configuration whose default device records playback into a file and plays
// a file as the microphone. PortAudio then opens "default" as usual, so the
// real mic and speaker code paths run and their bytes can be checked.
//
// Facts measured on it: capture starts with in.raw byte-exact from offset 0,
// but runs many times faster than real time and, after the first 16 frames
// or so, repeats stale buffer contents; playback writes the PCM byte-exact
// to out.raw after some leading silence, also as fast as it is given.
//
// The variables apply to child processes only (ALSA reads its configuration
// once per process): spawn the program under test with `env`.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface FileBackedAlsa {
  /** A fresh temporary folder holding everything below; also a good cwd for the child. */
  dir: string;
  /** process.env plus ALSA_CONFIG_PATH pointing at the generated configuration. */
  env: NodeJS.ProcessEnv;
  /** Raw s16le mono 48 kHz: what the "microphone" captures. */
  inPath: string;
  /** Raw s16le mono 48 kHz: what the "speaker" played (created when playback opens). */
  outPath: string;
  /** Deletes the folder. */
  cleanup(): void;
}

/** Makes a temp folder with in.raw (containing `capturePcm`) and an ALSA config using it. */
export function createFileBackedAlsa(capturePcm: Buffer = Buffer.alloc(0)): FileBackedAlsa {
  const dir = mkdtempSync(join(tmpdir(), 'file-backed-alsa-'));
  const inPath = join(dir, 'in.raw');
  const outPath = join(dir, 'out.raw');
  writeFileSync(inPath, capturePcm);
  const quote = JSON.stringify; // ALSA strings use the same double quotes and escapes
  const config = `
pcm.!default { type asym
  playback.pcm { type plug; slave { pcm "fileout"; format S16_LE; rate 48000; channels 1 } }
  capture.pcm  { type plug; slave { pcm "filein";  format S16_LE; rate 48000; channels 1 } } }
pcm.fileout { type file; slave.pcm { type null }; file ${quote(outPath)}; format "raw" }
pcm.filein  { type file; slave.pcm { type null }; file "/dev/null"; infile ${quote(inPath)}; format "raw" }
`;
  const configPath = join(dir, 'asound.conf');
  writeFileSync(configPath, config);
  return {
    dir,
    env: { ...process.env, ALSA_CONFIG_PATH: configPath },
    inPath,
    outPath,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * An ALSA configuration with no devices at all: a machine without a sound
 * card. (Loading PortAudio under it aborts the process with a failed
 * assertion, which is why open-audio.ts probes for devices in a child.)
 */
export function createNoSoundCardAlsa(): Omit<FileBackedAlsa, 'inPath' | 'outPath'> {
  const dir = mkdtempSync(join(tmpdir(), 'no-sound-card-'));
  const configPath = join(dir, 'asound.conf');
  writeFileSync(configPath, '# no devices\n');
  return {
    dir,
    env: { ...process.env, ALSA_CONFIG_PATH: configPath },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
