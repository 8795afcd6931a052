// Medians over repeated runs: this machine is shared, so one run says little.
import type { BenchResult } from './measure.ts';

export function median(values: number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Every numeric field is the median of the runs' values (so fields may come from different runs). */
export function medianResult(runs: BenchResult[]): BenchResult {
  const first = runs[0]!;
  if (runs.length === 1) return first;
  const result: Record<string, unknown> = { ...first, runs: runs.length };
  for (const [key, value] of Object.entries(first)) {
    if (typeof value === 'number') {
      result[key] = median(runs.map((run) => run[key as keyof BenchResult] as number));
    } else if (value !== null && typeof value === 'object') {
      const byReason: Record<string, number> = {};
      for (const reason of Object.keys(value)) {
        byReason[reason] = median(runs.map((run) => (run[key as keyof BenchResult] as Record<string, number>)[reason] ?? 0));
      }
      result[key] = byReason;
    }
  }
  return result as unknown as BenchResult;
}

/** "median 7.1 (6.8-7.9)": the spread says how noisy the machine was. */
export function spread(values: number[], digits = 1): string {
  const ok = values.filter((v) => !Number.isNaN(v));
  if (ok.length === 0) return 'n/a';
  const f = (v: number) => v.toFixed(digits);
  return ok.length === 1 ? f(ok[0]!) : `${f(median(ok))} (${f(Math.min(...ok))}–${f(Math.max(...ok))})`;
}
