import { toPlainObject, toPlainValue } from '../../lib/model/attributes';
import type { KeyValue, SpanRecord } from '../../lib/model/span';
import { nsToMicros } from '../jaeger/model';

/** A span in the Zipkin v2 JSON model. */
export interface ZipkinSpan {
  traceId: string;
  id: string;
  parentId?: string;
  kind?: 'CLIENT' | 'SERVER' | 'PRODUCER' | 'CONSUMER';
  name: string;
  /** Microseconds since the Unix epoch. */
  timestamp: number;
  /** Microseconds. */
  duration: number;
  localEndpoint: { serviceName: string };
  remoteEndpoint?: { serviceName: string };
  annotations?: { timestamp: number; value: string }[];
  tags?: Record<string, string>;
  shared?: boolean;
}

function tagText(value: KeyValue['value']): string {
  const plain = toPlainValue(value);
  return typeof plain === 'object' && plain !== null ? JSON.stringify(plain) : String(plain);
}

/**
 * Flattens attributes to Zipkin's string tags: resource attributes first, then span
 * attributes, which win on equal keys, then the span's status and scope.
 */
function zipkinTags(span: SpanRecord): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const { key, value } of span.resourceAttributes) {
    if (key !== 'service.name') tags[key] = tagText(value);
  }
  for (const { key, value } of span.attributes) tags[key] = tagText(value);
  if (span.statusCode !== 'UNSET') tags['otel.status_code'] = span.statusCode;
  if (span.isError) tags.error = span.statusMessage || 'true';
  if (span.scopeName) tags['otel.scope.name'] = span.scopeName;
  if (span.scopeVersion) tags['otel.scope.version'] = span.scopeVersion;
  return tags;
}

function annotationValue(name: string, attributes: KeyValue[]): string {
  if (attributes.length === 0) return name;
  return `"${name}": ${JSON.stringify(toPlainObject(attributes))}`;
}

/** Converts a stored span to Zipkin v2 JSON; events become annotations. */
export function toZipkinSpan(span: SpanRecord): ZipkinSpan {
  const zipkin: ZipkinSpan = {
    traceId: span.traceId,
    id: span.spanId,
    name: span.name,
    timestamp: nsToMicros(span.startTimeUnixNano),
    duration: nsToMicros(span.durationNs),
    localEndpoint: { serviceName: span.serviceName },
  };
  if (span.parentSpanId) zipkin.parentId = span.parentSpanId;
  if (span.kind !== 'INTERNAL' && span.kind !== 'UNSPECIFIED') zipkin.kind = span.kind;
  if (span.remoteService) zipkin.remoteEndpoint = { serviceName: span.remoteService };
  if (span.events.length > 0) {
    zipkin.annotations = span.events.map((event) => ({
      timestamp: nsToMicros(event.timeUnixNano),
      value: annotationValue(event.name, event.attributes),
    }));
  }
  const tags = zipkinTags(span);
  if (Object.keys(tags).length > 0) zipkin.tags = tags;
  return zipkin;
}
