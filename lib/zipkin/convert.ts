import { FaultlineError } from '../errors';
import type {
  OtlpEvent,
  OtlpExportRequest,
  OtlpKeyValue,
  OtlpResourceSpans,
  OtlpSpan,
} from '../otlp/request';

/** A Zipkin v2 span as its JSON carries it; every field may be missing or mistyped. */
export interface ZipkinSpan {
  traceId?: unknown;
  id?: unknown;
  parentId?: unknown;
  name?: unknown;
  kind?: unknown;
  timestamp?: unknown;
  duration?: unknown;
  localEndpoint?: ZipkinEndpoint | null;
  remoteEndpoint?: ZipkinEndpoint | null;
  annotations?: { timestamp?: unknown; value?: unknown }[] | null;
  tags?: Record<string, unknown> | null;
  shared?: unknown;
  debug?: unknown;
}

interface ZipkinEndpoint {
  serviceName?: unknown;
  ipv4?: unknown;
  ipv6?: unknown;
  port?: unknown;
}

/** Zipkin kinds to OTLP span kind numbers; a span without kind is INTERNAL. */
const KINDS: Record<string, number> = { CLIENT: 3, SERVER: 2, PRODUCER: 4, CONSUMER: 5 };
const STATUS_ERROR = 2;
const STATUS_OK = 1;
/** Tags that OpenTelemetry's Zipkin exporter writes for data that OTLP keeps in fields. */
const SCOPE_NAME_TAGS = ['otel.scope.name', 'otel.library.name'];
const SCOPE_VERSION_TAGS = ['otel.scope.version', 'otel.library.version'];
const MAPPED_TAGS = new Set([
  'error',
  'otel.status_code',
  'otel.status_description',
  ...SCOPE_NAME_TAGS,
  ...SCOPE_VERSION_TAGS,
]);

/**
 * Parses a Zipkin v2 JSON body (`POST /api/v2/spans`): an array of spans.
 * Throws FL_UNDECODABLE_BODY when it is not JSON or not an array.
 */
export function parseZipkinJson(body: Uint8Array): ZipkinSpan[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch (error) {
    throw new FaultlineError(
      'FL_UNDECODABLE_BODY',
      `invalid Zipkin v2 JSON (${body.length} bytes): ${(error as Error).message}; send a JSON array of Zipkin v2 spans`,
    );
  }
  if (!Array.isArray(parsed)) {
    throw new FaultlineError(
      'FL_UNDECODABLE_BODY',
      'invalid Zipkin v2 JSON: expected an array of spans; Zipkin v1 and thrift bodies are not accepted',
    );
  }
  return parsed.map((item) => (item && typeof item === 'object' ? (item as ZipkinSpan) : {}));
}

/**
 * Converts Zipkin v2 spans to an OTLP export request, one resource per local service,
 * so that the OTLP validation and repair applies to them unchanged.
 */
export function zipkinToOtlp(spans: ZipkinSpan[]): OtlpExportRequest {
  const byService = new Map<string, Map<string, OtlpSpan[]>>();
  for (const span of spans) {
    const service = text(span.localEndpoint?.serviceName);
    const tags = tagsOf(span);
    const scope = firstTag(tags, SCOPE_NAME_TAGS) + '\u0000' + firstTag(tags, SCOPE_VERSION_TAGS);
    const scopes = byService.get(service) ?? new Map<string, OtlpSpan[]>();
    byService.set(service, scopes);
    const list = scopes.get(scope) ?? [];
    scopes.set(scope, list);
    list.push(toOtlpSpan(span, tags));
  }
  const resourceSpans: OtlpResourceSpans[] = [];
  for (const [service, scopes] of byService) {
    resourceSpans.push({
      resource: { attributes: service ? [stringAttribute('service.name', service)] : [] },
      scopeSpans: [...scopes].map(([scope, list]) => {
        const [name, version] = scope.split('\u0000');
        return { scope: { name, version }, spans: list };
      }),
    });
  }
  return { resourceSpans };
}

function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined || value === null) return '';
  // String() throws for an object whose toString is not a function, which JSON can send.
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

function tagsOf(span: ZipkinSpan): Record<string, string> {
  const tags: Record<string, string> = {};
  if (!span.tags || typeof span.tags !== 'object') return tags;
  for (const [key, value] of Object.entries(span.tags)) tags[key] = text(value);
  return tags;
}

function firstTag(tags: Record<string, string>, keys: string[]): string {
  for (const key of keys) if (tags[key]) return tags[key];
  return '';
}

function stringAttribute(key: string, value: string): OtlpKeyValue {
  return { key, value: { stringValue: value } };
}

/**
 * Zipkin ids are hex without a fixed width: a 64-bit trace id is left-padded to 128 bits
 * so that mixed-width spans of one trace join, and a short span id to 64 bits. Anything
 * else is passed on as sent and rejected by the id check.
 */
export function padZipkinId(value: unknown, width: 16 | 32): unknown {
  if (typeof value !== 'string' || !/^[0-9a-fA-F]{1,32}$/.test(value)) return value;
  if (width === 32 && value.length <= 16) return value.padStart(32, '0');
  return value.length < width ? value.padStart(width, '0') : value;
}

/** Microseconds (Zipkin) to nanoseconds (OTLP) as a decimal string; 0 when absent or bad. */
function microsToNanos(value: unknown): string {
  const micros = typeof value === 'number' ? value : Number(text(value));
  if (!Number.isFinite(micros) || micros < 0 || micros >= 2 ** 63 / 1000) return '0';
  // Some senders write fractional microseconds; keep them as far as a double holds them.
  const whole = Math.trunc(micros);
  return (BigInt(whole) * 1000n + BigInt(Math.round((micros - whole) * 1000))).toString();
}

function toOtlpSpan(span: ZipkinSpan, tags: Record<string, string>): OtlpSpan {
  const start = microsToNanos(span.timestamp);
  const end = (BigInt(start) + BigInt(microsToNanos(span.duration))).toString();
  return {
    traceId: padZipkinId(span.traceId, 32),
    spanId: padZipkinId(span.id, 16),
    parentSpanId: padZipkinId(span.parentId ?? '', 16),
    name: text(span.name),
    kind: KINDS[text(span.kind).toUpperCase()] ?? 1,
    startTimeUnixNano: start,
    endTimeUnixNano: end,
    attributes: toAttributes(span, tags),
    events: toEvents(span.annotations),
    status: toStatus(tags),
  };
}

/** `tags.error` (any value) or `otel.status_code=ERROR` make the status ERROR. */
function toStatus(tags: Record<string, string>): OtlpSpan['status'] {
  const code = tags['otel.status_code']?.toUpperCase();
  if ('error' in tags || code === 'ERROR') {
    const message = tags['otel.status_description'] || tags.error || '';
    return { code: STATUS_ERROR, message: message === 'true' ? '' : message };
  }
  return code === 'OK' ? { code: STATUS_OK } : {};
}

function toAttributes(span: ZipkinSpan, tags: Record<string, string>): OtlpKeyValue[] {
  const attributes: OtlpKeyValue[] = [];
  for (const [key, value] of Object.entries(tags)) {
    if (!MAPPED_TAGS.has(key)) attributes.push(stringAttribute(key, value));
  }
  const remote = span.remoteEndpoint;
  if (remote && typeof remote === 'object') {
    if (remote.serviceName)
      attributes.push(stringAttribute('peer.service', text(remote.serviceName)));
    const address = text(remote.ipv4) || text(remote.ipv6);
    if (address) attributes.push(stringAttribute('network.peer.address', address));
    const port = typeof remote.port === 'number' ? remote.port : Number(text(remote.port));
    if (Number.isInteger(port) && port > 0) {
      attributes.push({ key: 'network.peer.port', value: { intValue: port } });
    }
  }
  return attributes;
}

function toEvents(annotations: ZipkinSpan['annotations']): OtlpEvent[] {
  if (!Array.isArray(annotations)) return [];
  return annotations
    .filter((annotation) => annotation && typeof annotation === 'object')
    .map((annotation) => ({
      timeUnixNano: microsToNanos(annotation.timestamp),
      name: text(annotation.value),
    }));
}
