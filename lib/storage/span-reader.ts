import type { SpanRecord } from '../model/span';
import type { Storage } from './clickhouse';
import { SPAN_SELECT, fromSelectedRow, hexToDecimal, spanSelect, type SpanRow } from './span-rows';

/** A closed time range in milliseconds since the Unix epoch. */
export interface TimeRange {
  startMs: number;
  endMs: number;
}

/** Bound parameters of a time range for `RANGE_CONDITION`. */
export function rangeParams(range: TimeRange): { rangeStartMs: number; rangeEndMs: number } {
  return { rangeStartMs: Math.trunc(range.startMs), rangeEndMs: Math.trunc(range.endMs) };
}

/** Condition on a span's start time, bound by `rangeParams`. */
export const RANGE_CONDITION =
  'start_time >= fromUnixTimestamp64Milli({rangeStartMs:Int64}) AND start_time <= fromUnixTimestamp64Milli({rangeEndMs:Int64})';

async function selectRows<T>(
  storage: Storage,
  query: string,
  params: Record<string, unknown>,
): Promise<T[]> {
  const result = await storage.client.query({ query, query_params: params, format: 'JSONEachRow' });
  return result.json<T>();
}

/**
 * Builds a WITH clause that names `trace_bounds`: the first start and the last end, from
 * `trace_summaries`, of the traces that `traceCondition` (a condition on `trace_id`)
 * selects. spans is sorted by the ten-minute block of start time before the trace id.
 * A lookup by trace id alone would read one granule in every block of the day, and
 * `TRACE_BOUNDS_CONDITION` limits it to the blocks of the trace. A trace with no summary
 * has no spans either, and its bounds select nothing.
 */
export function traceBoundsWith(db: string, traceCondition: string): string {
  return `WITH (SELECT (min(start_time), max(end_time)) FROM ${db}.trace_summaries
  WHERE ${traceCondition}) AS trace_bounds`;
}

/** Condition on `trace_id` for the hex ids of a `traceIds` parameter given as decimal text. */
export const TRACE_IDS_CONDITION =
  'trace_id IN (SELECT toUInt128(arrayJoin({traceIds:Array(String)})))';

/** Condition on spans' start time that uses `traceBoundsWith`. */
export const TRACE_BOUNDS_CONDITION =
  'start_time >= trace_bounds.1 AND start_time <= trace_bounds.2';

/**
 * Reads every span of one trace, duplicates collapsed. Spans are read from storage each
 * time, so spans of a trace that arrived minutes apart all appear.
 */
export async function readTraceSpans(storage: Storage, traceId: string): Promise<SpanRecord[]> {
  const db = storage.database;
  const byId = 'trace_id = {traceId:UInt128}';
  const rows = await selectRows<SpanRow>(
    storage,
    `${traceBoundsWith(db, byId)}
SELECT ${SPAN_SELECT}
FROM ${db}.spans
WHERE ${byId} AND ${TRACE_BOUNDS_CONDITION}
ORDER BY start_time, span_id
LIMIT 1 BY span_id, kind`,
    { traceId: hexToDecimal(traceId) },
  );
  return rows.map(fromSelectedRow);
}

export interface TraceSearch {
  range: TimeRange;
  service?: string;
  operation?: string;
  minDurationNs?: bigint;
  maxDurationNs?: bigint;
  errorsOnly?: boolean;
  limit: number;
}

export interface TraceSummary {
  traceId: string;
  startTimeUnixNano: string;
  durationNs: string;
  rootService: string;
  rootName: string;
  spanCount: number;
  errorCount: number;
  services: string[];
}

/**
 * Finds traces with at least one span that matches every given condition, newest first,
 * and summarises each from its row in `trace_summaries`, so the spans of the matching
 * traces are not read again.
 */
export async function searchTraces(storage: Storage, search: TraceSearch): Promise<TraceSummary[]> {
  const conditions = [RANGE_CONDITION];
  const params: Record<string, unknown> = { ...rangeParams(search.range), limit: search.limit };
  if (search.service) {
    conditions.push('service_name = {service:String}');
    params.service = search.service;
  }
  if (search.operation) {
    conditions.push('name = {operation:String}');
    params.operation = search.operation;
  }
  if (search.minDurationNs !== undefined) {
    conditions.push('duration_ns >= {minDuration:UInt64}');
    params.minDuration = search.minDurationNs.toString();
  }
  if (search.maxDurationNs !== undefined) {
    conditions.push('duration_ns <= {maxDuration:UInt64}');
    params.maxDuration = search.maxDurationNs.toString();
  }
  if (search.errorsOnly) conditions.push('is_error');

  const db = storage.database;
  const rows = await selectRows<{
    trace_id: string;
    start: string;
    end: string;
    root_service: string;
    root_name: string;
    span_count: string;
    error_count: string;
    services: string[];
  }>(
    storage,
    `WITH matched AS (
  SELECT trace_id, max(start_time) AS last_start
  FROM ${db}.spans
  WHERE ${conditions.join(' AND ')}
  GROUP BY trace_id
  ORDER BY last_start DESC
  LIMIT {limit:UInt32}
)
SELECT
  leftPad(lower(hex(trace_id)), 32, '0') AS trace_id,
  toUnixTimestamp64Nano(min(start_time)) AS start,
  toUnixTimestamp64Nano(max(end_time)) AS end,
  argMinIfMerge(root).1 AS root_service,
  argMinIfMerge(root).2 AS root_name,
  uniqMerge(span_count) AS span_count,
  uniqIfMerge(error_count) AS error_count,
  arraySort(groupUniqArrayArray(services)) AS services
FROM ${db}.trace_summaries
WHERE trace_id IN (SELECT trace_id FROM matched)
GROUP BY trace_id
ORDER BY max(end_time) DESC, trace_id`,
    params,
  );
  return rows.map((row) => ({
    traceId: row.trace_id,
    startTimeUnixNano: String(row.start),
    durationNs: (BigInt(row.end) - BigInt(row.start)).toString(),
    rootService: row.root_service,
    rootName: row.root_name,
    spanCount: Number(row.span_count),
    errorCount: Number(row.error_count),
    services: row.services,
  }));
}

export async function listServices(storage: Storage): Promise<string[]> {
  const rows = await selectRows<{ service_name: string }>(
    storage,
    `SELECT DISTINCT service_name FROM ${storage.database}.spans ORDER BY service_name`,
    {},
  );
  return rows.map((row) => row.service_name);
}

export interface Operation {
  name: string;
  spanKind: string;
}

export async function listOperations(storage: Storage, service: string): Promise<Operation[]> {
  const rows = await selectRows<{ name: string; kind: string }>(
    storage,
    `SELECT DISTINCT name, kind FROM ${storage.database}.spans WHERE service_name = {service:String} ORDER BY name, kind`,
    { service },
  );
  return rows.map((row) => ({ name: row.name, spanKind: row.kind }));
}

/**
 * Reads every span of the given traces in one query, duplicates collapsed, and returns
 * them by trace id in the order of `traceIds`. Traces with no stored span are left out.
 * With `attributes: false` the spans come without their attributes; see `spanSelect`.
 */
export async function readTraces(
  storage: Storage,
  traceIds: string[],
  options: { attributes: boolean } = { attributes: true },
): Promise<Map<string, SpanRecord[]>> {
  const traces = new Map<string, SpanRecord[]>(traceIds.map((id) => [id, []]));
  if (traceIds.length === 0) return traces;
  const result = await storage.client.query({
    query: `${traceBoundsWith(storage.database, TRACE_IDS_CONDITION)}
SELECT ${spanSelect(options)}
FROM ${storage.database}.spans
WHERE ${TRACE_IDS_CONDITION} AND ${TRACE_BOUNDS_CONDITION}
ORDER BY trace_id, start_time, span_id
LIMIT 1 BY trace_id, span_id, kind`,
    query_params: { traceIds: traceIds.map(hexToDecimal) },
    format: 'JSONEachRow',
  });
  for (const row of await result.json<SpanRow>()) {
    traces.get(row.trace_id)?.push(fromSelectedRow(row));
  }
  for (const [id, spans] of traces) if (spans.length === 0) traces.delete(id);
  return traces;
}
