// The commands a user types on standard input: mute, unmute, users, exit, and an empty line
// (Enter) for push-to-talk. runCommand() reads one line and does what it says.
import type { AudioPipeline } from './audio-pipeline.ts';
import { type ClientState, showRoom } from './client-state.ts';
import type { ClientDisplay } from './terminal-display.ts';

/** What a command may act on: the client's parts, and the conversation with the server. */
export interface CommandTarget {
  state: ClientState;
  audio: AudioPipeline;
  display: ClientDisplay;
  /** Leaves cleanly: BYE, then close. */
  leave(why: string): void;
}

/** The line that tells a user at a terminal what to type. */
export function commandsHint(pushToTalk: boolean): string {
  return `type mute, unmute, users or exit (or press Ctrl+C)${pushToTalk ? '; press Enter to turn push-to-talk on or off' : ''}`;
}

export function showPushToTalk(audio: AudioPipeline, display: ClientDisplay): void {
  display.line(audio.pushToTalkOn ? 'push-to-talk: on (sending; Enter to stop)' : 'push-to-talk: off (press Enter to talk)');
}

/** One line of standard input. */
export function runCommand(line: string, client: CommandTarget): void {
  const { audio, display } = client;
  const command = line.trim().toLowerCase();
  if (command === 'exit' || command === 'quit') {
    client.leave('exit');
  } else if (command === 'mute' || command === 'unmute') {
    audio.muted = command === 'mute';
    display.line(audio.muted ? 'muted: sending nothing' : 'unmuted');
  } else if (command === 'users') {
    showRoom(client.state, display);
  } else if (command === '' && audio.pushToTalk) {
    audio.pushToTalkOn = !audio.pushToTalkOn;
    showPushToTalk(audio, display);
  } else if (command !== '') {
    display.line(`commands: mute, unmute, users, exit${audio.pushToTalk ? ', and Enter for push-to-talk' : ''}`);
  }
}
