import type { Storage } from './clickhouse';
import type { TimeRange } from './span-reader';

const MINUTE_MS = 60_000;

/** Histogram buckets a factor of e: bucket b contains durations from exp(b/16) to exp((b+1)/16) ns. */
export const BUCKETS_PER_E = 16;

/** The bucket expression of migration 010, for spans read at query time. */
const BUCKET_EXPRESSION = `toUInt16(floor(log(greatest(duration_ns, 1)) * ${BUCKETS_PER_E}))`;

/**
 * Spans of one operation of one version over a range: counts and a histogram of
 * log-durations. `buckets` is sorted and `counts[i]` spans fall in `buckets[i]`.
 */
export interface LatencyGroup {
  service: string;
  version: string;
  environment: string;
  name: string;
  kind: string;
  remoteService: string;
  isRoot: boolean;
  spans: number;
  errors: number;
  /** Start of the first minute with a span, or the first span's start in a partial minute. */
  firstMs: number;
  buckets: number[];
  counts: number[];
}

/**
 * Returns the whole minutes inside a range, as [firstMs, endMs). The range is inclusive at
 * both ends, so a minute belongs to it when its first and last millisecond do.
 */
export function wholeMinutes(range: TimeRange): { firstMs: number; endMs: number } {
  const firstMs = Math.ceil(range.startMs / MINUTE_MS) * MINUTE_MS;
  const endMs = Math.max(
    firstMs,
    Math.floor((Math.trunc(range.endMs) + 1) / MINUTE_MS) * MINUTE_MS,
  );
  return { firstMs, endMs };
}

/**
 * Reads every operation and version of a range with its histogram of durations. Whole
 * minutes come from `latency_minutes`, which its materialized view keeps current at
 * insert. Partial minutes at either end, if any, come from `spans`. So the figures are
 * those of the spans that start in the range, and an hour reads one row an operation a
 * minute.
 */
export async function readLatencyGroups(
  storage: Storage,
  range: TimeRange,
): Promise<LatencyGroup[]> {
  const db = storage.database;
  const minutes = wholeMinutes(range);
  const startMs = Math.trunc(range.startMs);
  const endMs = Math.trunc(range.endMs) + 1;
  const edges = [
    { startMs, endMs: Math.min(minutes.firstMs, endMs) },
    { startMs: Math.max(minutes.endMs, startMs), endMs },
  ].filter((edge) => edge.endMs > edge.startMs);
  const params: Record<string, number> = { ...minutes };
  const edgeQueries = edges.map((edge, index) => {
    params[`edgeStartMs${index}`] = edge.startMs;
    params[`edgeEndMs${index}`] = edge.endMs;
    return `
  UNION ALL
  SELECT service_name, service_version, deployment_environment, name, kind, remote_service,
    parent_span_id = 0 AS is_root, toUInt64(count()) AS spans, toUInt64(countIf(is_error)) AS errors,
    toUnixTimestamp64Milli(min(start_time)) AS first_ms, sumMap([${BUCKET_EXPRESSION}], [toUInt64(1)]) AS durations
  FROM ${db}.spans
  WHERE start_time >= fromUnixTimestamp64Milli({edgeStartMs${index}:Int64})
    AND start_time < fromUnixTimestamp64Milli({edgeEndMs${index}:Int64})
  GROUP BY ${KEYS}`;
  });
  const result = await storage.client.query({
    query: `SELECT service_name, service_version, deployment_environment, name, toString(kind) AS kind,
  remote_service, is_root, sum(spans) AS spans, sum(errors) AS errors, min(first_ms) AS first_ms,
  sumMap(durations) AS durations
FROM (
  SELECT ${KEYS}, spans, errors, toInt64(toUnixTimestamp(minute)) * 1000 AS first_ms, durations
  FROM ${db}.latency_minutes
  WHERE minute >= toDateTime(intDiv({firstMs:Int64}, 1000)) AND minute < toDateTime(intDiv({endMs:Int64}, 1000))${edgeQueries.join('')}
)
GROUP BY ${KEYS}`,
    query_params: params,
    format: 'JSONEachRow',
  });
  const rows = await result.json<LatencyRow>();
  return rows.map(toGroup);
}

const KEYS =
  'service_name, service_version, deployment_environment, name, kind, remote_service, is_root';

interface LatencyRow {
  service_name: string;
  service_version: string;
  deployment_environment: string;
  name: string;
  kind: string;
  remote_service: string;
  is_root: boolean;
  spans: string;
  errors: string;
  first_ms: string;
  durations: [number[], string[]];
}

function toGroup(row: LatencyRow): LatencyGroup {
  return {
    service: row.service_name,
    version: row.service_version,
    environment: row.deployment_environment,
    name: row.name,
    kind: row.kind,
    remoteService: row.remote_service,
    isRoot: Boolean(row.is_root),
    spans: Number(row.spans),
    errors: Number(row.errors),
    firstMs: Number(row.first_ms),
    buckets: row.durations[0].map(Number),
    counts: row.durations[1].map(Number),
  };
}

/** The operations of a report's window and of its baseline. */
export interface RangeGroups {
  window: LatencyGroup[];
  baseline: LatencyGroup[];
}

/** Reads the groups of both ranges, one after the other (faster than together on two cores). */
export async function readRangeGroups(
  storage: Storage,
  request: { window: TimeRange; baseline: TimeRange },
): Promise<RangeGroups> {
  const window = await readLatencyGroups(storage, request.window);
  const baseline = await readLatencyGroups(storage, request.baseline);
  return { window, baseline };
}
