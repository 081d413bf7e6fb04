import { BUCKETS_PER_E, type LatencyGroup } from '../lib/storage/latency-minutes';

/**
 * Durations as a histogram of natural logs, merged from `latency_minutes` rows. Inside a
 * bucket the log-durations are taken as spread evenly, so quantiles and counts above a
 * threshold fall between bucket edges instead of on them. Every figure is in
 * log-nanoseconds unless its name ends in `Ns`.
 */
export class LogHistogram {
  private readonly byBucket = new Map<number, number>();
  private sorted: [number, number][] | undefined;
  total = 0;

  /** Adds the counts of one row; see `LatencyGroup`. */
  add(group: Pick<LatencyGroup, 'buckets' | 'counts'>): this {
    group.buckets.forEach((bucket, index) => {
      const count = group.counts[index];
      this.byBucket.set(bucket, (this.byBucket.get(bucket) ?? 0) + count);
      this.total += count;
    });
    this.sorted = undefined;
    return this;
  }

  private entries(): [number, number][] {
    this.sorted ??= [...this.byBucket].sort((a, b) => a[0] - b[0]);
    return this.sorted;
  }

  /** Spans whose log-duration lies in [low, high). */
  massBetween(low: number, high: number): number {
    let mass = 0;
    for (const [bucket, count] of this.entries()) {
      const start = bucket / BUCKETS_PER_E;
      const end = (bucket + 1) / BUCKETS_PER_E;
      const overlap = Math.min(end, high) - Math.max(start, low);
      if (overlap > 0) mass += (count * overlap) / (end - start);
    }
    return mass;
  }

  /** Returns the log-duration below which `mass` spans lie. */
  logAtMass(mass: number): number {
    let before = 0;
    for (const [bucket, count] of this.entries()) {
      if (before + count >= mass) {
        return (bucket + Math.max(0, mass - before) / count) / BUCKETS_PER_E;
      }
      before += count;
    }
    const last = this.entries().at(-1);
    return last ? (last[0] + 1) / BUCKETS_PER_E : 0;
  }

  logQuantile(quantile: number): number {
    return this.logAtMass(quantile * this.total);
  }

  quantileNs(quantile: number): number {
    return this.total === 0 ? 0 : Math.exp(this.logQuantile(quantile));
  }

  /**
   * Median absolute deviation of the log-durations from their median: the distance d at
   * which half the spans lie within d of the median, found by bisection.
   */
  logMad(): number {
    if (this.total === 0) return 0;
    const median = this.logQuantile(0.5);
    const entries = this.entries();
    let low = 0;
    let high = Math.max(
      median - entries[0][0] / BUCKETS_PER_E,
      (entries.at(-1)![0] + 1) / BUCKETS_PER_E - median,
    );
    for (let step = 0; step < 40; step += 1) {
      const middle = (low + high) / 2;
      if (this.massBetween(median - middle, median + middle) >= this.total / 2) high = middle;
      else low = middle;
    }
    return high;
  }

  /** Spans longer than `thresholdNs`. */
  countAboveNs(thresholdNs: number): number {
    return this.massBetween(Math.log(Math.max(thresholdNs, 1)), Infinity);
  }

  /** Median duration of the spans longer than `thresholdNs`, or 0 when there are none. */
  medianAboveNs(thresholdNs: number): number {
    const threshold = Math.log(Math.max(thresholdNs, 1));
    const above = this.massBetween(threshold, Infinity);
    if (above <= 0) return 0;
    return Math.exp(this.logAtMass(this.total - above / 2));
  }
}

/** Merges the histograms of the groups that `keyOf` maps to the same key. */
export function mergeGroups<T extends LatencyGroup>(
  groups: T[],
  keyOf: (group: T) => string | undefined,
): Map<string, { first: T; spans: number; errors: number; histogram: LogHistogram }> {
  const merged = new Map<
    string,
    { first: T; spans: number; errors: number; histogram: LogHistogram }
  >();
  for (const group of groups) {
    const key = keyOf(group);
    if (key === undefined) continue;
    const entry = merged.get(key) ?? {
      first: group,
      spans: 0,
      errors: 0,
      histogram: new LogHistogram(),
    };
    entry.spans += group.spans;
    entry.errors += group.errors;
    entry.histogram.add(group);
    merged.set(key, entry);
  }
  return merged;
}
