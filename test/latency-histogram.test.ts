import { LogHistogram } from '../analyzer/histogram';
import { defaultBaseline, lastWholeMinutes } from '../analyzer/report';
import { BUCKETS_PER_E } from '../lib/storage/latency-minutes';

/** Builds a histogram the way migration 010 buckets durations. */
function histogramOf(durationsNs: number[]): LogHistogram {
  const counts = new Map<number, number>();
  for (const duration of durationsNs) {
    const bucket = Math.floor(Math.log(Math.max(duration, 1)) * BUCKETS_PER_E);
    counts.set(bucket, (counts.get(bucket) ?? 0) + 1);
  }
  return new LogHistogram().add({ buckets: [...counts.keys()], counts: [...counts.values()] });
}

function exactQuantile(sorted: number[], quantile: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(quantile * sorted.length))];
}

/** Log-normal durations around 40 ms, from a fixed seed. */
function durations(count: number): number[] {
  let seed = 42;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return (seed + 1) / (2 ** 31 + 1);
  };
  return Array.from({ length: count }, () => {
    const normal = Math.sqrt(-2 * Math.log(random())) * Math.cos(2 * Math.PI * random());
    return Math.round(40e6 * Math.exp(0.4 * normal));
  });
}

describe('log histogram', () => {
  const values = durations(20_000);
  const sorted = [...values].sort((a, b) => a - b);
  const histogram = histogramOf(values);
  const bucketWidth = Math.exp(1 / BUCKETS_PER_E);

  it('quantiles within one bucket', () => {
    for (const quantile of [0.05, 0.5, 0.95, 0.99]) {
      const ratio = histogram.quantileNs(quantile) / exactQuantile(sorted, quantile);
      expect(ratio).toBeGreaterThan(1 / bucketWidth);
      expect(ratio).toBeLessThan(bucketWidth);
    }
  });

  it('MAD within a tenth', () => {
    const logs = sorted.map((value) => Math.log(value));
    const median = logs[logs.length / 2];
    const deviations = logs.map((value) => Math.abs(value - median)).sort((a, b) => a - b);
    const exact = deviations[deviations.length / 2];
    expect(Math.abs(histogram.logMad() - exact) / exact).toBeLessThan(0.1);
  });

  it('count above a threshold', () => {
    for (const thresholdNs of [30e6, 60e6, 100e6]) {
      const exact = values.filter((value) => value > thresholdNs).length;
      const bucketShare = values.filter(
        (value) => value > thresholdNs / bucketWidth && value <= thresholdNs * bucketWidth,
      ).length;
      expect(Math.abs(histogram.countAboveNs(thresholdNs) - exact)).toBeLessThanOrEqual(
        bucketShare / 2 + 1,
      );
    }
  });

  it('median above a threshold', () => {
    const above = sorted.filter((value) => value > 80e6);
    const ratio = histogram.medianAboveNs(80e6) / above[Math.floor(above.length / 2)];
    expect(ratio).toBeGreaterThan(1 / bucketWidth);
    expect(ratio).toBeLessThan(bucketWidth);
    expect(histogram.medianAboveNs(1e12)).toBe(0);
  });

  it('zero when empty', () => {
    const empty = new LogHistogram();
    expect(empty.quantileNs(0.5)).toBe(0);
    expect(empty.logMad()).toBe(0);
    expect(empty.countAboveNs(1)).toBe(0);
  });

  it('merges rows by bucket', () => {
    const merged = new LogHistogram()
      .add({ buckets: [100, 101], counts: [3, 1] })
      .add({ buckets: [101, 105], counts: [2, 4] });
    expect(merged.total).toBe(10);
    expect(merged.massBetween(101 / BUCKETS_PER_E, 102 / BUCKETS_PER_E)).toBe(3);
  });
});

describe('report ranges', () => {
  const minute = 60_000;
  const t = Date.UTC(2026, 0, 1, 12, 0, 0);

  it('widens to whole minutes', () => {
    const window = lastWholeMinutes(t + 12_345, 15 * minute);
    expect(window).toEqual({ startMs: t - 15 * minute, endMs: t + minute - 1 });
  });

  it('keeps a boundary as the start', () => {
    const window = lastWholeMinutes(t, 15 * minute);
    expect(window).toEqual({ startMs: t - 15 * minute, endMs: t + minute - 1 });
  });

  it('keeps a short window exact', () => {
    expect(lastWholeMinutes(t + 12_345, 5 * minute)).toEqual({
      startMs: t + 12_345 - 5 * minute,
      endMs: t + 12_345,
    });
  });

  it('ends the baseline before the window', () => {
    const window = lastWholeMinutes(t, 15 * minute);
    expect(defaultBaseline(window, 60 * minute)).toEqual({
      startMs: window.startMs - 60 * minute,
      endMs: window.startMs - 1,
    });
  });
});
