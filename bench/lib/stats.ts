// Small statistics for the end-to-end benchmark (pure; unit-tested in bench/test).

/** The median (mean of the two middle values for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  const xs = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return Number.NaN;
  const mid = Math.floor(xs.length / 2);
  return xs.length % 2 === 1 ? (xs[mid] as number) : ((xs[mid - 1] as number) + (xs[mid] as number)) / 2;
}

/** Per numeric key, the median over the runs (keys missing in a run are skipped there). */
export function medianOf<T extends object>(runs: readonly T[]): T {
  const keys = new Set(runs.flatMap((r) => Object.keys(r)));
  const at = (r: T, k: string) => (r as Record<string, unknown>)[k];
  return Object.fromEntries(
    [...keys].map((k) => [
      k,
      median(runs.map((r) => at(r, k)).filter((v): v is number => typeof v === 'number')),
    ]),
  ) as T;
}

/** a / b, NaN when either is missing or b is 0. */
export function ratio(a: number | undefined, b: number | undefined): number {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0)
    return Number.NaN;
  return a / b;
}
