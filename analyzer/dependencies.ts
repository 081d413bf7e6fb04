import type { Storage } from '../lib/storage/clickhouse';
import {
  edgeCallsSql,
  edgeSourceFor,
  readEdgeFigures,
  UNKNOWN_CALLEE,
  type EdgeSource,
} from '../lib/storage/dependency-minutes';
import type { TimeRange } from '../lib/storage/span-reader';

export { UNKNOWN_CALLEE };

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

/**
 * Selects one row a call in the range bound by `edgeRangeParams`, with its caller and
 * callee, from `source`; see `edgeCallsSql`.
 */
export function edgeCallsQuery(db: string, source: EdgeSource): string {
  return edgeCallsSql(db, { start: 'edgeStartMs', end: 'edgeEndMs' }, source);
}

/** Parameters of `edgeCallsQuery` for a range whose end is inclusive. */
export function edgeRangeParams(range: TimeRange): { edgeStartMs: number; edgeEndMs: number } {
  return { edgeStartMs: Math.trunc(range.startMs), edgeEndMs: Math.trunc(range.endMs) + 1 };
}

/**
 * Reads the service-to-service edges of a range. Closed minutes come from the
 * per-minute rollup and the rest from spans; percentiles are t-digest estimates.
 */
export async function readDependencies(
  storage: Storage,
  range: TimeRange,
): Promise<DependencyEdge[]> {
  const rows = await readEdgeFigures(storage, range);
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
FROM (${edgeCallsQuery(storage.database, edgeSourceFor(range.startMs))})
GROUP BY caller, callee, minute
ORDER BY caller, callee, minute`,
    query_params: edgeRangeParams(range),
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
