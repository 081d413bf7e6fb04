import type { SpanRecord } from '../lib/model/span';
import type { Storage } from '../lib/storage/clickhouse';
import { fromSelectedRow, hexToDecimal, spanSelect, type SpanRow } from '../lib/storage/span-rows';
import {
  TRACE_BOUNDS_CONDITION,
  TRACE_IDS_CONDITION,
  traceBoundsWith,
} from '../lib/storage/span-reader';
import { buildTraceTree, type TraceTree } from './tree';

/**
 * Reads whole traces in one query and rebuilds their trees. The spans come without their
 * attributes (see `spanSelect`), because cause analysis reads only names, kinds,
 * statuses, times, resources and exception events.
 */
export async function readTraceTrees(storage: Storage, traceIds: string[]): Promise<TraceTree[]> {
  if (traceIds.length === 0) return [];
  const result = await storage.client.query({
    query: `${traceBoundsWith(storage.database, TRACE_IDS_CONDITION)}
SELECT ${spanSelect({ attributes: false })}
FROM ${storage.database}.spans
WHERE ${TRACE_IDS_CONDITION} AND ${TRACE_BOUNDS_CONDITION}
LIMIT 1 BY trace_id, span_id, kind`,
    query_params: { traceIds: traceIds.map(hexToDecimal) },
    format: 'JSONEachRow',
  });
  const byTrace = new Map<string, SpanRecord[]>();
  for (const row of await result.json<SpanRow>()) {
    const span = fromSelectedRow(row);
    const spans = byTrace.get(span.traceId) ?? [];
    spans.push(span);
    byTrace.set(span.traceId, spans);
  }
  return traceIds
    .filter((traceId) => byTrace.has(traceId))
    .map((traceId) => buildTraceTree(traceId, byTrace.get(traceId)!));
}
