// How a grade is shown: one line per check for people, and a JSON report for collecting a class.
import { formatFailure, showBytes } from '../conformance/harness/check-failure.ts';
import type { CheckOutcome } from '../conformance/harness/checks.ts';

export interface CheckReport {
  name: string;
  subject: 'server' | 'client';
  passed: boolean;
  /** Present when the check could not measure what it claims (SKIP): the reason. Not a pass. */
  skipped?: string;
  ms: number;
  failure?: {
    summary: string;
    expected: string;
    actual?: string;
    sent_hex?: string;
    received_hex?: string;
    hint?: string;
  };
}

export interface GradeReport {
  stage: string;
  /** The commands graded, as given; null when that side was not graded (the reference served, if needed). */
  server: string | null;
  client: string | null;
  started: string;
  finished: string;
  passed: number;
  /** Checks that could not measure (SKIP): counted in total, not in passed. */
  skipped: number;
  total: number;
  /** With --repeat N (N > 1): each check ran N times, and `checks` holds every run. */
  repeat?: number;
  checks: CheckReport[];
  /** The hostile checks (graded by default from stage 02; --no-robustness skips them), scored apart; null when not graded. */
  robustness: { passed: number; skipped: number; total: number; checks: CheckReport[] } | null;
}

/** "PASS  name", "SKIP  name" with the reason, or "FAIL  name" followed by the failure's details, indented. */
export function outcomeText(outcome: CheckOutcome): string {
  if (outcome.skipped !== undefined) return `SKIP  ${outcome.check.name}\n      could not measure: ${outcome.skipped}`;
  const line = `${outcome.passed ? 'PASS' : 'FAIL'}  ${outcome.check.name}`;
  if (!outcome.failure) return line;
  const details = formatFailure(outcome.failure).split('\n').map((text) => `      ${text.replace(/^ {2}/, '')}`);
  return [line, ...details].join('\n');
}

/** The subtotal per side graded (server, client), then the score: the last line is what scripts grep. */
export function scoreText(outcomes: CheckOutcome[], repeat = 1): string {
  const unit = repeat === 1 ? 'checks' : `runs (each check ran ${repeat} times)`;
  const lines: string[] = [];
  for (const subject of ['server', 'client'] as const) {
    const side = outcomes.filter((outcome) => (outcome.check.subject ?? 'server') === subject);
    if (side.length > 0) lines.push(`${subject} ${repeat === 1 ? 'checks' : 'runs'}: ${side.filter((outcome) => outcome.passed).length}/${side.length} passed`);
  }
  const skipped = outcomes.filter((outcome) => outcome.skipped !== undefined).length;
  const note = skipped === 0 ? '' : ` (${skipped} skipped: could not be measured here, not counted as passed; see SKIP above)`;
  lines.push(`score: ${outcomes.filter((outcome) => outcome.passed).length}/${outcomes.length} ${unit} passed${note}`);
  return lines.join('\n');
}

/**
 * On a terminal, the line shown while a check runs (some take 10 s or more): its number and
 * name, replaced by the PASS/FAIL line when it ends (see grade.ts). Not written to files or pipes.
 */
export function runningText(check: { name: string }, index: number, total: number, run = 1, repeat = 1): string {
  const which = repeat === 1 ? '' : `, run ${run} of ${repeat}`;
  return `....  ${check.name}  (check ${index + 1} of ${total}${which}, running)`;
}

/**
 * With --repeat: per check, in the order they ran, how many runs passed, failed and could not
 * measure ("50/50 PASS", or "47 PASS, 2 FAIL, 1 SKIP of 50"), so a flaky check shows at a glance.
 */
export function tallyText(outcomes: CheckOutcome[], repeat: number): string {
  const byName = new Map<string, { passed: number; failed: number; skipped: number }>();
  for (const outcome of outcomes) {
    const tally = byName.get(outcome.check.name) ?? { passed: 0, failed: 0, skipped: 0 };
    if (outcome.passed) tally.passed++;
    else if (outcome.skipped !== undefined) tally.skipped++;
    else tally.failed++;
    byName.set(outcome.check.name, tally);
  }
  const lines = [`each check ran ${repeat} times:`];
  for (const [name, { passed, failed, skipped }] of byName) {
    const counts = passed === repeat ? `${repeat}/${repeat} PASS` : `${passed} PASS, ${failed} FAIL, ${skipped} SKIP of ${repeat}`;
    lines.push(`${counts.padEnd(24)}  ${name}`);
  }
  return lines.join('\n');
}

export function checkReport(outcome: CheckOutcome): CheckReport {
  const report: CheckReport = { name: outcome.check.name, subject: outcome.check.subject ?? 'server', passed: outcome.passed, ms: outcome.ms };
  if (outcome.skipped !== undefined) report.skipped = outcome.skipped;
  if (outcome.failure) {
    const { summary, details } = outcome.failure;
    report.failure = {
      summary,
      expected: details.expected,
      actual: details.actual,
      sent_hex: details.sent && showBytes(details.sent),
      received_hex: details.received && showBytes(details.received),
      hint: details.hint,
    };
  }
  return report;
}
