// What the client knows about its room, as the server tells it: the room's id, who is in it and
// who is speaking, each user by session id and name. applyNews() applies one message of news to
// that state, shows it, and tells the voice receiver whose streams to drop. From stage 08 on it
// also knows which members are in a call (USERS' in_call, PRESENCE), never with whom.
import { parsePresence } from './call-messages.ts';
import { MessageType, parseJoinRefused, parseRooms, parseSpeakers, parseUserEvent, parseUsers, type RoomMember, type UserRef } from './protocol.ts';
import type { ClientDisplay } from './terminal-display.ts';

/** The part of the voice receiver that follows the room: a speaker who is gone loses their decoder. */
export interface SpeakerStreams {
  removeSpeaker(id: number): void;
  keepOnly(ids: ReadonlySet<number>): void;
}

export class ClientState {
  /** Everyone in the room, us included, in the order the server listed them, each with whether they are in a call. */
  users: RoomMember[] = [];
  /** Who is speaking now, by id, from SPEAKING. */
  speakers = new Set<number>();
  /** Our session id, from WELCOME. */
  ownId: number | undefined;
  /** Whether a user is the one we call or are in a call with (their PRESENCE says nothing new to us). */
  isCallPartner: (id: number) => boolean = () => false;

  /** `room`: the room we are in; first the one we asked for, then the server's word (WELCOME, USERS). */
  constructor(public room: string) {}

  /** For the status line: "room lobby | users: Ada, Bob*, Cat (in call)  (*speaking)". */
  get status(): string {
    const mark = (user: UserRef) => (this.speakers.has(user.id) ? '*' : (user as RoomMember).inCall ? ' (in call)' : '');
    return `room ${this.room} | users: ${nameList(this.users, mark)}  (*speaking)`;
  }
}

/** "Ada, Bob", or "(nobody)". (The display makes names safe to print, not this.) */
export function nameList(users: readonly UserRef[], mark: (user: UserRef) => string = () => ''): string {
  return users.length === 0 ? '(nobody)' : users.map((user) => user.name + mark(user)).join(', ');
}

/** Where we are and who is with us: on USERS and on the command users. */
export function showRoom(state: ClientState, display: ClientDisplay): void {
  display.line(`room: ${state.room}`);
  display.line(`users: ${nameList(state.users)}`);
}

/**
 * One message of news from the server, applied to `state` and shown: USERS, JOINED, LEFT and
 * SPEAKING about the others in our room; JOIN_REFUSED and ROOMS, the answers to our commands;
 * PRESENCE, a member's call starting or ending.
 * `type` is one of these (the caller routes every other type elsewhere).
 */
export function applyNews(state: ClientState, type: number, payload: Buffer, display: ClientDisplay, streams: SpeakerStreams): void {
  if (type === MessageType.users) {
    // After WELCOME and after each move (or a join of the room we are in): the room is the server's word.
    const { room, users } = parseUsers(payload);
    state.users = users;
    if (room !== state.room) state.speakers = new Set(); // who spoke over there says nothing about here
    state.room = room;
    streams.keepOnly(new Set(users.map((user) => user.id))); // the old room's voices end here
    showRoom(state, display);
  } else if (type === MessageType.joinRefused) {
    const { code, message } = parseJoinRefused(payload);
    display.line(`join refused: ${message} (${code})`); // and we stay where we are
  } else if (type === MessageType.rooms) {
    display.list('rooms', parseRooms(payload).map((entry) => `${entry.room} (${entry.users})`));
  } else if (type === MessageType.joined) {
    const user = parseUserEvent(payload);
    if (!state.users.some((known) => known.id === user.id)) state.users.push({ id: user.id, name: user.name, inCall: false });
    display.line(`joined: ${user.name}`);
  } else if (type === MessageType.left) {
    const { id, name, reason } = parseUserEvent(payload);
    state.users = state.users.filter((user) => user.id !== id);
    state.speakers.delete(id);
    streams.removeSpeaker(id);
    display.line(`left: ${name}${reason === undefined ? '' : ` (${reason === 'moved' ? 'moved to another room' : reason})`}`);
  } else if (type === MessageType.presence) {
    const { id, name, inCall } = parsePresence(payload);
    const member = state.users.find((user) => user.id === id);
    if (member) member.inCall = inCall;
    if (id !== state.ownId && !state.isCallPartner(id)) display.line(inCall ? `${name} is in a call` : `${name} is out of their call`);
  } else {
    const speakers = parseSpeakers(payload);
    state.speakers = new Set(speakers.map((user) => user.id));
    display.line(`speaking: ${nameList(speakers)}`);
  }
}
