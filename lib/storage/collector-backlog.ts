import os from 'node:os';
import type { Storage } from './clickhouse';

/** Time a collector's last report counts. A collector silent longer is taken as gone. */
export const BACKLOG_REPORT_TTL_MS = 10 * 60_000;

/** Names this process among the collectors that report to one database. */
export function collectorName(): string {
  return `${os.hostname()}:${process.pid}`;
}

/**
 * Stores a collector's report: the append time of its oldest unstored span, or none when
 * every span it acknowledged is stored.
 */
export async function reportBacklog(
  storage: Storage,
  collector: string,
  oldestUnstoredMs: number | undefined,
  nowMs = Date.now(),
): Promise<void> {
  await storage.client.command({
    query: `INSERT INTO ${storage.database}.collector_backlog (collector, reported_at, oldest_unstored)
      SELECT {collector:String}, fromUnixTimestamp64Milli({reportedMs:Int64}),
        fromUnixTimestamp64Milli({oldestMs:Int64})`,
    query_params: {
      collector,
      reportedMs: Math.round(nowMs),
      oldestMs: Math.round(oldestUnstoredMs ?? 0),
    },
  });
}

/**
 * Returns the append time of the oldest span that any collector reported unstored in its
 * latest report, counting only reports from the last `BACKLOG_REPORT_TTL_MS`, or
 * undefined when none waits. A collector that stopped with spans in its log stores them
 * when it starts again, so its last report keeps counting until it is that old.
 */
export async function readBacklog(
  storage: Storage,
  nowMs = Date.now(),
): Promise<number | undefined> {
  const result = await storage.client.query({
    query: `SELECT count() AS collectors, toString(toUnixTimestamp64Milli(min(oldest))) AS oldest_ms
FROM (
  SELECT argMax(oldest_unstored, reported_at) AS oldest, max(reported_at) AS last
  FROM ${storage.database}.collector_backlog
  GROUP BY collector
)
WHERE last >= fromUnixTimestamp64Milli({sinceMs:Int64}) AND oldest > toDateTime64(0, 3)`,
    query_params: { sinceMs: nowMs - BACKLOG_REPORT_TTL_MS },
    format: 'JSONEachRow',
  });
  const [row] = await result.json<{ collectors: string | number; oldest_ms: string }>();
  return Number(row?.collectors ?? 0) > 0 ? Number(row.oldest_ms) : undefined;
}
