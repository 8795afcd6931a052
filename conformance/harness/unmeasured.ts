// What a check could not measure, collected while it runs and reported at its end as a SKIP (with
// every reason), so a check whose memory or open-file readings were impossible (the server runs
// on another machine, in a container, or under a name /proc does not show) never passes quietly,
// while what it could check (answers, errors, the others' audio) still fails it as usual.
import { CheckSkipped } from './check-failure.ts';

export class Unmeasured {
  private readonly reasons: string[] = [];

  note(reason: string): void {
    if (!this.reasons.includes(reason)) this.reasons.push(reason);
  }

  /** Call last, once everything measurable has passed: SKIP when anything went unmeasured. */
  settle(): void {
    if (this.reasons.length > 0) throw new CheckSkipped(`everything else passed, but ${this.reasons.join('; and ')}`);
  }
}

/** Why the server's resources cannot be read: for Unmeasured.note. */
export function processNotFound(what: string): string {
  return `the server's ${what} could not be measured: no process on this machine holds its listening socket (a server elsewhere, in a container, or not visible in /proc)`;
}
