import { attributeText } from '../model/attributes';
import { httpStatusCode, isErrorSpan, remoteServiceName } from '../model/conventions';
import type { KeyValue, SpanEvent, SpanLink, SpanRecord } from '../model/span';
import type { FlattenLimits } from './flatten';
import { cleanText, type ValueContext } from './values';

/*
 * The checks and repairs that both OTLP decoders apply once values are converted: the
 * generic flattener (flatten.ts) and the fast protobuf decoder (fast-decode.ts). Each
 * helper adds its repair marks to the set it is given, and both callers call the helpers
 * in the same order, which is the order of a span's `ingestWarnings`.
 */

/** Service name the OpenTelemetry SDKs use when `service.name` is missing. */
export const UNKNOWN_SERVICE = 'unknown_service';

const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);
/** Start times before 2000-01-01 or more than a day ahead of the clock are kept but marked. */
const EARLIEST_PLAUSIBLE_NS = 946_684_800n * 1_000_000_000n;
const FUTURE_TOLERANCE_NS = 86_400n * 1_000_000_000n;

export interface ResourceContext {
  attributes: KeyValue[];
  droppedAttributesCount: number;
  serviceName: string;
  serviceVersion: string;
  environment: string;
  /** Repairs made while reading the resource and scope; each of their spans carries them. */
  marks: Set<string>;
  repairedTexts: ReadonlySet<string> | undefined;
}

export interface ScopeContext {
  name: string;
  version: string;
  attributes: KeyValue[];
  droppedAttributesCount: number;
}

/** Keeps at most the limit of converted attributes and returns them with the dropped count. */
export function limitAttributes(
  attributes: KeyValue[],
  marks: Set<string>,
  limits: FlattenLimits,
): { attributes: KeyValue[]; dropped: number } {
  if (attributes.length <= limits.maxAttributesPerSpan) return { attributes, dropped: 0 };
  marks.add('attributes_dropped');
  const dropped = attributes.length - limits.maxAttributesPerSpan;
  return { attributes: attributes.slice(0, limits.maxAttributesPerSpan), dropped };
}

/**
 * Builds the resource part of a span from the resource's converted attributes, limited
 * to the maximum count. `marks` contains the resource's repairs so far.
 */
export function describeResource(
  attributes: KeyValue[],
  droppedAttributesCount: number,
  marks: Set<string>,
  repairedTexts: ReadonlySet<string> | undefined,
): ResourceContext {
  let serviceName = attributeText(attributes, 'service.name') ?? '';
  if (!serviceName) {
    serviceName = UNKNOWN_SERVICE;
    marks.add('missing_service_name');
  }
  return {
    attributes,
    droppedAttributesCount,
    serviceName,
    serviceVersion: attributeText(attributes, 'service.version') ?? '',
    environment:
      attributeText(attributes, 'deployment.environment.name') ??
      attributeText(attributes, 'deployment.environment') ??
      '',
    marks,
    repairedTexts,
  };
}

/**
 * Builds the scope part of a span from the scope's converted attributes and its texts as
 * sent. The context's marks are the resource's, so the spans of this scope and of the
 * scopes after it carry these repairs.
 */
export function describeScope(
  scope: {
    name: unknown;
    version: unknown;
    attributes: KeyValue[];
    droppedAttributesCount: number;
  },
  context: ValueContext,
  limits: FlattenLimits,
): ScopeContext {
  const { attributes, dropped } = limitAttributes(scope.attributes, context.marks, limits);
  return {
    name: cleanText(scope.name, context),
    version: cleanText(scope.version, context),
    attributes,
    droppedAttributesCount: scope.droppedAttributesCount + dropped,
  };
}

/**
 * Returns why a span is rejected, or undefined when its converted ids are valid. The
 * message quotes the ids as sent.
 */
export function spanIdProblem(
  ids: { traceId: string | undefined; spanId: string | undefined },
  sent: { traceId?: unknown; spanId?: unknown; name?: unknown },
): string | undefined {
  if (ids.traceId === undefined || ids.traceId.length !== 32 || ids.traceId === ZERO_TRACE_ID) {
    return `invalid trace id ${JSON.stringify(describeId(sent.traceId))} in span ${quoteName(sent)}: expected 16 bytes (32 hex digits), not all zero`;
  }
  if (ids.spanId === undefined || ids.spanId.length !== 16 || ids.spanId === ZERO_SPAN_ID) {
    return `invalid span id ${JSON.stringify(describeId(sent.spanId))} in span ${quoteName(sent)}: expected 8 bytes (16 hex digits), not all zero`;
  }
  return undefined;
}

function quoteName(sent: { name?: unknown }): string {
  return JSON.stringify(typeof sent.name === 'string' ? sent.name : '');
}

/** Quotes an id as sent, bytes as hex, cut to 80 characters. */
function describeId(value: unknown): string {
  let text: string;
  if (value instanceof Uint8Array) text = Buffer.from(value).toString('hex');
  else text = typeof value === 'string' ? value : String(value ?? '');
  return text.length > 80 ? `${text.slice(0, 80)}...` : text;
}

/** Checks a converted parent span id. An all-zero or empty one makes a root span. */
export function readParentId(parentSpanId: string | undefined, marks: Set<string>): string {
  if (parentSpanId === undefined || (parentSpanId !== '' && parentSpanId.length !== 16)) {
    marks.add('invalid_parent_span_id');
    return '';
  }
  return parentSpanId === ZERO_SPAN_ID ? '' : parentSpanId;
}

/** The fields of a span that its own message sets, converted and repaired. */
export type SpanFields = Pick<
  SpanRecord,
  | 'traceId'
  | 'spanId'
  | 'parentSpanId'
  | 'traceState'
  | 'flags'
  | 'name'
  | 'kind'
  | 'startTimeUnixNano'
  | 'endTimeUnixNano'
  | 'durationNs'
  | 'statusCode'
  | 'statusMessage'
  | 'attributes'
  | 'droppedAttributesCount'
  | 'events'
  | 'droppedEventsCount'
  | 'links'
  | 'droppedLinksCount'
>;

/** Joins a span's fields with its resource and scope and the fields derived from them. */
export function toSpanRecord(
  span: SpanFields,
  resource: ResourceContext,
  scope: ScopeContext,
  marks: Set<string>,
): SpanRecord {
  const httpStatus = httpStatusCode(span.attributes);
  return {
    traceId: span.traceId,
    spanId: span.spanId,
    parentSpanId: span.parentSpanId,
    traceState: span.traceState,
    flags: span.flags,
    name: span.name,
    kind: span.kind,
    startTimeUnixNano: span.startTimeUnixNano,
    endTimeUnixNano: span.endTimeUnixNano,
    durationNs: span.durationNs,
    statusCode: span.statusCode,
    statusMessage: span.statusMessage,
    serviceName: resource.serviceName,
    serviceVersion: resource.serviceVersion,
    deploymentEnvironment: resource.environment,
    remoteService: remoteServiceName(span.kind, span.attributes),
    httpStatusCode: httpStatus,
    isError: isErrorSpan(span.kind, span.statusCode, httpStatus),
    attributes: span.attributes,
    droppedAttributesCount: span.droppedAttributesCount,
    resourceAttributes: resource.attributes,
    droppedResourceAttributesCount: resource.droppedAttributesCount,
    scopeName: scope.name,
    scopeVersion: scope.version,
    scopeAttributes: scope.attributes,
    events: span.events,
    droppedEventsCount: span.droppedEventsCount,
    links: span.links,
    droppedLinksCount: span.droppedLinksCount,
    ingestWarnings: [...marks],
  };
}

/**
 * Below this (1970-01-12), a start time is no time at all: storage cannot index it, so the
 * span is kept at its end time or the receive time, and the value sent is kept as the
 * attribute `faultline.original_start_time_unix_nano`.
 */
const MIN_STORABLE_NS = 1_000_000_000_000_000n;

/**
 * Largest time storage can keep (2262-04-11T23:47:16.854775807Z): times are DateTime64(9),
 * a signed 64-bit count of nanoseconds.
 */
const MAX_STORABLE_NS = (1n << 63n) - 1n;

/**
 * Latest start time storage can keep (2106-02-07T06:28:15Z). The partition, TTL and sort
 * key of `spans` convert the start to Date and DateTime, which wrap past this second, so a
 * later start would land in a past partition and be dropped at once as expired.
 */
const MAX_START_NS = 4_294_967_295n * 1_000_000_000n;
export const ORIGINAL_START_ATTRIBUTE = 'faultline.original_start_time_unix_nano';

/**
 * Applies the timestamp repairs to a span's start and end as sent: a start too early to
 * store, a start outside the plausible range, an end before the start. It adds marks and
 * the original-start attribute in place.
 */
export function repairTimes(
  sent: bigint,
  sentEnd: bigint,
  target: { marks: Set<string>; nowNs: bigint; attributes: KeyValue[] },
) {
  const { marks, nowNs, attributes } = target;
  let start = sent;
  let end = sentEnd;
  if (end > MAX_STORABLE_NS) {
    marks.add('invalid_timestamp');
    end = 0n;
  }
  if (sent < MIN_STORABLE_NS || sent > MAX_START_NS) {
    marks.add(sent === 0n ? 'missing_start_time' : 'start_time_out_of_range');
    // A start past Int64 (OTLP times are unsigned) is kept as text, like an int attribute out of range.
    const original = sent <= MAX_STORABLE_NS ? { intValue: `${sent}` } : { stringValue: `${sent}` };
    attributes.push({ key: ORIGINAL_START_ATTRIBUTE, value: original });
    start = end >= MIN_STORABLE_NS && end <= MAX_START_NS ? end : nowNs;
  } else if (start < EARLIEST_PLAUSIBLE_NS || start > nowNs + FUTURE_TOLERANCE_NS) {
    marks.add('start_time_out_of_range');
  }
  if (end < start) {
    if (end !== 0n || sent >= MIN_STORABLE_NS) marks.add('end_before_start');
    end = start;
  }
  return {
    startTimeUnixNano: start.toString(),
    endTimeUnixNano: end.toString(),
    durationNs: (end - start).toString(),
  };
}

/**
 * Converts an event from its converted attributes and its other fields as sent. A time
 * that is unreadable (undefined) or past the storable range is marked invalid and read as 0.
 */
export function toSpanEvent(
  event: {
    attributes: KeyValue[];
    timeUnixNano: bigint | undefined;
    name: unknown;
    droppedAttributesCount: number;
  },
  context: ValueContext,
  limits: FlattenLimits,
): SpanEvent {
  const { attributes, dropped } = limitAttributes(event.attributes, context.marks, limits);
  let time = event.timeUnixNano;
  if (time === undefined || time > MAX_STORABLE_NS) {
    context.marks.add('invalid_timestamp');
    time = 0n;
  }
  return {
    timeUnixNano: time.toString(),
    name: cleanText(event.name, context),
    attributes,
    droppedAttributesCount: event.droppedAttributesCount + dropped,
  };
}

/**
 * Returns whether a link's converted ids are valid. A link with invalid ids is dropped
 * before its attributes are read, and the span is marked.
 */
export function hasValidLinkIds(
  link: { traceId: string | undefined; spanId: string | undefined },
  marks: Set<string>,
): boolean {
  const { traceId, spanId } = link;
  if (traceId && traceId.length === 32 && spanId && spanId.length === 16) return true;
  marks.add('invalid_link_dropped');
  return false;
}

/** Converts a link with valid ids from its converted attributes and its other fields as sent. */
export function toSpanLink(
  link: {
    traceId: string;
    spanId: string;
    traceState: unknown;
    attributes: KeyValue[];
    droppedAttributesCount: number;
    flags: number;
  },
  context: ValueContext,
  limits: FlattenLimits,
): SpanLink {
  const { attributes, dropped } = limitAttributes(link.attributes, context.marks, limits);
  return {
    traceId: link.traceId,
    spanId: link.spanId,
    traceState: cleanText(link.traceState, context),
    attributes,
    droppedAttributesCount: link.droppedAttributesCount + dropped,
    flags: link.flags,
  };
}
