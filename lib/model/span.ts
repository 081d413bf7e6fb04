/** Span kinds as OTLP names them, without the `SPAN_KIND_` prefix. */
export const SPAN_KINDS = [
  'UNSPECIFIED',
  'INTERNAL',
  'SERVER',
  'CLIENT',
  'PRODUCER',
  'CONSUMER',
] as const;
export type SpanKind = (typeof SPAN_KINDS)[number];

/** Span status codes as OTLP names them, without the `STATUS_CODE_` prefix. */
export const STATUS_CODES = ['UNSET', 'OK', 'ERROR'] as const;
export type StatusCode = (typeof STATUS_CODES)[number];

/**
 * An attribute value in the OTLP/JSON form of `AnyValue`: exactly one key is set.
 * 64-bit integers are decimal strings so that no precision is lost, and bytes are base64.
 */
export type AnyValue =
  | { stringValue: string }
  | { boolValue: boolean }
  | { intValue: string }
  | { doubleValue: number }
  | { arrayValue: { values: AnyValue[] } }
  | { kvlistValue: { values: KeyValue[] } }
  | { bytesValue: string };

export interface KeyValue {
  key: string;
  value: AnyValue;
}

export interface SpanEvent {
  timeUnixNano: string;
  name: string;
  attributes: KeyValue[];
  droppedAttributesCount: number;
}

export interface SpanLink {
  traceId: string;
  spanId: string;
  traceState: string;
  attributes: KeyValue[];
  droppedAttributesCount: number;
  flags: number;
}

/**
 * One span flattened with its resource and scope, as the collector stores it.
 * Ids are lowercase hex; times are nanoseconds since the Unix epoch as decimal strings.
 */
export interface SpanRecord {
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  traceState: string;
  flags: number;
  name: string;
  kind: SpanKind;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  durationNs: string;
  statusCode: StatusCode;
  statusMessage: string;
  serviceName: string;
  serviceVersion: string;
  deploymentEnvironment: string;
  /** Name of the called node for CLIENT and PRODUCER spans, derived from peer attributes. */
  remoteService: string;
  /** HTTP response status code, 0 when the span carries none. */
  httpStatusCode: number;
  /** Error by the OpenTelemetry conventions; see `isErrorSpan`. */
  isError: boolean;
  attributes: KeyValue[];
  droppedAttributesCount: number;
  resourceAttributes: KeyValue[];
  droppedResourceAttributesCount: number;
  scopeName: string;
  scopeVersion: string;
  scopeAttributes: KeyValue[];
  events: SpanEvent[];
  droppedEventsCount: number;
  links: SpanLink[];
  droppedLinksCount: number;
  /** Repairs made at ingest, such as `end_before_start`; empty when the span arrived valid. */
  ingestWarnings: string[];
}
