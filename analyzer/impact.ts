import type { Storage } from '../lib/storage/clickhouse';
import { rangeParams, type TimeRange } from '../lib/storage/span-reader';
import type { EntryPointStats, FindingImpact } from './report-types';

/**
 * A condition on spans, with its bound parameters, that marks the traces a finding explains:
 * for example error spans of one service. Parameter names must start with `sel_`.
 */
export interface SpanSelector {
  condition: string;
  params: Record<string, unknown>;
}

/** Root spans may start up to a minute before the window that contains the spans they caused. */
const WIDE_RANGE =
  'start_time >= fromUnixTimestamp64Milli({rangeStartMs:Int64} - 60000) AND start_time <= fromUnixTimestamp64Milli({rangeEndMs:Int64})';
const RANGE =
  'start_time >= fromUnixTimestamp64Milli({rangeStartMs:Int64}) AND start_time <= fromUnixTimestamp64Milli({rangeEndMs:Int64})';

/**
 * Reads entry points (root spans) of a range: requests and failures per service and operation,
 * and how many were slow against the baseline's p99 of the same entry point.
 */
export async function readEntryPoints(
  storage: Storage,
  window: TimeRange,
  baseline: TimeRange,
): Promise<EntryPointStats[]> {
  const db = storage.database;
  const result = await storage.client.query({
    query: `WITH base AS (
  SELECT service_name, name, quantile(0.99)(duration_ns) AS base_p99, count() AS base_requests, countIf(is_error) AS base_failed
  FROM ${db}.spans
  WHERE parent_span_id = 0 AND start_time >= fromUnixTimestamp64Milli({baseStartMs:Int64}) AND start_time <= fromUnixTimestamp64Milli({baseEndMs:Int64})
  GROUP BY service_name, name
)
SELECT w.service_name AS service, w.name AS operation, count() AS requests, countIf(w.is_error) AS failed,
  countIf(base.base_requests >= 20 AND w.duration_ns > greatest(base.base_p99 * 1.5, 1000000)) AS slow,
  any(base.base_requests) AS baseline_requests, any(base.base_failed) AS baseline_failed,
  quantile(0.95)(w.duration_ns) AS p95
FROM ${db}.spans AS w
LEFT JOIN base ON base.service_name = w.service_name AND base.name = w.name
WHERE w.parent_span_id = 0 AND ${RANGE.replaceAll('start_time', 'w.start_time')}
GROUP BY w.service_name, w.name
ORDER BY requests DESC
SETTINGS join_use_nulls = 0`,
    query_params: {
      ...rangeParams(window),
      baseStartMs: Math.trunc(baseline.startMs),
      baseEndMs: Math.trunc(baseline.endMs),
    },
    format: 'JSONEachRow',
  });
  const rows = await result.json<Record<string, string>>();
  return rows.map((row) => ({
    service: row.service,
    operation: row.operation,
    requests: Number(row.requests),
    failed: Number(row.failed),
    slow: Number(row.slow),
    errorRate: round(Number(row.failed) / Math.max(Number(row.requests), 1)),
    baselineErrorRate:
      Number(row.baseline_requests) > 0
        ? round(Number(row.baseline_failed) / Number(row.baseline_requests))
        : null,
    p95Ms: Math.round(Number(row.p95) / 1e3) / 1e3,
  }));
}

/**
 * Measures the user impact of a finding: entry requests whose trace contains a span matching
 * `selector`, how many of them failed, which endpoints, and, with `userAttribute` set, how
 * many distinct users or tenants sent them.
 */
export async function measureImpact(
  storage: Storage,
  window: TimeRange,
  selector: SpanSelector,
  totalRequests: number,
  userAttribute: string,
): Promise<FindingImpact> {
  const db = storage.database;
  const affected = `SELECT DISTINCT trace_id FROM ${db}.spans WHERE ${RANGE} AND (${selector.condition})`;
  const params = { ...rangeParams(window), ...selector.params, userKey: userAttribute };
  const [roots, users] = await Promise.all([
    queryRows(
      storage,
      `SELECT service_name AS service, name AS operation, count() AS requests, countIf(is_error) AS failed
FROM ${db}.spans
WHERE parent_span_id = 0 AND ${WIDE_RANGE} AND trace_id IN (${affected})
GROUP BY service_name, name
ORDER BY requests DESC`,
      params,
    ),
    userAttribute
      ? queryRows(
          storage,
          `SELECT uniqExact(attributes_string[{userKey:String}]) AS users
FROM ${db}.spans
WHERE ${WIDE_RANGE} AND mapContains(attributes_string, {userKey:String}) AND trace_id IN (${affected})`,
          params,
        )
      : Promise.resolve([]),
  ]);
  const requests = roots.reduce((sum, row) => sum + Number(row.requests), 0);
  const impact: FindingImpact = {
    affectedRequests: requests,
    failedRequests: roots.reduce((sum, row) => sum + Number(row.failed), 0),
    requestShare: round(requests / Math.max(totalRequests, 1)),
    entryPoints: roots.slice(0, 5).map((row) => ({
      service: String(row.service),
      operation: String(row.operation),
      requests: Number(row.requests),
      failed: Number(row.failed),
    })),
  };
  if (userAttribute) {
    impact.userAttribute = userAttribute;
    impact.distinctUsers = Number(users[0]?.users ?? 0);
  }
  return impact;
}

async function queryRows(
  storage: Storage,
  query: string,
  params: Record<string, unknown>,
): Promise<Record<string, string | number>[]> {
  const result = await storage.client.query({ query, query_params: params, format: 'JSONEachRow' });
  return result.json<Record<string, string | number>>();
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
