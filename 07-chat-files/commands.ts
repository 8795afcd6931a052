// The commands a user types on standard input (or the demo types for them): mute, unmute, users,
// rooms, join ROOM, stats, exit, and an empty line (Enter) for push-to-talk. runCommand() reads one
// line and does what it says.
import type { AudioPipeline } from './audio-pipeline.ts';
import { type ClientState, showRoom } from './client-state.ts';
import { joinFrame, listRoomsFrame, roomProblem } from './protocol.ts';
import type { ClientDisplay } from './terminal-display.ts';

/** What a command may act on: the client's parts, and the conversation with the server. */
export interface CommandTarget {
  state: ClientState;
  audio: AudioPipeline;
  display: ClientDisplay;
  /** True once the server has welcomed us: before that there is no room to act on. */
  isJoined(): boolean;
  send(frame: Buffer): void;
  /** Leaves cleanly: BYE, then close. */
  leave(why: string): void;
  /** Shows the voice path and the loss, jitter and round-trip statistics (the command stats). */
  showStats(): void;
}

/** The line that tells a user at a terminal what to type. */
export function commandsHint(pushToTalk: boolean): string {
  return `type mute, unmute, users, rooms, join ROOM, stats or exit (or press Ctrl+C)${pushToTalk ? '; press Enter to turn push-to-talk on or off' : ''}`;
}

export function showPushToTalk(audio: AudioPipeline, display: ClientDisplay): void {
  display.line(audio.pushToTalkOn ? 'push-to-talk: on (sending; Enter to stop)' : 'push-to-talk: off (press Enter to talk)');
}

/** One line of standard input (or of the script). */
export function runCommand(line: string, client: CommandTarget): void {
  const { audio, display } = client;
  // The command word is case-insensitive; its argument (a room id) is not.
  const [word = '', ...rest] = line.trim().split(/\s+/);
  const command = word.toLowerCase();
  if (command === 'exit' || command === 'quit') {
    client.leave('exit');
  } else if (command === 'mute' || command === 'unmute') {
    audio.muted = command === 'mute';
    display.line(audio.muted ? 'muted: sending nothing' : 'unmuted');
  } else if (command === 'stats') {
    client.showStats();
  } else if (command === 'users') {
    showRoom(client.state, display);
  } else if (command === 'rooms') {
    if (client.isJoined()) client.send(listRoomsFrame()); // the answer is ROOMS
    else display.line('not in a room yet: wait for the server to answer');
  } else if (command === 'join') {
    requestJoin(rest.join(' '), client);
  } else if (command === '' && audio.pushToTalk) {
    audio.pushToTalkOn = !audio.pushToTalkOn;
    showPushToTalk(audio, display);
  } else if (command !== '') {
    display.line(`commands: mute, unmute, users, rooms, join ROOM, stats, exit${audio.pushToTalk ? ', and Enter for push-to-talk' : ''}`);
  }
}

/** `join ROOM`: the id is checked here first, so a typo is explained without a round trip. */
function requestJoin(target: string, client: CommandTarget): void {
  const problem = roomProblem(target);
  if (target === '') client.display.line('join which room? type join ROOM, for example join game-42');
  else if (problem) client.display.line(`cannot join "${target}": ${problem}`);
  else if (!client.isJoined()) client.display.line('not in a room yet: wait for the server to answer');
  else client.send(joinFrame(target)); // the answer is USERS for the new room, or JOIN_REFUSED
}
