// What the user types on standard input (or the demo types for them). From stage 07 on, a line
// that starts with "/" is a command and any other line is a chat line, sent as TEXT to the room:
// chat lines are never parsed for commands, so "join us at 8" is sent as typed. The commands of
// stages 03-06 typed as bare words (exactly "exit", "mute", "join ROOM" ...) still work, with a
// hint the first time; "/say TEXT" sends a line that starts with "/" or is one of those words.
// An empty line is push-to-talk (with --ptt), as before; it is never sent.
// Stage 08 adds the calls: /who NAME, /call NAME, /accept, /decline, /hangup (call-state.ts).
import { homedir } from 'node:os';
import { nameProblem } from '#shared/user-name.ts';
import type { AudioPipeline } from './audio-pipeline.ts';
import type { CallState } from './call-state.ts';
import { textFrame, textProblem } from './chat-messages.ts';
import { type ClientState, showRoom } from './client-state.ts';
import { joinFrame, listRoomsFrame, roomProblem } from './protocol.ts';
import type { ClientDisplay } from './terminal-display.ts';

/** What a command may act on: the client's parts, and the conversation with the server. */
export interface CommandTarget {
  state: ClientState;
  audio: AudioPipeline;
  /** The call we make, take or are in. */
  calls: CallState;
  display: ClientDisplay;
  /** True once the server has welcomed us: before that there is no room to act on. */
  isJoined(): boolean;
  send(frame: Buffer): void;
  /** Leaves cleanly: BYE, then close. */
  leave(why: string): void;
  /** Shows the voice path and the loss, jitter and round-trip statistics (the command stats). */
  showStats(): void;
  /** /send and /sendto: offer the file at `path` to the room (or to the member `to`). */
  sendFile(path: string, to?: number): void;
  /** /transfers: one line per transfer. */
  showTransfers(): void;
  /** /cancel [ID]. */
  cancelTransfer(id?: number): void;
}

/** The words of stages 03-06 that still run their command when typed alone (with a hint). */
const OLD_WORDS = new Set(['exit', 'quit', 'mute', 'unmute', 'users', 'rooms', 'stats']);
/** Each client prints the hint about "/" once. */
const hinted = new WeakSet<CommandTarget>();

/** The line that tells a user at a terminal what to type. */
export function commandsHint(pushToTalk: boolean): string {
  return `type a line to chat; commands start with /: /call NAME, /accept, /decline, /hangup, /who NAME, /send FILE, /transfers, /cancel [ID], /msg NAME TEXT, /say TEXT, /join ROOM, /rooms, /users, /mute, /unmute, /stats, /exit, /help (or press Ctrl+C)${pushToTalk ? '; press Enter to turn push-to-talk on or off' : ''}`;
}

export function showPushToTalk(audio: AudioPipeline, display: ClientDisplay): void {
  display.line(audio.pushToTalkOn ? 'push-to-talk: on (sending; Enter to stop)' : 'push-to-talk: off (press Enter to talk)');
}

/** One line of standard input (or of the script). */
export function runCommand(line: string, client: CommandTarget): void {
  const { audio, display } = client;
  if (line.trim() === '') {
    if (audio.pushToTalk) {
      audio.pushToTalkOn = !audio.pushToTalkOn;
      showPushToTalk(audio, display);
    }
    return; // an empty line is never sent
  }
  if (line.startsWith('/')) return runSlashCommand(line.slice(1), client);
  const [word = '', ...rest] = line.trim().split(/\s+/);
  const oldWord = word.toLowerCase();
  const oldCommand = (rest.length === 0 && OLD_WORDS.has(oldWord)) || (oldWord === 'join' && rest.length === 1 && roomProblem(rest[0]!) === null);
  if (oldCommand) {
    if (!hinted.has(client)) {
      hinted.add(client);
      display.line(`(commands start with / from stage 07: /${oldWord}; to send the word as a chat line, type /say ${line.trim()})`);
    }
    return runSlashCommand(line.trim(), client);
  }
  say(line, client);
}

/** A chat line to the room (or, with `to`, to one member). A TAB becomes a space; nothing else is rewritten. */
function say(line: string, client: CommandTarget, to?: number): void {
  const text = line.replace(/\t/g, ' ');
  const problem = textProblem(text);
  if (problem) return client.display.line(`not sent: ${problem}`);
  if (!client.isJoined()) return client.display.line('not sent: not in a room yet (wait for the server to answer)');
  client.send(textFrame(text, to)); // the server's echo shows it, in the room's order
}

function runSlashCommand(body: string, client: CommandTarget): void {
  const { audio, display } = client;
  const match = /^(\S*)\s*([\s\S]*)$/.exec(body)!;
  const command = match[1]!.toLowerCase();
  const argument = match[2]!;
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
    requestJoin(argument.trim(), client);
  } else if (command === 'say') {
    say(argument, client);
  } else if (command === 'msg') {
    const [, name = '', text = ''] = /^(\S*)\s*([\s\S]*)$/.exec(argument) ?? [];
    const to = memberId(name, client);
    if (to === undefined) return;
    if (text === '') return display.line('/msg NAME TEXT: what to say?');
    say(text, client, to);
  } else if (command === 'send') {
    if (argument.trim() === '') return display.line('/send FILE: which file? e.g. /send ~/notes.txt');
    client.sendFile(expandHome(argument.trim()));
  } else if (command === 'sendto') {
    const [, name = '', path = ''] = /^(\S*)\s*([\s\S]*)$/.exec(argument) ?? [];
    const to = memberId(name, client);
    if (to === undefined) return;
    if (path.trim() === '') return display.line('/sendto NAME FILE: which file?');
    client.sendFile(expandHome(path.trim()), to);
  } else if (command === 'transfers') {
    client.showTransfers();
  } else if (command === 'cancel') {
    const id = argument.trim() === '' ? undefined : Number(argument.trim());
    if (id !== undefined && !(Number.isInteger(id) && id >= 1 && id <= 0xffff)) return display.line(`/cancel ${argument.trim()}: give a transfer id (see /transfers)`);
    client.cancelTransfer(id);
  } else if (command === 'who' || command === 'call') {
    const name = argument.trim();
    if (name === '') return display.line(`/${command} NAME: whom? e.g. /${command} Bob`);
    const problem = nameProblem(name);
    if (problem) return display.line(`${command === 'call' ? 'not called' : 'not looked up'}: "${name}" is no user name (${problem})`);
    if (!client.isJoined()) return display.line('not yet: wait for the server to answer');
    if (command === 'who') client.calls.who(name);
    else client.calls.call(name);
  } else if (command === 'accept') {
    client.calls.accept();
  } else if (command === 'decline') {
    client.calls.decline();
  } else if (command === 'hangup') {
    client.calls.hangup();
  } else if (command === 'help') {
    display.line(commandsHint(audio.pushToTalk));
  } else {
    display.line(`unknown command /${command}; /help lists them`); // a typo never reaches the room
  }
}

/** The session id of the member of our room called `name` (from USERS), or undefined after saying why. */
function memberId(name: string, client: CommandTarget): number | undefined {
  if (name === '') {
    client.display.line('to whom? give a name from /users');
    return undefined;
  }
  const user = client.state.users.find((member) => member.name === name && member.id !== client.state.ownId);
  if (!user) client.display.line(`nobody else called "${name}" in room ${client.state.room} (see /users)`);
  return user?.id;
}

function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? homedir() + path.slice(1) : path;
}

/** `/join ROOM`: the id is checked here first, so a typo is explained without a round trip. */
function requestJoin(target: string, client: CommandTarget): void {
  const problem = roomProblem(target);
  if (target === '') client.display.line('join which room? type /join ROOM, for example /join game-42');
  else if (problem) client.display.line(`cannot join "${target}": ${problem}`);
  else if (!client.isJoined()) client.display.line('not in a room yet: wait for the server to answer');
  else client.send(joinFrame(target)); // the answer is USERS for the new room, or JOIN_REFUSED
}
