import type { Storage } from './clickhouse';
import { RANGE_CONDITION, rangeParams, type TimeRange } from './span-reader';

/** Name of the callee node when a client span has no peer attributes and no server span. */
export const UNKNOWN_CALLEE = 'unknown';

/**
 * Milliseconds after the end of a minute before its edges are resolved and stored. A
 * server span that arrives later than this is not in that minute's stored edges.
 */
export const DEPENDENCY_LATENESS_MS = 120_000;

const MINUTE_MS = 60_000;

/**
 * Selects one row a call: each CLIENT or PRODUCER span whose start matches
 * `callCondition`, joined to the SERVER or CONSUMER span it caused. The server span's
 * parent is the client span, or, in Zipkin's shared-span form, both have the same span
 * id. A client span with no such match calls a virtual node named by `remote_service`.
 * Server spans are looked up from the `calleeWindow` start parameter to one minute past its
 * end parameter (ms since the epoch),
 * so that a call near the end still finds its callee.
 */
export function edgeCallsSql(
  db: string,
  callCondition: string,
  calleeWindow = { start: 'calleeStartMs', end: 'calleeEndMs' },
): string {
  return `WITH
calls AS (
  SELECT trace_id, span_id, service_name AS caller, remote_service, is_error, duration_ns, start_time
  FROM ${db}.spans
  WHERE kind IN ('CLIENT', 'PRODUCER') AND (${callCondition})
  LIMIT 1 BY trace_id, span_id, kind
),
callees AS (
  SELECT trace_id, arrayJoin([parent_span_id, span_id]) AS caller_span_id, any(service_name) AS callee
  FROM ${db}.spans
  WHERE kind IN ('SERVER', 'CONSUMER')
    AND start_time >= fromUnixTimestamp64Milli({${calleeWindow.start}:Int64})
    AND start_time <= fromUnixTimestamp64Milli({${calleeWindow.end}:Int64} + 60000)
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

/** Minutes `[first, end)` in ms since the epoch whose edges come from the rollup. */
interface MinuteSpan {
  firstMs: number;
  endMs: number;
}

/**
 * Returns the whole minutes inside `range` that are closed: they ended at least
 * `DEPENDENCY_LATENESS_MS` before `nowMs`.
 */
export function closedMinutes(range: TimeRange, nowMs: number): MinuteSpan {
  const firstMs = Math.ceil(range.startMs / MINUTE_MS) * MINUTE_MS;
  const lastClosedEndMs = Math.floor((nowMs - DEPENDENCY_LATENESS_MS) / MINUTE_MS) * MINUTE_MS;
  const rangeEndMs = Math.floor((range.endMs + 1) / MINUTE_MS) * MINUTE_MS;
  const endMs = Math.max(firstMs, Math.min(lastClosedEndMs, rangeEndMs));
  return { firstMs, endMs };
}

async function resolvedMinutes(storage: Storage, minutes: MinuteSpan): Promise<Set<number>> {
  const result = await storage.client.query({
    query: `SELECT DISTINCT toUnixTimestamp(minute) AS minute
FROM ${storage.database}.dependency_resolved_minutes
WHERE minute >= toDateTime({first:UInt32}) AND minute < toDateTime({end:UInt32})`,
    query_params: { first: minutes.firstMs / 1000, end: minutes.endMs / 1000 },
    format: 'JSONEachRow',
  });
  const rows = await result.json<{ minute: number | string }>();
  return new Set(rows.map((row) => Number(row.minute) * 1000));
}

/**
 * Stores the edges of one closed minute in `dependency_minutes`, then marks it resolved.
 * The deduplication token makes a second resolution of the same minute, by this or
 * another analyzer, store nothing.
 */
async function resolveMinute(storage: Storage, minuteMs: number): Promise<void> {
  const db = storage.database;
  const callCondition =
    'start_time >= fromUnixTimestamp64Milli({calleeStartMs:Int64}) AND start_time < fromUnixTimestamp64Milli({calleeEndMs:Int64})';
  await storage.client.command({
    query: `INSERT INTO ${db}.dependency_minutes
SELECT toStartOfMinute(start_time) AS minute, caller, callee, virtual_callee,
  count() AS calls, countIf(is_error) AS errors,
  quantilesTDigestState(0.5, 0.95, 0.99)(duration_ns) AS latency
FROM (${edgeCallsSql(db, callCondition)})
GROUP BY minute, caller, callee, virtual_callee`,
    query_params: { calleeStartMs: minuteMs, calleeEndMs: minuteMs + MINUTE_MS },
    clickhouse_settings: {
      insert_deduplicate: 1,
      insert_deduplication_token: `dependency-minute-${minuteMs / 1000}`,
    },
  });
  await storage.client.insert({
    table: `${db}.dependency_resolved_minutes`,
    values: [{ minute: minuteMs / 1000 }],
    format: 'JSONEachRow',
  });
}

/**
 * Resolves and stores every closed minute of `range` not stored yet, and returns the
 * minutes that readers can take from `dependency_minutes`.
 */
export async function resolveDependencyMinutes(
  storage: Storage,
  range: TimeRange,
  nowMs = Date.now(),
): Promise<MinuteSpan> {
  const minutes = closedMinutes(range, nowMs);
  if (minutes.endMs <= minutes.firstMs) return minutes;
  const done = await resolvedMinutes(storage, minutes);
  for (let minuteMs = minutes.firstMs; minuteMs < minutes.endMs; minuteMs += MINUTE_MS) {
    if (!done.has(minuteMs)) await resolveMinute(storage, minuteMs);
  }
  return minutes;
}

/** Per-edge figures over a range; latency is [p50, p95, p99] in nanoseconds. */
export interface EdgeFigures {
  caller: string;
  callee: string;
  virtual_callee: boolean | number;
  calls: string;
  errors: string;
  latency: number[];
}

/**
 * Reads the edges of `range`: closed minutes from the rollup, the open or partial
 * minutes at either end from spans, merged into one t-digest an edge.
 */
export async function readEdgeFigures(
  storage: Storage,
  range: TimeRange,
  nowMs = Date.now(),
): Promise<EdgeFigures[]> {
  const minutes = await resolveDependencyMinutes(storage, range, nowMs);
  const db = storage.database;
  // Spans of the range outside the minutes the rollup covers.
  const liveCondition = `${RANGE_CONDITION}
    AND NOT (start_time >= fromUnixTimestamp64Milli({firstMs:Int64}) AND start_time < fromUnixTimestamp64Milli({endMs:Int64}))`;
  const result = await storage.client.query({
    query: `SELECT caller, callee, max(virtual_callee) AS virtual_callee,
  sum(calls) AS calls, sum(errors) AS errors,
  quantilesTDigestMerge(0.5, 0.95, 0.99)(latency) AS latency
FROM (
  SELECT caller, callee, virtual_callee, calls, errors, latency
  FROM ${db}.dependency_minutes
  WHERE minute >= toDateTime(intDiv({firstMs:Int64}, 1000)) AND minute < toDateTime(intDiv({endMs:Int64}, 1000))
  UNION ALL
  SELECT caller, callee, virtual_callee, count() AS calls, countIf(is_error) AS errors,
    quantilesTDigestState(0.5, 0.95, 0.99)(duration_ns) AS latency
  FROM (${edgeCallsSql(db, liveCondition, { start: 'rangeStartMs', end: 'rangeEndMs' })})
  GROUP BY caller, callee, virtual_callee
)
GROUP BY caller, callee
ORDER BY caller, callee`,
    query_params: {
      ...rangeParams(range),
      firstMs: minutes.firstMs,
      endMs: minutes.endMs,
    },
    format: 'JSONEachRow',
  });
  return result.json<EdgeFigures>();
}
