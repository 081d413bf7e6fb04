import type { REPAIRED_TEXTS } from './values';
/**
 * The decoded shape of an `ExportTraceServiceRequest` that both encodings share.
 * The protobuf decoder yields Buffers and Long values where OTLP/JSON has hex strings
 * and decimal strings, so the flattener accepts either; see `values.ts`.
 */
export interface OtlpExportRequest {
  resourceSpans?: OtlpResourceSpans[] | null;
  /** Texts the decoder rebuilt from invalid UTF-8; see `REPAIRED_TEXTS`. */
  [REPAIRED_TEXTS]?: ReadonlySet<string>;
}

export interface OtlpResourceSpans {
  resource?: { attributes?: OtlpKeyValue[] | null; droppedAttributesCount?: unknown } | null;
  scopeSpans?: OtlpScopeSpans[] | null;
  schemaUrl?: string | null;
}

export interface OtlpScopeSpans {
  scope?: {
    name?: string | null;
    version?: string | null;
    attributes?: OtlpKeyValue[] | null;
    droppedAttributesCount?: unknown;
  } | null;
  spans?: OtlpSpan[] | null;
  schemaUrl?: string | null;
}

export interface OtlpSpan {
  traceId?: unknown;
  spanId?: unknown;
  traceState?: string | null;
  parentSpanId?: unknown;
  flags?: unknown;
  name?: string | null;
  kind?: unknown;
  startTimeUnixNano?: unknown;
  endTimeUnixNano?: unknown;
  attributes?: OtlpKeyValue[] | null;
  droppedAttributesCount?: unknown;
  events?: OtlpEvent[] | null;
  droppedEventsCount?: unknown;
  links?: OtlpLink[] | null;
  droppedLinksCount?: unknown;
  status?: { message?: string | null; code?: unknown } | null;
}

export interface OtlpEvent {
  timeUnixNano?: unknown;
  name?: string | null;
  attributes?: OtlpKeyValue[] | null;
  droppedAttributesCount?: unknown;
}

export interface OtlpLink {
  traceId?: unknown;
  spanId?: unknown;
  traceState?: string | null;
  attributes?: OtlpKeyValue[] | null;
  droppedAttributesCount?: unknown;
  flags?: unknown;
}

export interface OtlpKeyValue {
  key?: string | null;
  value?: OtlpAnyValue | null;
}

export interface OtlpAnyValue {
  stringValue?: string | null;
  boolValue?: boolean | null;
  intValue?: unknown;
  doubleValue?: unknown;
  arrayValue?: { values?: OtlpAnyValue[] | null } | null;
  kvlistValue?: { values?: OtlpKeyValue[] | null } | null;
  bytesValue?: unknown;
}
