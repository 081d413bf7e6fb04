import type { Storage } from '../lib/storage/clickhouse';
import { RANGE_CONDITION, rangeParams, type TimeRange } from '../lib/storage/span-reader';
import { formatDurationNs } from '../lib/time';
import type { DraftFinding } from './draft-finding';
import type { ReportRequest } from './report-types';
import { twoProportionZ } from './statistics';

/** Thresholds of the deploy-regression test. */
export const DEPLOY_LIMITS = {
  /** Spans a version needs in its period before it is compared. */
  minSpans: 30,
  /** Errors that start in the new version before an error regression is flagged. */
  minErrors: 5,
  /** z of a one-sided test at p = 0.001. */
  minZ: 3.09,
  /** Smallest rise of the error rate worth reporting, as a fraction. */
  minRateIncrease: 0.02,
  /** Ratio of the new version's median and p95 to the previous version's that flags a slowdown. */
  minSlowdown: 1.5,
};

/** Entry spans (server and consumer) of one service version over a range. */
interface VersionStats {
  service: string;
  version: string;
  environment: string;
  spans: number;
  /** Error spans with no error span below them: errors that start in this version. */
  ownErrors: number;
  p50Ns: number;
  p95Ns: number;
  firstSeenMs: number;
  examples: string[];
}

async function readVersionStats(storage: Storage, range: TimeRange): Promise<VersionStats[]> {
  const db = storage.database;
  const result = await storage.client.query({
    query: `WITH error_parents AS (
  SELECT DISTINCT trace_id, parent_span_id FROM ${db}.spans WHERE is_error AND ${RANGE_CONDITION}
)
SELECT service_name AS service, service_version AS version, any(deployment_environment) AS environment,
  countIf(kind IN ('SERVER', 'CONSUMER')) AS spans,
  countIf(is_error AND (trace_id, span_id) NOT IN (SELECT trace_id, parent_span_id FROM error_parents)) AS own_errors,
  quantilesIf(0.5, 0.95)(duration_ns, kind IN ('SERVER', 'CONSUMER')) AS latency,
  toUnixTimestamp64Milli(min(start_time)) AS first_seen,
  arraySlice(groupUniqArrayIf(leftPad(lower(hex(trace_id)), 32, '0'), is_error), 1, 5) AS examples
FROM ${db}.spans
WHERE ${RANGE_CONDITION}
GROUP BY service_name, service_version`,
    query_params: rangeParams(range),
    format: 'JSONEachRow',
  });
  const rows = await result.json<Record<string, string & number & number[] & string[]>>();
  return rows.map((row) => ({
    service: row.service,
    version: row.version,
    environment: row.environment,
    spans: Number(row.spans),
    ownErrors: Number(row.own_errors),
    p50Ns: Number(row.latency[0] ?? 0),
    p95Ns: Number(row.latency[1] ?? 0),
    firstSeenMs: Number(row.first_seen),
    examples: row.examples,
  }));
}

/**
 * Finds versions that appeared in the window (no span in the baseline) and compares each with
 * the previous version of its service: over the window when both ran side by side, else with
 * the previous version's baseline. Errors counted are those that start in the version, so a
 * version that only passes a downstream failure on is not blamed.
 */
export async function findDeployRegressions(
  storage: Storage,
  request: ReportRequest,
): Promise<DraftFinding[]> {
  const [window, baseline] = await Promise.all([
    readVersionStats(storage, request.window),
    readVersionStats(storage, request.baseline),
  ]);
  const findings: DraftFinding[] = [];
  for (const candidate of window) {
    const seenBefore = baseline.some(
      (row) => row.service === candidate.service && row.version === candidate.version,
    );
    if (seenBefore || candidate.spans < DEPLOY_LIMITS.minSpans) continue;
    const previous = previousVersion(candidate, window, baseline);
    if (!previous) continue;
    const finding = compareVersions(candidate, previous.stats, previous.period);
    if (finding) findings.push(finding);
  }
  return findings;
}

function previousVersion(
  candidate: VersionStats,
  window: VersionStats[],
  baseline: VersionStats[],
): { stats: VersionStats; period: 'window' | 'baseline' } | undefined {
  const sameService = (row: VersionStats) =>
    row.service === candidate.service &&
    row.version !== candidate.version &&
    row.spans >= DEPLOY_LIMITS.minSpans;
  const alongside = window.filter(sameService).sort((a, b) => b.spans - a.spans)[0];
  if (alongside) return { stats: alongside, period: 'window' };
  const before = baseline.filter(sameService).sort((a, b) => b.spans - a.spans)[0];
  return before ? { stats: before, period: 'baseline' } : undefined;
}

function compareVersions(
  next: VersionStats,
  previous: VersionStats,
  period: 'window' | 'baseline',
): DraftFinding | undefined {
  const limits = DEPLOY_LIMITS;
  const rate = next.ownErrors / next.spans;
  const previousRate = previous.ownErrors / previous.spans;
  const z = twoProportionZ(next.ownErrors, next.spans, previous.ownErrors, previous.spans);
  const errorRegression =
    next.ownErrors >= limits.minErrors &&
    z >= limits.minZ &&
    rate - previousRate >= limits.minRateIncrease;
  const slowdown = Math.min(
    next.p50Ns / Math.max(previous.p50Ns, 1),
    next.p95Ns / Math.max(previous.p95Ns, 1),
  );
  const latencyRegression = slowdown >= limits.minSlowdown;
  if (!errorRegression && !latencyRegression) return undefined;

  const problems: string[] = [];
  if (errorRegression) {
    problems.push(
      `${percent(rate)} of its requests fail (${next.ownErrors} of ${next.spans}) against ${percent(previousRate)} on ${previous.version || '(no version)'}`,
    );
  }
  if (latencyRegression) {
    problems.push(
      `its p95 is ${formatDurationNs(next.p95Ns)} against ${formatDurationNs(previous.p95Ns)}`,
    );
  }
  const comparedOver = period === 'window' ? 'running side by side' : 'against the baseline';
  return {
    kind: 'deploy_regression',
    culprit: { service: next.service, version: next.version },
    errorRate: errorRegression ? rate : Math.min(1, (slowdown - 1) / 4),
    confidence: 1,
    summary: `${next.service} ${next.version} appeared at ${new Date(next.firstSeenMs).toISOString()} and regressed (${comparedOver}): ${problems.join('; ')}`,
    impactedServices: [],
    evidence: {
      version: next.version,
      previousVersion: previous.version,
      environment: next.environment,
      comparedOver: period,
      spans: next.spans,
      errors: next.ownErrors,
      errorRate: round(rate),
      previousSpans: previous.spans,
      previousErrors: previous.ownErrors,
      previousErrorRate: round(previousRate),
      z: round(z),
      p50Ms: toMs(next.p50Ns),
      previousP50Ms: toMs(previous.p50Ns),
      p95Ms: toMs(next.p95Ns),
      previousP95Ms: toMs(previous.p95Ns),
      firstSeen: new Date(next.firstSeenMs).toISOString(),
    },
    exampleTraceIds: next.examples,
    selector: {
      condition: errorRegression
        ? 'service_name = {sel_service:String} AND service_version = {sel_version:String} AND is_error'
        : "service_name = {sel_service:String} AND service_version = {sel_version:String} AND kind IN ('SERVER', 'CONSUMER') AND duration_ns > {sel_threshold:UInt64}",
      params: {
        sel_service: next.service,
        sel_version: next.version,
        sel_threshold: Math.round(previous.p95Ns),
      },
    },
    suggestedActions: [
      `Roll back ${next.service} from ${next.version} to ${previous.version || 'the previous version'}`,
    ],
  };
}

function percent(fraction: number): string {
  return `${(fraction * 100).toFixed(1)}%`;
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

function toMs(ns: number): number {
  return Math.round(ns / 1e3) / 1e3;
}
