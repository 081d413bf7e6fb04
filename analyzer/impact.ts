import type { Storage } from '../lib/storage/clickhouse';
import { rangeParams, type TimeRange } from '../lib/storage/span-reader';
import {
  readRangeGroups,
  type LatencyGroup,
  type RangeGroups,
} from '../lib/storage/latency-minutes';
import { mergeGroups } from './histogram';
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

/** Baseline requests an entry point needs before its slow requests are counted. */
const MIN_BASELINE_REQUESTS = 20;

/**
 * Reads entry points (root spans) of a range: requests and failures per service and operation,
 * and how many were slower than 1.5 times the baseline's p99 of the same entry point (and
 * slower than 1 ms). The figures come from the per-minute histograms of `latency_minutes`.
 */
export async function readEntryPoints(
  storage: Storage,
  window: TimeRange,
  baseline: TimeRange,
  groups?: RangeGroups,
): Promise<EntryPointStats[]> {
  const { window: during, baseline: before } =
    groups ?? (await readRangeGroups(storage, { window, baseline }));
  const rootKey = (group: LatencyGroup) =>
    group.isRoot ? `${group.service}\x1f${group.name}` : undefined;
  const baselines = mergeGroups(before, rootKey);
  const entries = [...mergeGroups(during, rootKey)].map(([key, entry]) => {
    const base = baselines.get(key);
    const hasBaseline = base !== undefined && base.spans >= MIN_BASELINE_REQUESTS;
    const slowNs = hasBaseline ? Math.max(base.histogram.quantileNs(0.99) * 1.5, 1e6) : 0;
    return {
      service: entry.first.service,
      operation: entry.first.name,
      requests: entry.spans,
      failed: entry.errors,
      slow: hasBaseline ? Math.round(entry.histogram.countAboveNs(slowNs)) : 0,
      errorRate: round(entry.errors / Math.max(entry.spans, 1)),
      baselineErrorRate: base && base.spans > 0 ? round(base.errors / base.spans) : null,
      p95Ms: Math.round(entry.histogram.quantileNs(0.95) / 1e3) / 1e3,
    };
  });
  return entries.sort(
    (a, b) =>
      b.requests - a.requests ||
      a.service.localeCompare(b.service) ||
      a.operation.localeCompare(b.operation),
  );
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
  // One pass over the affected traces: the roots per entry point, and in the totals row the
  // distinct users over every span of those traces.
  const result = await storage.client.query({
    query: `SELECT service_name AS service, name AS operation,
  countIf(parent_span_id = 0) AS requests, countIf(parent_span_id = 0 AND is_error) AS failed,
  uniqExactIf(${userExpression(userAttribute)} AS user, user != '') AS users
FROM ${db}.spans
WHERE ${WIDE_RANGE} AND trace_id IN (${affected})
GROUP BY service_name, name
WITH TOTALS`,
    query_params: { ...rangeParams(window), ...selector.params, userKey: userAttribute },
    format: 'JSON',
  });
  type Row = {
    service: string;
    operation: string;
    requests: string;
    failed: string;
    users: string;
  };
  const { data, totals } = await result.json<Row>();
  const roots = data
    .filter((row) => Number(row.requests) > 0)
    .sort((a, b) => Number(b.requests) - Number(a.requests));
  const impact: FindingImpact = {
    affectedRequests: Number(totals?.requests ?? 0),
    failedRequests: Number(totals?.failed ?? 0),
    requestShare: round(Number(totals?.requests ?? 0) / Math.max(totalRequests, 1)),
    entryPoints: roots.slice(0, 5).map((row) => ({
      service: row.service,
      operation: row.operation,
      requests: Number(row.requests),
      failed: Number(row.failed),
    })),
  };
  if (userAttribute) {
    impact.userAttribute = userAttribute;
    impact.distinctUsers = Number(totals?.users ?? 0);
  }
  return impact;
}

/** The user attribute of a span: the promoted column for `enduser.id`, else a map lookup. */
function userExpression(userAttribute: string): string {
  if (!userAttribute) return "''";
  return userAttribute === 'enduser.id' ? 'enduser_id' : 'attributes_string[{userKey:String}]';
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
