import { SPAN_KINDS, STATUS_CODES, type KeyValue, type SpanRecord } from '../lib/model/span';

/** A span in OTLP/JSON: hex ids, enums as integers, 64-bit numbers as decimal strings. */
export interface OtlpJsonSpan {
  traceId: string;
  spanId: string;
  traceState: string;
  parentSpanId: string;
  flags: number;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: KeyValue[];
  droppedAttributesCount: number;
  events: {
    timeUnixNano: string;
    name: string;
    attributes: KeyValue[];
    droppedAttributesCount: number;
  }[];
  droppedEventsCount: number;
  links: {
    traceId: string;
    spanId: string;
    traceState: string;
    attributes: KeyValue[];
    droppedAttributesCount: number;
    flags: number;
  }[];
  droppedLinksCount: number;
  status: { code: number; message: string };
}

export interface OtlpJsonScopeSpans {
  scope: { name: string; version: string; attributes: KeyValue[] };
  spans: OtlpJsonSpan[];
}

export interface OtlpJsonResourceSpans {
  resource: { attributes: KeyValue[]; droppedAttributesCount: number };
  scopeSpans: OtlpJsonScopeSpans[];
}

/** The body of an OTLP `ExportTraceServiceRequest` in its JSON encoding. */
export interface OtlpJsonTraces {
  resourceSpans: OtlpJsonResourceSpans[];
}

/**
 * Writes each NaN or infinite double as the string OTLP/JSON spells it with (`NaN`,
 * `Infinity`, `-Infinity`), because a JSON number cannot carry it.
 */
function otlpAttributes(attributes: KeyValue[]): KeyValue[] {
  const special = ({ value }: KeyValue) =>
    'doubleValue' in value && !Number.isFinite(value.doubleValue);
  if (!attributes.some(special)) return attributes;
  return attributes.map((attribute) =>
    special(attribute)
      ? {
          key: attribute.key,
          value: {
            doubleValue:
              `${(attribute.value as { doubleValue: number }).doubleValue}` as unknown as number,
          },
        }
      : attribute,
  );
}

function toOtlpSpan(span: SpanRecord): OtlpJsonSpan {
  return {
    traceId: span.traceId,
    spanId: span.spanId,
    traceState: span.traceState,
    parentSpanId: span.parentSpanId,
    flags: span.flags,
    name: span.name,
    kind: SPAN_KINDS.indexOf(span.kind),
    startTimeUnixNano: span.startTimeUnixNano,
    endTimeUnixNano: span.endTimeUnixNano,
    attributes: otlpAttributes(span.attributes),
    droppedAttributesCount: span.droppedAttributesCount,
    events: span.events.map((event) => ({
      timeUnixNano: event.timeUnixNano,
      name: event.name,
      attributes: event.attributes,
      droppedAttributesCount: event.droppedAttributesCount,
    })),
    droppedEventsCount: span.droppedEventsCount,
    links: span.links.map((link) => ({ ...link })),
    droppedLinksCount: span.droppedLinksCount,
    status: { code: STATUS_CODES.indexOf(span.statusCode), message: span.statusMessage },
  };
}

/**
 * Groups spans back into the resource and scope blocks they were sent in. Spans with
 * equal resource attributes share one `resourceSpans` entry, and within it spans with
 * the same scope share one `scopeSpans` entry. Entries keep the order in which they first appear.
 */
export function toOtlpJson(spans: SpanRecord[]): OtlpJsonTraces {
  const resources = new Map<string, OtlpJsonResourceSpans>();
  const scopes = new Map<string, OtlpJsonScopeSpans>();
  for (const span of spans) {
    const resourceKey = JSON.stringify([
      span.resourceAttributes,
      span.droppedResourceAttributesCount,
    ]);
    let resource = resources.get(resourceKey);
    if (!resource) {
      resource = {
        resource: {
          attributes: span.resourceAttributes,
          droppedAttributesCount: span.droppedResourceAttributesCount,
        },
        scopeSpans: [],
      };
      resources.set(resourceKey, resource);
    }
    const scopeKey = JSON.stringify([
      resourceKey,
      span.scopeName,
      span.scopeVersion,
      span.scopeAttributes,
    ]);
    let scope = scopes.get(scopeKey);
    if (!scope) {
      scope = {
        scope: {
          name: span.scopeName,
          version: span.scopeVersion,
          attributes: span.scopeAttributes,
        },
        spans: [],
      };
      scopes.set(scopeKey, scope);
      resource.scopeSpans.push(scope);
    }
    scope.spans.push(toOtlpSpan(span));
  }
  return { resourceSpans: [...resources.values()] };
}
