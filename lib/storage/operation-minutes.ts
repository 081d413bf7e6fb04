import type { Storage } from './clickhouse';
import { wholeMinutes } from './latency-minutes';
import { RANGE_CONDITION, rangeParams, type TimeRange } from './span-reader';

/** RED figures of one operation (service, span name and kind) over a range. */
export interface OperationFigures {
  serviceName: string;
  name: string;
  kind: string;
  calls: number;
  errors: number;
  /** t-digest estimates of the span durations, in milliseconds. */
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
}

/**
 * Reads calls, errors and latency percentiles of every operation in a range, or of one
 * service's operations. Whole minutes come from `operation_minutes`, which the
 * materialized view keeps current at insert, and the partial minutes at both ends from
 * `spans`, so a range of hours reads one row an operation a minute.
 */
export async function readOperationFigures(
  storage: Storage,
  range: TimeRange,
  service?: string,
): Promise<OperationFigures[]> {
  const { firstMs, endMs } = wholeMinutes(range);
  const serviceCondition = service ? 'AND service_name = {service:String}' : '';
  const db = storage.database;
  const result = await storage.client.query({
    query: `SELECT service_name, name, kind, sum(calls) AS calls, sum(errors) AS errors,
  quantilesTDigestMerge(0.5, 0.95, 0.99)(latency) AS latency
FROM (
  SELECT service_name, name, kind, calls, errors, latency
  FROM ${db}.operation_minutes
  WHERE minute >= toDateTime(intDiv({firstMs:Int64}, 1000)) AND minute < toDateTime(intDiv({endMs:Int64}, 1000))
    ${serviceCondition}
  UNION ALL
  SELECT service_name, name, kind, count() AS calls, countIf(is_error) AS errors,
    quantilesTDigestState(0.5, 0.95, 0.99)(duration_ns) AS latency
  FROM ${db}.spans
  WHERE ${RANGE_CONDITION} ${serviceCondition}
    AND NOT (start_time >= fromUnixTimestamp64Milli({firstMs:Int64}) AND start_time < fromUnixTimestamp64Milli({endMs:Int64}))
  GROUP BY service_name, name, kind
)
GROUP BY service_name, name, kind
ORDER BY service_name, name, kind`,
    query_params: { ...rangeParams(range), firstMs, endMs, service },
    format: 'JSONEachRow',
  });
  const rows = await result.json<{
    service_name: string;
    name: string;
    kind: string;
    calls: string;
    errors: string;
    latency: number[];
  }>();
  return rows.map((row) => ({
    serviceName: row.service_name,
    name: row.name,
    kind: row.kind,
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
