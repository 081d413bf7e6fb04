/**
 * One-sided z statistic of a two-proportion test: how far the window's rate lies above
 * the baseline's, in standard errors of the pooled rate. Returns 0 when either sample is
 * empty or both rates are 0 or 1.
 */
export function twoProportionZ(
  windowEvents: number,
  windowTotal: number,
  baselineEvents: number,
  baselineTotal: number,
): number {
  if (windowTotal === 0 || baselineTotal === 0) return 0;
  const pooled = (windowEvents + baselineEvents) / (windowTotal + baselineTotal);
  const standardError = Math.sqrt(pooled * (1 - pooled) * (1 / windowTotal + 1 / baselineTotal));
  if (standardError === 0) return 0;
  return (windowEvents / windowTotal - baselineEvents / baselineTotal) / standardError;
}

/** One-sided z statistic of a one-sample proportion test against an expected rate. */
export function oneProportionZ(events: number, total: number, expectedRate: number): number {
  if (total === 0) return 0;
  const standardError = Math.sqrt((expectedRate * (1 - expectedRate)) / total);
  return standardError === 0 ? 0 : (events / total - expectedRate) / standardError;
}

/** Upper-tail p-value of a standard normal z statistic. */
export function normalUpperTail(z: number): number {
  // Abramowitz and Stegun 7.1.26 approximation of erfc, absolute error below 1.5e-7.
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const poly =
    t *
    (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erfc = poly * Math.exp(-x * x);
  return z >= 0 ? erfc / 2 : 1 - erfc / 2;
}
