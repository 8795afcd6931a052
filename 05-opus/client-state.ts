// What the client knows about its room, as the server tells it: the room's id, who is in it and
// who is speaking. applyNews() applies one message of news to that state and shows it.
import {
  MessageType,
  parseJoinRefused,
  parseNameList,
  parseRooms,
  parseUserEvent,
  parseUsersRoom,
} from './protocol.ts';
import type { ClientDisplay } from './terminal-display.ts';

export class ClientState {
  /** Everyone in the room, us included, in the order the server listed them. */
  users: string[] = [];
  /** Who is speaking now, by SPEAKING. */
  speakers = new Set<string>();

  /** `room`: the room we are in; first the one we asked for, then the server's word (WELCOME, USERS). */
  constructor(public room: string) {}

  /** For the status line: "room lobby | users: Ada, Bob*  (*speaking)". */
  get status(): string {
    return `room ${this.room} | users: ${nameList(this.users, (name) => (this.speakers.has(name) ? '*' : ''))}  (*speaking)`;
  }
}

/** "Ada, Bob", or "(nobody)". (The display makes names safe to print, not this.) */
export function nameList(names: readonly string[], mark: (name: string) => string = () => ''): string {
  return names.length === 0 ? '(nobody)' : names.map((name) => name + mark(name)).join(', ');
}

/** Where we are and who is with us: on USERS and on the command users. */
export function showRoom(state: ClientState, display: ClientDisplay): void {
  display.line(`room: ${state.room}`);
  display.line(`users: ${nameList(state.users)}`);
}

/**
 * One message of news from the server, applied to `state` and shown: USERS, JOINED, LEFT and
 * SPEAKING about the others in our room; JOIN_REFUSED and ROOMS, the answers to our commands.
 * `type` is one of these (the caller routes every other type elsewhere).
 */
export function applyNews(state: ClientState, type: number, payload: Buffer, display: ClientDisplay): void {
  if (type === MessageType.users) {
    // After WELCOME and after each move (or a join of the room we are in): the room is the server's word.
    const newRoom = parseUsersRoom(payload);
    state.users = parseNameList(payload, 'users');
    if (newRoom !== state.room) state.speakers = new Set(); // who spoke over there says nothing about here
    state.room = newRoom;
    showRoom(state, display);
  } else if (type === MessageType.joinRefused) {
    const { code, message } = parseJoinRefused(payload);
    display.line(`join refused: ${message} (${code})`); // and we stay where we are
  } else if (type === MessageType.rooms) {
    display.list('rooms', parseRooms(payload).map((entry) => `${entry.room} (${entry.users})`));
  } else if (type === MessageType.joined) {
    const { name } = parseUserEvent(payload);
    if (!state.users.includes(name)) state.users.push(name);
    display.line(`joined: ${name}`);
  } else if (type === MessageType.left) {
    const { name, reason } = parseUserEvent(payload);
    state.users = state.users.filter((user) => user !== name);
    state.speakers.delete(name);
    display.line(`left: ${name}${reason === undefined ? '' : ` (${reason === 'moved' ? 'moved to another room' : reason})`}`);
  } else {
    state.speakers = new Set(parseNameList(payload, 'speakers'));
    display.line(`speaking: ${nameList([...state.speakers])}`);
  }
}
