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
 * Measures the user impact of each finding: entry requests whose trace contains a span
 * matching its selector, how many of them failed, which endpoints, and, with
 * `userAttribute` set, how many distinct users or tenants sent them. One pass over the
 * window serves every finding: each span is counted once for each finding whose traces
 * hold it, and a grouping set by finding alone gives the totals.
 */
export async function measureImpacts(
  storage: Storage,
  window: TimeRange,
  selectors: SpanSelector[],
  totalRequests: number,
  userAttribute: string,
): Promise<FindingImpact[]> {
  if (selectors.length === 0) return [];
  const db = storage.database;
  const params: Record<string, unknown> = { ...rangeParams(window), userKey: userAttribute };
  const memberships = selectors.map((selector, index) => {
    for (const [name, value] of Object.entries(selector.params)) {
      params[name.replace(/^sel_/, `sel${index}_`)] = value;
    }
    const condition = selector.condition.replace(/\{sel_/g, `{sel${index}_`);
    return `if(trace_id IN (SELECT DISTINCT trace_id FROM ${db}.spans WHERE ${RANGE} AND (${condition})), ${index}, -1)`;
  });
  const result = await storage.client.query({
    query: `SELECT finding, service_name AS service, name AS operation,
  countIf(parent_span_id = 0) AS requests, countIf(parent_span_id = 0 AND is_error) AS failed,
  uniqExactIf(user, user != '') AS users, grouping(service_name) = 0 AS is_entry_point
FROM (
  SELECT service_name, name, parent_span_id, is_error, ${userExpression(userAttribute)} AS user,
    arrayJoin(arrayFilter(x -> x >= 0, [${memberships.join(', ')}])) AS finding
  FROM ${db}.spans
  WHERE ${WIDE_RANGE}
)
GROUP BY GROUPING SETS ((finding, service_name, name), (finding))`,
    query_params: params,
    format: 'JSONEachRow',
  });
  const rows = await result.json<ImpactRow>();
  return selectors.map((_selector, index) =>
    toImpact(
      rows.filter((row) => Number(row.finding) === index),
      totalRequests,
      userAttribute,
    ),
  );
}

interface ImpactRow {
  finding: string;
  service: string;
  operation: string;
  requests: string;
  failed: string;
  users: string;
  is_entry_point: boolean | number;
}

function toImpact(rows: ImpactRow[], totalRequests: number, userAttribute: string): FindingImpact {
  const totals = rows.find((row) => !row.is_entry_point);
  const roots = rows
    .filter((row) => row.is_entry_point && Number(row.requests) > 0)
    .sort((a, b) => Number(b.requests) - Number(a.requests));
  const requests = Number(totals?.requests ?? 0);
  const impact: FindingImpact = {
    affectedRequests: requests,
    failedRequests: Number(totals?.failed ?? 0),
    requestShare: round(requests / Math.max(totalRequests, 1)),
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

/** Returns the SQL of a span's user: the promoted column for `enduser.id`, else a map lookup. */
function userExpression(userAttribute: string): string {
  if (!userAttribute) return "''";
  return userAttribute === 'enduser.id' ? 'enduser_id' : 'attributes_string[{userKey:String}]';
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
