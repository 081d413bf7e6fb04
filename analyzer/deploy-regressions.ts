import type { Storage } from '../lib/storage/clickhouse';
import { RANGE_CONDITION, rangeParams, type TimeRange } from '../lib/storage/span-reader';
import {
  readRangeGroups,
  type LatencyGroup,
  type RangeGroups,
} from '../lib/storage/latency-minutes';
import { formatDurationNs } from '../lib/time';
import type { DraftFinding } from './draft-finding';
import { mergeGroups } from './histogram';
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

/** Returns the key of a service version. */
function versionKey(row: { service: string; version: string }): string {
  return `${row.service}\x1f${row.version}`;
}

/** Returns true for the spans that count as a version's requests: server and consumer spans. */
function isEntry(group: LatencyGroup): boolean {
  return group.kind === 'SERVER' || group.kind === 'CONSUMER';
}

/**
 * Reads the versions of the given services over a range: entry spans, latency and first
 * minute from the per-minute histograms, and the errors that start in each version from
 * the error spans.
 */
async function readVersionStats(
  storage: Storage,
  range: TimeRange,
  groups: LatencyGroup[],
  services: string[],
): Promise<VersionStats[]> {
  const errors = await readOwnErrors(storage, range, services);
  const ofServices = groups.filter((group) => services.includes(group.service));
  const entries = mergeGroups(ofServices, (group) =>
    isEntry(group) ? versionKey(group) : undefined,
  );
  return [...mergeGroups(ofServices, versionKey)].map(([key, { first }]) => {
    const rows = ofServices.filter((group) => versionKey(group) === key);
    const entry = entries.get(key);
    const own = errors.get(key);
    return {
      service: first.service,
      version: first.version,
      environment: rows.find((row) => row.environment)?.environment ?? '',
      spans: entry?.spans ?? 0,
      ownErrors: own?.count ?? 0,
      p50Ns: entry?.histogram.quantileNs(0.5) ?? 0,
      p95Ns: entry?.histogram.quantileNs(0.95) ?? 0,
      firstSeenMs: Math.min(...rows.map((row) => row.firstMs)),
      examples: own?.examples ?? [],
    };
  });
}

/**
 * Counts, per version of the given services, the error spans with no error span below
 * them, with up to five example traces. Only error spans are read.
 */
async function readOwnErrors(
  storage: Storage,
  range: TimeRange,
  services: string[],
): Promise<Map<string, { count: number; examples: string[] }>> {
  const db = storage.database;
  const result = await storage.client.query({
    // The error spans of each failing trace, gathered once: a span's error is its own when
    // no error span of its trace names it as parent.
    query: `SELECT error.3 AS service, error.4 AS version, count() AS own_errors,
  arraySlice(groupUniqArray(leftPad(lower(hex(trace_id)), 32, '0')), 1, 5) AS examples
FROM (
  SELECT trace_id, groupArray((span_id, parent_span_id, service_name, service_version)) AS errors
  FROM ${db}.spans
  WHERE is_error AND ${RANGE_CONDITION}
  GROUP BY trace_id
)
ARRAY JOIN errors AS error
WHERE error.3 IN {services:Array(String)} AND NOT has(arrayMap(other -> other.2, errors), error.1)
GROUP BY service, version`,
    query_params: { ...rangeParams(range), services },
    format: 'JSONEachRow',
  });
  const rows = await result.json<{
    service: string;
    version: string;
    own_errors: string;
    examples: string[];
  }>();
  return new Map(
    rows.map((row) => [versionKey(row), { count: Number(row.own_errors), examples: row.examples }]),
  );
}

/**
 * Reads the first span of a version from the minute the histograms give, so that the
 * finding gives the time the version appeared to the millisecond.
 */
async function readFirstSeen(storage: Storage, stats: VersionStats): Promise<number> {
  const result = await storage.client.query({
    query: `SELECT toUnixTimestamp64Milli(min(start_time)) AS first_ms
FROM ${storage.database}.spans
WHERE service_name = {service:String} AND service_version = {version:String}
  AND start_time >= fromUnixTimestamp64Milli({fromMs:Int64})
  AND start_time < fromUnixTimestamp64Milli({fromMs:Int64} + 60000)`,
    query_params: { service: stats.service, version: stats.version, fromMs: stats.firstSeenMs },
    format: 'JSONEachRow',
  });
  const [row] = await result.json<{ first_ms: string }>();
  const firstMs = Number(row?.first_ms ?? 0);
  return firstMs > 0 ? firstMs : stats.firstSeenMs;
}

/**
 * Finds versions that appeared in the window (no span in the baseline) and compares each with
 * the previous version of its service: over the window when both ran side by side, else with
 * the previous version's baseline. Errors counted are those that start in the version, so a
 * version that only passes a downstream failure on is not blamed. New versions are found in
 * the per-minute figures of `latency_minutes`; only the services with one are read from
 * their spans.
 */
export async function findDeployRegressions(
  storage: Storage,
  request: ReportRequest,
  groups?: RangeGroups,
): Promise<DraftFinding[]> {
  const { window: during, baseline: before } = groups ?? (await readRangeGroups(storage, request));
  const services = servicesWithNewVersions(during, before);
  if (services.length === 0) return [];
  const window = await readVersionStats(storage, request.window, during, services);
  const baseline = await readVersionStats(storage, request.baseline, before, services);
  const findings: DraftFinding[] = [];
  for (const candidate of window) {
    if (isOld(candidate, baseline) || candidate.spans < DEPLOY_LIMITS.minSpans) continue;
    const previous = previousVersion(candidate, window, baseline);
    if (!previous) continue;
    const regressed = compareVersions(candidate, previous.stats, previous.period);
    if (!regressed) continue;
    const firstSeenMs = await readFirstSeen(storage, candidate);
    const finding = compareVersions({ ...candidate, firstSeenMs }, previous.stats, previous.period);
    if (finding) findings.push(finding);
  }
  return findings;
}

function isOld(candidate: { service: string; version: string }, baseline: VersionStats[]) {
  return baseline.some(
    (row) => row.service === candidate.service && row.version === candidate.version,
  );
}

/**
 * Services with a version that has enough entry spans in the window, no span in the
 * baseline, and another version to compare it with.
 */
function servicesWithNewVersions(during: LatencyGroup[], before: LatencyGroup[]): string[] {
  const seenBefore = new Set(before.map(versionKey));
  const entrySpans = mergeGroups(during, (group) =>
    isEntry(group) ? versionKey(group) : undefined,
  );
  const versionsOf = (service: string) =>
    new Set(
      [...during, ...before]
        .filter((group) => group.service === service)
        .map((group) => group.version),
    );
  const services = new Set<string>();
  for (const [key, { first, spans }] of entrySpans) {
    if (seenBefore.has(key) || spans < DEPLOY_LIMITS.minSpans) continue;
    if (versionsOf(first.service).size > 1) services.add(first.service);
  }
  return [...services].sort();
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
