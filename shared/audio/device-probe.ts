// Asks PortAudio which sound devices exist, in a CHILD process.
//
// On a machine without a sound card, loading PortAudio prints dozens of
// "ALSA lib ..." lines on stderr (from C code, so Node cannot silence them).
// A child process whose stderr is discarded takes that noise; we then load
// naudiodon in our own process only if there is a device to open.

import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';

export interface AudioDeviceSummary {
  name: string;
  maxInputChannels: number;
  maxOutputChannels: number;
}

// PortAudio prints a banner on stdout too: our answer is the line after this marker.
const MARKER = '@@audio-devices@@';

/**
 * The sound devices PortAudio sees. Empty if the child failed: besides a
 * missing native module, PortAudio ABORTS the process (a failed assertion)
 * when ALSA has no devices at all, which is one more reason to ask a child.
 */
export function probeAudioDevices(env: NodeJS.ProcessEnv = process.env): AudioDeviceSummary[] {
  // Resolved here so the child finds naudiodon whatever its working directory.
  const naudiodonPath = createRequire(import.meta.url).resolve('naudiodon');
  const script = `
    const { getDevices } = require(${JSON.stringify(naudiodonPath)});
    const devices = getDevices().map(({ name, maxInputChannels, maxOutputChannels }) =>
      ({ name, maxInputChannels, maxOutputChannels }));
    console.log('\\n${MARKER}' + JSON.stringify(devices));`;
  const result = spawnSync(process.execPath, ['-e', script], {
    stdio: ['ignore', 'pipe', 'ignore'],
    env,
    // naudiodon installs a crash handler that writes crash.log in the working directory.
    cwd: tmpdir(),
    encoding: 'utf8',
    timeout: 15_000,
  });
  const line = (result.stdout ?? '').split('\n').find((l) => l.startsWith(MARKER));
  if (line === undefined) return [];
  return JSON.parse(line.slice(MARKER.length)) as AudioDeviceSummary[];
}
