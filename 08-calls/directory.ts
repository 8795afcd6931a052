// The directory (stage 08): every joined user by name, on the whole server. Names are unique on the
// server (HELLO with a name anyone uses gets ERROR name_taken), so a name is an address: /call Ada
// means one person. It answers one exact name at a time (LOOKUP), never a list: what a user can
// learn about others is in README.md's privacy table.
import type { UserRef } from './protocol.ts';

export class Directory<User extends UserRef> {
  private readonly byName = new Map<string, User>();

  get size(): number {
    return this.byName.size;
  }

  /** The user online under exactly this name (no case folding: "ada" is not "Ada"). */
  find(name: string): User | undefined {
    return this.byName.get(name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** Lists a user who was welcomed (their name was checked to be free). */
  add(user: User): void {
    this.byName.set(user.name, user);
  }

  /** Forgets a user who left (if this entry is theirs). */
  remove(user: User): void {
    if (this.byName.get(user.name) === user) this.byName.delete(user.name);
  }
}
