import type { Storage } from './clickhouse';
import type { TimeRange } from './span-reader';

/** Name of the callee node when a client span has no peer attributes and no server span. */
export const UNKNOWN_CALLEE = 'unknown';

/**
 * Milliseconds after the end of a minute before its edges are resolved and stored. A
 * server span that arrives later than this is not in that minute's stored edges.
 */
export const DEPENDENCY_LATENESS_MS = 120_000;

const MINUTE_MS = 60_000;

/**
 * Minutes are resolved in blocks of ten, aligned on the epoch, so that every analyzer
 * cuts the same blocks and a block resolved twice carries the same deduplication token.
 */
const BLOCK_MS = 10 * MINUTE_MS;

/** Time `call_spans` keeps its rows, in ms (the TTL in 008_call_spans.sql). */
export const CALL_SPANS_RETENTION_MS = 24 * 3_600_000;

/**
 * A server or consumer span is the callee of a call when it starts from one minute before
 * the call (clock skew) to `DEPENDENCY_LATENESS_MS` after it (a queue's delay). The limits
 * hold per call, so a call gets the same callee whether its minute is resolved or open.
 */
const CALLEE_BEFORE_MS = 60_000;
const CALLEE_AFTER_MS = DEPENDENCY_LATENESS_MS;

/**
 * Table the calls are read from: `call_spans` (ordered by minute, recent rows only) or
 * `spans` (every row).
 */
export type EdgeSource = 'call_spans' | 'spans';

/**
 * Returns the table that still contains every call span starting at `startMs`:
 * `call_spans` while it is younger than that table's retention, with ten minutes to spare,
 * else `spans`.
 */
export function edgeSourceFor(startMs: number, nowMs = Date.now()): EdgeSource {
  return startMs >= nowMs - CALL_SPANS_RETENTION_MS + 600_000 ? 'call_spans' : 'spans';
}

/** Names of the Int64 parameters (ms since the epoch) that bound a window `[start, end)`. */
export interface CallWindow {
  start: string;
  end: string;
}

function timeCondition(source: EdgeSource, from: string, to: string): string {
  const time = `start_time >= ${from} AND start_time < ${to}`;
  if (source === 'spans') return time;
  // The primary key of call_spans starts with the minute, so this bound skips the rest.
  return `minute >= toStartOfMinute(${from}) AND minute <= toStartOfMinute(${to}) AND ${time}`;
}

/**
 * Selects one row a call: each CLIENT or PRODUCER span that starts in `window`, joined to
 * the SERVER or CONSUMER span it caused. The server span's parent is the client span, or,
 * in Zipkin's shared-span form, both have the same span id. A client span with no such
 * match calls a virtual node named by `remote_service`. `CALLEE_BEFORE_MS` gives how far
 * apart a call and its callee may start.
 */
export function edgeCallsSql(db: string, window: CallWindow, source: EdgeSource): string {
  const from = `fromUnixTimestamp64Milli({${window.start}:Int64})`;
  const to = `fromUnixTimestamp64Milli({${window.end}:Int64})`;
  const before = `toIntervalMillisecond(${CALLEE_BEFORE_MS})`;
  const after = `toIntervalMillisecond(${CALLEE_AFTER_MS})`;
  const matched = `(callees.callee != ''
    AND callees.callee_start >= calls.start_time - ${before}
    AND callees.callee_start <= calls.start_time + ${after})`;
  return `WITH
calls AS (
  SELECT trace_id, span_id, service_name AS caller, remote_service, is_error, duration_ns, start_time
  FROM ${db}.${source}
  WHERE kind IN ('CLIENT', 'PRODUCER') AND ${timeCondition(source, from, to)}
  LIMIT 1 BY trace_id, span_id, kind
),
callees AS (
  SELECT trace_id, arrayJoin([parent_span_id, span_id]) AS caller_span_id,
    any(service_name) AS callee, min(start_time) AS callee_start
  FROM ${db}.${source}
  WHERE kind IN ('SERVER', 'CONSUMER') AND ${timeCondition(source, `${from} - ${before}`, `${to} + ${after}`)}
  GROUP BY trace_id, caller_span_id
)
SELECT
  calls.trace_id AS trace_id,
  calls.span_id AS span_id,
  calls.caller AS caller,
  if(${matched}, callees.callee, if(calls.remote_service != '', calls.remote_service, '${UNKNOWN_CALLEE}')) AS callee,
  NOT ${matched} AS virtual_callee,
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
 * Returns the whole minutes inside `range` whose block of ten minutes is closed: the block
 * ended at least `DEPENDENCY_LATENESS_MS` before `nowMs`.
 */
export function closedMinutes(range: TimeRange, nowMs: number): MinuteSpan {
  const firstMs = Math.ceil(range.startMs / MINUTE_MS) * MINUTE_MS;
  const lastClosedEndMs = Math.floor((nowMs - DEPENDENCY_LATENESS_MS) / BLOCK_MS) * BLOCK_MS;
  const rangeEndMs = Math.floor((range.endMs + 1) / MINUTE_MS) * MINUTE_MS;
  const endMs = Math.max(firstMs, Math.min(lastClosedEndMs, rangeEndMs));
  return { firstMs, endMs };
}

async function resolvedMinutes(storage: Storage, firstMs: number, endMs: number) {
  const result = await storage.client.query({
    query: `SELECT DISTINCT toUnixTimestamp(minute) AS minute
FROM ${storage.database}.dependency_resolved_minutes
WHERE minute >= toDateTime({first:UInt32}) AND minute < toDateTime({end:UInt32})`,
    query_params: { first: firstMs / 1000, end: endMs / 1000 },
    format: 'JSONEachRow',
  });
  const rows = await result.json<{ minute: number | string }>();
  return new Set(rows.map((row) => Number(row.minute) * 1000));
}

/**
 * Stores the edges of the minutes of one block not stored yet in `dependency_minutes`,
 * then marks them resolved. The deduplication token names the block and those minutes,
 * so a second resolution of the same minutes, by this or another analyzer, stores nothing.
 */
async function resolveBlock(storage: Storage, blockMs: number, minutes: number[], nowMs: number) {
  const db = storage.database;
  const window = { start: 'blockStartMs', end: 'blockEndMs' };
  const offsets = minutes.map((minuteMs) => (minuteMs - blockMs) / MINUTE_MS);
  await storage.client.command({
    query: `INSERT INTO ${db}.dependency_minutes
SELECT toStartOfMinute(start_time) AS minute, caller, callee, virtual_callee,
  count() AS calls, countIf(is_error) AS errors,
  quantilesTDigestState(0.5, 0.95, 0.99)(duration_ns) AS latency
FROM (${edgeCallsSql(db, window, edgeSourceFor(blockMs, nowMs))})
WHERE toUnixTimestamp(toStartOfMinute(start_time)) IN {minutes:Array(UInt32)}
GROUP BY minute, caller, callee, virtual_callee`,
    query_params: {
      blockStartMs: blockMs,
      blockEndMs: blockMs + BLOCK_MS,
      minutes: minutes.map((minuteMs) => minuteMs / 1000),
    },
    clickhouse_settings: {
      insert_deduplicate: 1,
      insert_deduplication_token: `dependency-minutes-${blockMs / 1000}-${offsets.join('.')}`,
    },
  });
  await storage.client.insert({
    table: `${db}.dependency_resolved_minutes`,
    values: minutes.map((minuteMs) => ({ minute: minuteMs / 1000 })),
    format: 'JSONEachRow',
  });
}

/**
 * Resolves and stores every closed minute of `range` not stored yet, block by block, and
 * returns the minutes that readers can take from `dependency_minutes`.
 */
export async function resolveDependencyMinutes(
  storage: Storage,
  range: TimeRange,
  nowMs = Date.now(),
): Promise<MinuteSpan> {
  // Spans still waiting in a collector's log were accepted on time for the blocks that
  // ended within the lateness before they arrived, so those blocks stay open until stored.
  // A collector in this process sets unstoredSince itself, and for an analyzer running
  // alone it reads the collector_backlog table.
  const unstoredMs = await storage.unstoredSince?.();
  const minutes = closedMinutes(
    range,
    unstoredMs === undefined ? nowMs : Math.min(nowMs, unstoredMs),
  );
  if (minutes.endMs <= minutes.firstMs) return minutes;
  // Minutes are UInt32 seconds in storage, so none lies before the epoch.
  const firstBlockMs = Math.max(0, Math.floor(minutes.firstMs / BLOCK_MS) * BLOCK_MS);
  const lastBlockEndMs = Math.ceil(minutes.endMs / BLOCK_MS) * BLOCK_MS;
  const done = await resolvedMinutes(storage, firstBlockMs, lastBlockEndMs);
  for (let blockMs = firstBlockMs; blockMs < lastBlockEndMs; blockMs += BLOCK_MS) {
    const missing: number[] = [];
    for (let minuteMs = blockMs; minuteMs < blockMs + BLOCK_MS; minuteMs += MINUTE_MS) {
      if (!done.has(minuteMs)) missing.push(minuteMs);
    }
    if (missing.length > 0) await resolveBlock(storage, blockMs, missing, nowMs);
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
 * Returns the parts of `range` outside the closed minutes, as `[start, end)` windows in ms: the
 * partial minute at the start and the open minutes at the end.
 */
function liveWindows(range: TimeRange, minutes: MinuteSpan): { startMs: number; endMs: number }[] {
  const rangeEndMs = Math.trunc(range.endMs) + 1;
  const head = { startMs: Math.trunc(range.startMs), endMs: Math.min(minutes.firstMs, rangeEndMs) };
  const tail = { startMs: Math.max(minutes.endMs, head.startMs), endMs: rangeEndMs };
  return [head, tail].filter((window) => window.endMs > window.startMs);
}

/**
 * Reads the edges of `range`: closed minutes from the rollup, the open or partial
 * minutes at either end joined from call spans, merged into one t-digest an edge.
 */
export async function readEdgeFigures(
  storage: Storage,
  range: TimeRange,
  nowMs = Date.now(),
): Promise<EdgeFigures[]> {
  const minutes = await resolveDependencyMinutes(storage, range, nowMs);
  const db = storage.database;
  const params: Record<string, number> = { firstMs: minutes.firstMs, endMs: minutes.endMs };
  const live = liveWindows(range, minutes).map((window, index) => {
    params[`liveStartMs${index}`] = window.startMs;
    params[`liveEndMs${index}`] = window.endMs;
    const names = { start: `liveStartMs${index}`, end: `liveEndMs${index}` };
    return `
  UNION ALL
  SELECT caller, callee, virtual_callee, count() AS calls, countIf(is_error) AS errors,
    quantilesTDigestState(0.5, 0.95, 0.99)(duration_ns) AS latency
  FROM (${edgeCallsSql(db, names, edgeSourceFor(window.startMs, nowMs))})
  GROUP BY caller, callee, virtual_callee`;
  });
  const result = await storage.client.query({
    query: `SELECT caller, callee, max(virtual_callee) AS virtual_callee,
  sum(calls) AS calls, sum(errors) AS errors,
  quantilesTDigestMerge(0.5, 0.95, 0.99)(latency) AS latency
FROM (
  SELECT caller, callee, virtual_callee, calls, errors, latency
  FROM ${db}.dependency_minutes
  WHERE minute >= toDateTime(intDiv({firstMs:Int64}, 1000)) AND minute < toDateTime(intDiv({endMs:Int64}, 1000))${live.join('')}
)
GROUP BY caller, callee
ORDER BY caller, callee`,
    query_params: params,
    format: 'JSONEachRow',
  });
  return result.json<EdgeFigures>();
}
