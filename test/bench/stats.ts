/** Summaries, ratios and the printed table of `npm run bench`. */

export interface Summary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/** Percentile by linear interpolation between closest ranks (numpy's default). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const n = sorted.length;
  return {
    n,
    p50: round1(percentile(sorted, 50)),
    p95: round1(percentile(sorted, 95)),
    p99: round1(percentile(sorted, 99)),
    min: round1(sorted[0] ?? Number.NaN),
    max: round1(sorted[n - 1] ?? Number.NaN),
    mean: round1(n ? sorted.reduce((a, b) => a + b, 0) / n : Number.NaN),
  };
}

export function ratio(value: number, floor: number): number | null {
  if (!Number.isFinite(value) || !Number.isFinite(floor) || floor === 0) return null;
  return Math.round((value / floor) * 100) / 100;
}

/** One line of the table and one entry of the JSON: a measured figure beside its floor. */
export interface Figure {
  /** e.g. `leaseToReady`. */
  name: string;
  /** What the value is, e.g. `p50 ms`. */
  metric: string;
  value: number;
  floor: number | null;
  ratio: number | null;
  /** e.g. `p50 <= floor + 100 ms`. */
  target: string;
  /** null when the target has no meaning for this line (context only). */
  pass: boolean | null;
  /** Distributions and everything else worth keeping (JSON only). */
  detail: Record<string, unknown>;
  notes: string[];
}

export function figure(f: Omit<Figure, 'ratio' | 'detail' | 'notes'> & Partial<Pick<Figure, 'ratio' | 'detail' | 'notes'>>): Figure {
  return {
    ...f,
    ratio: f.ratio !== undefined ? f.ratio : f.floor === null ? null : ratio(f.value, f.floor),
    detail: f.detail ?? {},
    notes: f.notes ?? [],
  };
}

/** A figure that could not be measured: it fails, and says why. */
export function failedFigure(name: string, target: string, error: unknown): Figure {
  const message = error instanceof Error ? error.message : String(error);
  return figure({ name, metric: 'error', value: Number.NaN, floor: null, target, pass: false, notes: [`not measured: ${message}`] });
}

function cell(value: number | null, digits = 1): string {
  if (value === null) return '-';
  if (!Number.isFinite(value)) return 'n/a';
  return value.toFixed(Math.abs(value) >= 1000 ? 0 : digits);
}

export function table(figures: readonly Figure[]): string {
  const header = ['figure', 'metric', 'value', 'floor', 'ratio', 'target', 'result'];
  const rows = figures.map((f) => [
    f.name,
    f.metric,
    cell(f.value),
    cell(f.floor),
    f.ratio === null ? '-' : `${f.ratio.toFixed(2)}x`,
    f.target,
    f.pass === null ? '-' : f.pass ? 'pass' : 'FAIL',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 2 && i <= 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Sorted notes, one per line, prefixed by their figure. */
export function notes(figures: readonly Figure[]): string {
  return figures.flatMap((f) => f.notes.map((n) => `  ${f.name}: ${n}`)).join('\n');
}

/** The run's outcome: ok when no figure missed its target; a line for each one that did. */
export interface Verdict {
  ok: boolean;
  /** `name metric: value (target T)`, and why when it could not be measured. */
  missed: string[];
}

/**
 * Pass or fail of a run, from its figures: a figure misses when `pass` is
 * false (one that could not be measured fails too); `pass: null` is context
 * and never fails. `npm run bench` exits 1 when `ok` is false.
 */
export function verdict(figures: readonly Figure[]): Verdict {
  const missed = figures
    .filter((f) => f.pass === false)
    .map((f) => {
      const why = f.metric === 'error' ? ` ${f.notes.join('; ')}` : '';
      return `${f.name} ${f.metric}: ${cell(f.value)} (target ${f.target})${why}`;
    });
  return { ok: missed.length === 0, missed };
}
