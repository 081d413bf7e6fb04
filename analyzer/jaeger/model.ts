import type { AnyValue, KeyValue, SpanRecord } from '../../lib/model/span';
import { toPlainValue } from '../../lib/model/attributes';

/** A Jaeger key-value, typed as the Jaeger query service's JSON model types it. */
export interface JaegerTag {
  key: string;
  type: 'string' | 'bool' | 'int64' | 'float64' | 'binary';
  value: string | number | boolean;
}

export interface JaegerReference {
  refType: 'CHILD_OF' | 'FOLLOWS_FROM';
  traceID: string;
  spanID: string;
}

export interface JaegerSpan {
  traceID: string;
  spanID: string;
  flags: number;
  operationName: string;
  references: JaegerReference[];
  /** Microseconds since the Unix epoch. */
  startTime: number;
  /** Microseconds. */
  duration: number;
  tags: JaegerTag[];
  logs: { timestamp: number; fields: JaegerTag[] }[];
  processID: string;
  warnings: string[] | null;
}

export interface JaegerProcess {
  serviceName: string;
  tags: JaegerTag[];
}

export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, JaegerProcess>;
  warnings: string[] | null;
}

/** Converts nanoseconds, as decimal text or bigint, to whole microseconds. */
export function nsToMicros(ns: string | bigint): number {
  return Number(BigInt(ns) / 1000n);
}

/**
 * Converts an OTLP value to a Jaeger tag value. A 64-bit integer outside the range that
 * a JSON number represents exactly stays a string. Arrays and maps become JSON text,
 * because Jaeger tags have no list or map type.
 */
export function toJaegerTag(key: string, value: AnyValue): JaegerTag {
  if ('stringValue' in value) return { key, type: 'string', value: value.stringValue };
  if ('boolValue' in value) return { key, type: 'bool', value: value.boolValue };
  if ('intValue' in value) {
    const number = Number(value.intValue);
    return { key, type: 'int64', value: Number.isSafeInteger(number) ? number : value.intValue };
  }
  if ('doubleValue' in value) {
    return { key, type: 'float64', value: toPlainValue(value) as number | string };
  }
  if ('bytesValue' in value) return { key, type: 'binary', value: value.bytesValue };
  return { key, type: 'string', value: JSON.stringify(plainOf(value)) };
}

function plainOf(value: AnyValue): unknown {
  if ('arrayValue' in value) return value.arrayValue.values.map(plainOf);
  if ('kvlistValue' in value) {
    return Object.fromEntries(value.kvlistValue.values.map((kv) => [kv.key, plainOf(kv.value)]));
  }
  return Object.values(value)[0];
}

function toTags(attributes: KeyValue[]): JaegerTag[] {
  return attributes.map(({ key, value }) => toJaegerTag(key, value));
}

/** Returns the span fields that Jaeger carries as tags: kind, status, error flag, scope, trace state. */
function fieldTags(span: SpanRecord): JaegerTag[] {
  const tags: JaegerTag[] = [];
  const text = (key: string, value: string) => tags.push({ key, type: 'string', value });
  if (span.kind !== 'UNSPECIFIED') text('span.kind', span.kind.toLowerCase());
  if (span.statusCode !== 'UNSET') text('otel.status_code', span.statusCode);
  if (span.statusMessage) text('otel.status_description', span.statusMessage);
  if (span.isError) tags.push({ key: 'error', type: 'bool', value: true });
  if (span.scopeName) text('otel.scope.name', span.scopeName);
  if (span.scopeVersion) text('otel.scope.version', span.scopeVersion);
  if (span.traceState) text('w3c.tracestate', span.traceState);
  return tags;
}

function references(span: SpanRecord): JaegerReference[] {
  const refs: JaegerReference[] = [];
  if (span.parentSpanId) {
    refs.push({ refType: 'CHILD_OF', traceID: span.traceId, spanID: span.parentSpanId });
  }
  for (const link of span.links) {
    refs.push({ refType: 'FOLLOWS_FROM', traceID: link.traceId, spanID: link.spanId });
  }
  return refs;
}

function toJaegerSpan(span: SpanRecord, processID: string): JaegerSpan {
  return {
    traceID: span.traceId,
    spanID: span.spanId,
    flags: span.flags & 0xff,
    operationName: span.name,
    references: references(span),
    startTime: nsToMicros(span.startTimeUnixNano),
    duration: nsToMicros(span.durationNs),
    tags: [...toTags(span.attributes), ...fieldTags(span)],
    logs: span.events.map((event) => ({
      timestamp: nsToMicros(event.timeUnixNano),
      fields: [{ key: 'event', type: 'string', value: event.name }, ...toTags(event.attributes)],
    })),
    processID,
    warnings: span.ingestWarnings.length > 0 ? [...span.ingestWarnings] : null,
  };
}

function toProcess(span: SpanRecord): JaegerProcess {
  const tags = span.resourceAttributes.filter((attribute) => attribute.key !== 'service.name');
  return { serviceName: span.serviceName, tags: toTags(tags) };
}

/**
 * Converts the spans of one trace to Jaeger's trace JSON. Spans that share a service and
 * resource share one process, numbered `p1`, `p2` in order of first appearance.
 */
export function toJaegerTrace(traceId: string, spans: SpanRecord[]): JaegerTrace {
  const processIds = new Map<string, string>();
  const processes: Record<string, JaegerProcess> = {};
  const jaegerSpans = spans.map((span) => {
    const key = JSON.stringify([span.serviceName, span.resourceAttributes]);
    let processID = processIds.get(key);
    if (!processID) {
      processID = `p${processIds.size + 1}`;
      processIds.set(key, processID);
      processes[processID] = toProcess(span);
    }
    return toJaegerSpan(span, processID);
  });
  return { traceID: traceId, spans: jaegerSpans, processes, warnings: null };
}
