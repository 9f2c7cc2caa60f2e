/**
 * Summaries of repeated measurements: the median, and how far a median of a few noisy pairs can
 * be trusted.
 */

/** The median (of an even count, the mean of the middle two). */
export function middle(values: readonly number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const half = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[half] as number)
    : ((sorted[half - 1] as number) + (sorted[half] as number)) / 2;
}

/**
 * A distribution-free confidence interval for the median: the k-th smallest and k-th largest
 * values, k the largest such that fewer than k of n values fall below the median with probability
 * at most (1 − level) / 2 (each value lies below it with probability ½, so that count is
 * binomial). No assumption about the shape of the noise, which on these machines is anything but
 * normal. Of twenty pairs at 95 %: the 6th and 15th values. Null when there are too few values for
 * the level (fewer than six at 95 %).
 */
export function medianInterval(
  values: readonly number[],
  level = 0.95,
): readonly [number, number] | null {
  const n = values.length;
  const tail = (1 - level) / 2;
  // P(X ≤ j) for X ~ Binomial(n, ½), accumulated term by term.
  let term = 0.5 ** n;
  let below = term;
  let k = 0;
  for (let j = 0; below <= tail && j < n; j++) {
    k = j + 1;
    term = (term * (n - j)) / (j + 1);
    below += term;
  }
  if (k === 0) return null;
  const sorted = [...values].sort((x, y) => x - y);
  return [sorted[k - 1] as number, sorted[n - k] as number];
}
