// How far a transfer has got, for both sides: a percentage for the status line, a summary with
// the rate for /transfers, and (when standard output is not a terminal) one plain line each time
// it passes 25, 50 and 75 %.
const MILESTONES = [25, 50, 75];

export class Progress {
  private readonly started = Date.now();
  private passed = 0;

  constructor(
    /** `transfer 7 "report.pdf"` */
    private readonly label: string,
    private readonly size: number,
  ) {}

  percent(bytes: number): number {
    return this.size === 0 ? 100 : Math.floor((bytes * 100) / this.size);
  }

  /** "25% (5242880 of 20971520 bytes, 9.8 MB/s)" */
  summary(bytes: number): string {
    const seconds = Math.max(0.001, (Date.now() - this.started) / 1000);
    return `${this.percent(bytes)}% (${bytes} of ${this.size} bytes, ${(bytes / seconds / 1e6).toFixed(1)} MB/s)`;
  }

  /** The plain line to print when `bytes` passes the next milestone, else null. */
  milestone(bytes: number): string | null {
    const percent = this.percent(bytes);
    let reached: number | null = null;
    while (this.passed < MILESTONES.length && percent >= MILESTONES[this.passed]! && percent < 100) reached = MILESTONES[this.passed++]!;
    return reached === null ? null : `${this.label}: ${this.summary(bytes)}`;
  }
}
