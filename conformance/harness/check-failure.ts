// A failed check says what was sent, what came back, what was expected, and a hint,
// so a student (or an instructor grading one) can act on it without reading the test's code.

export interface FailureDetails {
  /** What the check expected, in words. */
  expected: string;
  /** What actually happened, in words (when bytes alone do not say it). */
  actual?: string;
  sent?: Buffer;
  received?: Buffer;
  /** What to look at in the implementation. */
  hint?: string;
}

export class CheckFailure extends Error {
  constructor(
    readonly summary: string,
    readonly details: FailureDetails,
  ) {
    super(summary);
    this.name = 'CheckFailure';
  }
}

/**
 * Awaits `work`; a CheckFailure from it comes out with `summary` in front of its own and `details`
 * over its own, so a refusal names the number at fault: "the HELLO limit is not 1024 bytes: a
 * HELLO of exactly 1024 bytes was not taken (Ada could not join)".
 */
export async function failingAs<T>(summary: string, work: Promise<T>, details: Partial<FailureDetails> = {}): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (!(error instanceof CheckFailure)) throw error;
    throw new CheckFailure(`${summary} (${error.summary})`, { ...error.details, ...details });
  }
}

/** Hex and text of some bytes, shortened when long: "48 45 4c 4c 4f  |HELLO|". */
export function showBytes(bytes: Buffer | undefined, max = 96): string {
  if (!bytes || bytes.length === 0) return '(nothing)';
  const shown = bytes.subarray(0, max);
  const hex = [...shown].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  const text = [...shown].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
  const more = bytes.length > max ? ` ... (${bytes.length} bytes in all)` : ` (${bytes.length} bytes)`;
  return `${hex}  |${text}|${more}`;
}

/** The multi-line report of a failure. */
export function formatFailure(failure: CheckFailure): string {
  const d = failure.details;
  const lines = [failure.summary, `  expected: ${d.expected}`];
  if (d.actual !== undefined) lines.push(`  actual:   ${d.actual}`);
  if (d.sent !== undefined) lines.push(`  sent:     ${showBytes(d.sent)}`);
  if (d.received !== undefined) lines.push(`  received: ${showBytes(d.received)}`);
  if (d.hint) lines.push(`  hint:     ${d.hint}`);
  return lines.join('\n');
}

/**
 * Thrown by a check that could not measure what it claims: the server's process is not on this
 * machine (so its memory cannot be read), or the grader's own timers ran so late that a timing
 * proves nothing. Reported as SKIP with the reason, never as a pass, and not as a failure of
 * the code under test either. `reason` says what was not measured and why, in one sentence.
 */
export class CheckSkipped extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'CheckSkipped';
  }
}
