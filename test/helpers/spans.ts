import type { SpanKind, SpanRecord } from '../../lib/model/span';

export const TRACE_ID = 'aaaabbbbccccddddeeeeffff00001111';

/** A 16-hex-digit span id from a number. */
export const spanId = (n: number) => n.toString(16).padStart(16, '0');

/** Builds a span for tree and analysis tests; times are milliseconds. */
export function makeSpan(
  id: number,
  parent: number | '',
  startMs: number,
  endMs: number,
  overrides: Partial<SpanRecord> & { kind?: SpanKind } = {},
): SpanRecord {
  const start = BigInt(Math.round(startMs * 1000)) * 1000n;
  const end = BigInt(Math.round(endMs * 1000)) * 1000n;
  return {
    traceId: TRACE_ID,
    spanId: spanId(id),
    parentSpanId: parent === '' ? '' : spanId(parent),
    traceState: '',
    flags: 0,
    name: `op-${id}`,
    kind: 'INTERNAL',
    startTimeUnixNano: start.toString(),
    endTimeUnixNano: end.toString(),
    durationNs: (end - start).toString(),
    statusCode: 'UNSET',
    statusMessage: '',
    serviceName: 'svc',
    serviceVersion: '',
    deploymentEnvironment: '',
    remoteService: '',
    httpStatusCode: 0,
    isError: false,
    attributes: [],
    droppedAttributesCount: 0,
    resourceAttributes: [],
    droppedResourceAttributesCount: 0,
    scopeName: '',
    scopeVersion: '',
    scopeAttributes: [],
    events: [],
    droppedEventsCount: 0,
    links: [],
    droppedLinksCount: 0,
    ingestWarnings: [],
    ...overrides,
  };
}
