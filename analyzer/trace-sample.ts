import type { Storage } from '../lib/storage/clickhouse';
import { readTraces } from '../lib/storage/span-reader';
import { buildTraceTree, type TraceTree } from './tree';

/**
 * Reads whole traces in one query and rebuilds their trees. The spans come without their
 * attributes (see `spanSelect`), because cause analysis reads only names, kinds,
 * statuses, times, resources and exception events.
 */
export async function readTraceTrees(storage: Storage, traceIds: string[]): Promise<TraceTree[]> {
  const traces = await readTraces(storage, traceIds, { attributes: false });
  return [...traces].map(([traceId, spans]) => buildTraceTree(traceId, spans));
}
