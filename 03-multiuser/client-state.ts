// What the client knows about the others, as the server tells it: who is here and who is
// speaking. applyNews() applies one message of news to that state and shows it.
import { MessageType, parseNameList, parseUserEvent } from './protocol.ts';
import type { ClientDisplay } from './terminal-display.ts';

export class ClientState {
  /** Everyone here, us included, in the order the server listed them. */
  users: string[] = [];
  /** Who is speaking now, by SPEAKING. */
  speakers = new Set<string>();

  /** For the status line: "users: Ada, Bob*  (*speaking)". */
  get status(): string {
    return `users: ${nameList(this.users, (name) => (this.speakers.has(name) ? '*' : ''))}  (*speaking)`;
  }
}

/** "Ada, Bob", or "(nobody)". (The display makes names safe to print, not this.) */
export function nameList(names: readonly string[], mark: (name: string) => string = () => ''): string {
  return names.length === 0 ? '(nobody)' : names.map((name) => name + mark(name)).join(', ');
}

/** Who is with us: on USERS and on the command users. */
export function showRoom(state: ClientState, display: ClientDisplay): void {
  display.line(`users: ${nameList(state.users)}`);
}

/**
 * One message of news from the server, applied to `state` and shown: USERS, JOINED, LEFT and
 * SPEAKING about the others. `type` is one of these (the caller routes every other type elsewhere).
 */
export function applyNews(state: ClientState, type: number, payload: Buffer, display: ClientDisplay): void {
  if (type === MessageType.users) {
    state.users = parseNameList(payload, 'users');
    showRoom(state, display);
  } else if (type === MessageType.joined) {
    const { name } = parseUserEvent(payload);
    if (!state.users.includes(name)) state.users.push(name);
    display.line(`joined: ${name}`);
  } else if (type === MessageType.left) {
    const { name, reason } = parseUserEvent(payload);
    state.users = state.users.filter((user) => user !== name);
    state.speakers.delete(name);
    display.line(`left: ${name}${reason === undefined ? '' : ` (${reason})`}`);
  } else {
    state.speakers = new Set(parseNameList(payload, 'speakers'));
    display.line(`speaking: ${nameList([...state.speakers])}`);
  }
}
