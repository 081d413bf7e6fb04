import type { Storage } from '../lib/storage/clickhouse';
import { RANGE_CONDITION, rangeParams, type TimeRange } from '../lib/storage/span-reader';

/** Spans of one operation: a service, a span name and kind, and for calls the node called. */
export interface OperationKey {
  service: string;
  name: string;
  kind: string;
  remoteService: string;
}

export function operationKey(op: OperationKey): string {
  return [op.service, op.name, op.kind, op.remoteService].join('\x1f');
}

/** Median duration and median self time of one operation over a range, in nanoseconds. */
export interface SelfTimeBaseline {
  spans: number;
  medianDurationNs: number;
  medianSelfTimeNs: number;
}

const KEY_SQL = (alias: string) =>
  `concat(${alias}.service_name, '\\x1f', ${alias}.name, '\\x1f', toString(${alias}.kind), '\\x1f', ${alias}.remote_service)`;

/**
 * Reads the median duration and self time of the given operations over a range. Self time is
 * a span's duration minus the summed durations of its direct children, floored at 0.
 * NOTE: children that overlap (parallel calls) are summed, so the self time of a span with
 * parallel children is underestimated; the trace view computes exact self time.
 */
export async function readSelfTimeBaselines(
  storage: Storage,
  range: TimeRange,
  keys: string[],
): Promise<Map<string, SelfTimeBaseline>> {
  if (keys.length === 0) return new Map();
  const db = storage.database;
  const result = await storage.client.query({
    query: `SELECT ${KEY_SQL('p')} AS key, count() AS spans,
  median(p.duration_ns) AS median_duration,
  median(greatest(toInt64(p.duration_ns) - toInt64(c.children_ns), 0)) AS median_self
FROM ${db}.spans AS p
LEFT JOIN (
  SELECT trace_id, parent_span_id, sum(duration_ns) AS children_ns
  FROM ${db}.spans
  WHERE ${RANGE_CONDITION}
  GROUP BY trace_id, parent_span_id
) AS c ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id
WHERE ${RANGE_CONDITION.replaceAll('start_time', 'p.start_time')}
  AND ${KEY_SQL('p')} IN {keys:Array(String)}
GROUP BY key
SETTINGS join_use_nulls = 0`,
    query_params: { ...rangeParams(range), keys },
    format: 'JSONEachRow',
  });
  const rows = await result.json<{
    key: string;
    spans: string;
    median_duration: number;
    median_self: number;
  }>();
  return new Map(
    rows.map((row) => [
      row.key,
      {
        spans: Number(row.spans),
        medianDurationNs: Number(row.median_duration),
        medianSelfTimeNs: Number(row.median_self),
      },
    ]),
  );
}
