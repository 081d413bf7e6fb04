import type { Storage } from '../lib/storage/clickhouse';
import { RANGE_CONDITION, rangeParams, type TimeRange } from '../lib/storage/span-reader';

/** Calls from one service to another node, over a time range. */
export interface DependencyEdge {
  caller: string;
  callee: string;
  /** True when the callee sent no spans and is named from the caller's peer attributes. */
  virtualCallee: boolean;
  calls: number;
  errors: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
}

/** Name of the callee node when a client span has no peer attributes and no server span. */
export const UNKNOWN_CALLEE = 'unknown';

/**
 * Joins each CLIENT or PRODUCER span to the SERVER or CONSUMER span it caused: the
 * server span's parent is the client span, or, in Zipkin's shared-span form, both have
 * the same span id. A client span with no such match calls a virtual node named by
 * `remote_service`. Server spans are looked up one minute past the range, so that a call
 * near its end still finds its callee.
 */
export function edgeCallsQuery(db: string): string {
  return `WITH
calls AS (
  SELECT trace_id, span_id, service_name AS caller, remote_service, is_error, duration_ns, start_time
  FROM ${db}.spans
  WHERE kind IN ('CLIENT', 'PRODUCER') AND ${RANGE_CONDITION}
  LIMIT 1 BY trace_id, span_id, kind
),
callees AS (
  SELECT trace_id, arrayJoin([parent_span_id, span_id]) AS caller_span_id, any(service_name) AS callee
  FROM ${db}.spans
  WHERE kind IN ('SERVER', 'CONSUMER')
    AND start_time >= fromUnixTimestamp64Milli({rangeStartMs:Int64})
    AND start_time <= fromUnixTimestamp64Milli({rangeEndMs:Int64} + 60000)
  GROUP BY trace_id, caller_span_id
)
SELECT
  calls.trace_id AS trace_id,
  calls.span_id AS span_id,
  calls.caller AS caller,
  if(callees.callee != '', callees.callee, if(calls.remote_service != '', calls.remote_service, '${UNKNOWN_CALLEE}')) AS callee,
  callees.callee = '' AS virtual_callee,
  calls.is_error AS is_error,
  calls.duration_ns AS duration_ns,
  calls.start_time AS start_time
FROM calls
LEFT JOIN callees ON callees.trace_id = calls.trace_id AND callees.caller_span_id = calls.span_id
SETTINGS join_use_nulls = 0`;
}

export async function readDependencies(
  storage: Storage,
  range: TimeRange,
): Promise<DependencyEdge[]> {
  const result = await storage.client.query({
    query: `SELECT
  caller, callee, any(virtual_callee) AS virtual_callee,
  count() AS calls, countIf(is_error) AS errors,
  quantiles(0.5, 0.95, 0.99)(duration_ns) AS latency
FROM (${edgeCallsQuery(storage.database)})
GROUP BY caller, callee
ORDER BY caller, callee`,
    query_params: rangeParams(range),
    format: 'JSONEachRow',
  });
  const rows = await result.json<{
    caller: string;
    callee: string;
    virtual_callee: boolean | number;
    calls: string;
    errors: string;
    latency: number[];
  }>();
  return rows.map((row) => ({
    caller: row.caller,
    callee: row.callee,
    virtualCallee: Boolean(row.virtual_callee),
    calls: Number(row.calls),
    errors: Number(row.errors),
    p50Ms: nsToMs(row.latency[0]),
    p95Ms: nsToMs(row.latency[1]),
    p99Ms: nsToMs(row.latency[2]),
  }));
}

function nsToMs(ns: number | undefined): number {
  return Math.round(Number(ns ?? 0) / 1e3) / 1e3;
}

/** Calls, errors and latency of one edge in one minute. */
export interface EdgeMinute {
  caller: string;
  callee: string;
  /** Start of the minute, RFC 3339. */
  minute: string;
  calls: number;
  errors: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
}

/** Reads each edge's calls, errors and latency percentiles per minute over a range. */
export async function readDependencyMinutes(
  storage: Storage,
  range: TimeRange,
): Promise<EdgeMinute[]> {
  const result = await storage.client.query({
    query: `SELECT caller, callee, toStartOfMinute(start_time) AS minute,
  count() AS calls, countIf(is_error) AS errors,
  quantiles(0.5, 0.95, 0.99)(duration_ns) AS latency
FROM (${edgeCallsQuery(storage.database)})
GROUP BY caller, callee, minute
ORDER BY caller, callee, minute`,
    query_params: rangeParams(range),
    format: 'JSONEachRow',
  });
  const rows = await result.json<{
    caller: string;
    callee: string;
    minute: string;
    calls: string;
    errors: string;
    latency: number[];
  }>();
  return rows.map((row) => ({
    caller: row.caller,
    callee: row.callee,
    minute: new Date(`${row.minute.replace(' ', 'T')}Z`).toISOString(),
    calls: Number(row.calls),
    errors: Number(row.errors),
    p50Ms: nsToMs(row.latency[0]),
    p95Ms: nsToMs(row.latency[1]),
    p99Ms: nsToMs(row.latency[2]),
  }));
}
