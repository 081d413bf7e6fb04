import type { Storage } from '../lib/storage/clickhouse';
import { hexToDecimal } from '../lib/storage/span-rows';
import { TRACE_BOUNDS_CONDITION, traceBoundsWith } from '../lib/storage/span-reader';

/** Per-operation totals of a trace too large to return span by span. */
export interface TraceSummaryView {
  traceId: string;
  summary: true;
  spanCount: number;
  errorCount: number;
  services: string[];
  startTimeUnixNano: string;
  durationMs: number;
  /** Spans whose parent is not stored. */
  missingParentCount: number;
  root?: { spanId: string; service: string; operation: string; durationMs: number };
  operations: {
    service: string;
    operation: string;
    kind: string;
    spans: number;
    errors: number;
    totalDurationMs: number;
    maxDurationMs: number;
  }[];
  /** The slowest spans and the error spans, each list bounded by `limit`. */
  slowestSpans: SummarySpan[];
  errorSpans: SummarySpan[];
}

interface SummarySpan {
  spanId: string;
  parentSpanId: string;
  service: string;
  operation: string;
  durationMs: number;
  statusMessage: string;
}

const BY_ID = 'trace_id = {traceId:UInt128}';

/** Counts the distinct spans of a trace without reading them. */
export async function countTraceSpans(storage: Storage, traceId: string): Promise<number> {
  const result = await storage.client.query({
    query: `${traceBoundsWith(storage.database, BY_ID)}
SELECT uniqExact(span_id, kind) AS spans FROM ${storage.database}.spans
WHERE ${BY_ID} AND ${TRACE_BOUNDS_CONDITION}`,
    query_params: { traceId: hexToDecimal(traceId) },
    format: 'JSONEachRow',
  });
  const [row] = await result.json<{ spans: string }>();
  return Number(row?.spans ?? 0);
}

/**
 * Summarises a trace in ClickHouse, so that memory in the analyzer stays bounded by `limit`
 * whatever the trace's size: totals, per-operation counts, and the slowest and failed spans.
 */
export async function readTraceSummary(
  storage: Storage,
  traceId: string,
  limit: number,
): Promise<TraceSummaryView> {
  const db = storage.database;
  const params = { traceId: hexToDecimal(traceId), limit };
  // end_time is an ALIAS column, which `*` leaves out.
  const spans = `(${traceBoundsWith(db, BY_ID)}
  SELECT *, end_time FROM ${db}.spans WHERE ${BY_ID} AND ${TRACE_BOUNDS_CONDITION}
  LIMIT 1 BY span_id, kind)`;
  const [totals, operations, slowest, errors] = await Promise.all([
    queryRows<TotalsRow>(storage, totalsQuery(spans), params),
    queryRows<OperationRow>(storage, operationsQuery(spans), params),
    queryRows<SpanRowLite>(storage, spansQuery(spans, 'true', 'duration_ns DESC'), params),
    queryRows<SpanRowLite>(storage, spansQuery(spans, 'is_error', 'start_time'), params),
  ]);
  const total = totals[0];
  const rootRow = total && total.root_span_id ? total : undefined;
  return {
    traceId,
    summary: true,
    spanCount: Number(total?.span_count ?? 0),
    errorCount: Number(total?.error_count ?? 0),
    services: total?.services ?? [],
    startTimeUnixNano: String(total?.start ?? 0),
    durationMs: (Number(total?.end ?? 0) - Number(total?.start ?? 0)) / 1e6,
    missingParentCount: Number(total?.missing_parents ?? 0),
    root: rootRow && {
      spanId: rootRow.root_span_id,
      service: rootRow.root_service,
      operation: rootRow.root_name,
      durationMs: Number(rootRow.root_duration) / 1e6,
    },
    operations: operations.map((row) => ({
      service: row.service_name,
      operation: row.name,
      kind: row.kind,
      spans: Number(row.spans),
      errors: Number(row.errors),
      totalDurationMs: Number(row.total_ns) / 1e6,
      maxDurationMs: Number(row.max_ns) / 1e6,
    })),
    slowestSpans: slowest.map(toSummarySpan),
    errorSpans: errors.map(toSummarySpan),
  };
}

interface TotalsRow {
  span_count: string;
  error_count: string;
  services: string[];
  start: string;
  end: string;
  missing_parents: string;
  root_span_id: string;
  root_service: string;
  root_name: string;
  root_duration: string;
}

interface OperationRow {
  service_name: string;
  name: string;
  kind: string;
  spans: string;
  errors: string;
  total_ns: string;
  max_ns: string;
}

interface SpanRowLite {
  span_id: string;
  parent_span_id: string;
  service_name: string;
  name: string;
  duration_ns: string;
  status_message: string;
}

function totalsQuery(spans: string): string {
  return `SELECT count() AS span_count, countIf(is_error) AS error_count,
  arraySort(groupUniqArray(service_name)) AS services,
  toUnixTimestamp64Nano(min(start_time)) AS start, toUnixTimestamp64Nano(max(end_time)) AS end,
  countIf(parent_span_id != 0 AND parent_span_id NOT IN (SELECT span_id FROM ${spans})) AS missing_parents,
  if(countIf(parent_span_id = 0) > 0, leftPad(lower(hex(argMinIf(span_id, start_time, parent_span_id = 0))), 16, '0'), '') AS root_span_id,
  argMinIf(service_name, start_time, parent_span_id = 0) AS root_service,
  argMinIf(name, start_time, parent_span_id = 0) AS root_name,
  argMinIf(duration_ns, start_time, parent_span_id = 0) AS root_duration
FROM ${spans}`;
}

function operationsQuery(spans: string): string {
  return `SELECT service_name, name, toString(kind) AS kind, count() AS spans, countIf(is_error) AS errors,
  sum(duration_ns) AS total_ns, max(duration_ns) AS max_ns
FROM ${spans}
GROUP BY service_name, name, kind
ORDER BY total_ns DESC
LIMIT {limit:UInt32}`;
}

function spansQuery(spans: string, condition: string, order: string): string {
  return `SELECT leftPad(lower(hex(span_id)), 16, '0') AS span_id,
  if(parent_span_id = 0, '', leftPad(lower(hex(parent_span_id)), 16, '0')) AS parent_span_id,
  service_name, name, duration_ns, status_message
FROM ${spans}
WHERE ${condition}
ORDER BY ${order}
LIMIT {limit:UInt32}`;
}

function toSummarySpan(row: SpanRowLite): SummarySpan {
  return {
    spanId: row.span_id,
    parentSpanId: row.parent_span_id,
    service: row.service_name,
    operation: row.name,
    durationMs: Number(row.duration_ns) / 1e6,
    statusMessage: row.status_message,
  };
}

async function queryRows<T>(
  storage: Storage,
  query: string,
  params: Record<string, unknown>,
): Promise<T[]> {
  const result = await storage.client.query({ query, query_params: params, format: 'JSONEachRow' });
  return result.json<T>();
}
