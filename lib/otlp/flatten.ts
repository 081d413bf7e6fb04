import { attributeText } from '../model/attributes';
import { httpStatusCode, isErrorSpan, remoteServiceName } from '../model/conventions';
import {
  SPAN_KINDS,
  STATUS_CODES,
  type KeyValue,
  type SpanEvent,
  type SpanLink,
  type SpanRecord,
} from '../model/span';
import type {
  OtlpExportRequest,
  OtlpKeyValue,
  OtlpLink,
  OtlpResourceSpans,
  OtlpScopeSpans,
  OtlpSpan,
} from './request';
import {
  cleanText,
  REPAIRED_TEXTS,
  idToHex,
  toCount,
  toDecimalString,
  toEnumNumber,
  toKeyValues,
  type ValueContext,
} from './values';

/** Service name the OpenTelemetry SDKs use when `service.name` is missing. */
export const UNKNOWN_SERVICE = 'unknown_service';

const KIND_NAMES = SPAN_KINDS.map((kind) => `SPAN_KIND_${kind}`);
const STATUS_NAMES = STATUS_CODES.map((code) => `STATUS_CODE_${code}`);
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);
/** Start times before 2000-01-01 or more than a day ahead of the clock are kept but marked. */
const EARLIEST_PLAUSIBLE_NS = 946_684_800n * 1_000_000_000n;
const FUTURE_TOLERANCE_NS = 86_400n * 1_000_000_000n;

/** Limits the flattener enforces by repairing, never by rejecting. */
export interface FlattenLimits {
  /** Attributes kept per span, event, link, resource and scope; the rest are counted as dropped. */
  maxAttributesPerSpan: number;
  /** Characters kept of a string attribute value. */
  maxAttributeValueLength: number;
}

export const DEFAULT_FLATTEN_LIMITS: FlattenLimits = {
  maxAttributesPerSpan: 512,
  maxAttributeValueLength: 32768,
};

/** Spans of one export request, with the count and first reason of those rejected. */
export interface FlattenResult {
  spans: SpanRecord[];
  rejectedSpans: number;
  /** Describes the first rejected span, empty when none was rejected. */
  errorMessage: string;
}

interface ResourceContext {
  attributes: KeyValue[];
  droppedAttributesCount: number;
  serviceName: string;
  serviceVersion: string;
  environment: string;
  /** Repairs made while reading the resource and scope; each of their spans carries them. */
  marks: Set<string>;
  repairedTexts: ReadonlySet<string> | undefined;
}

interface ScopeContext {
  name: string;
  version: string;
  attributes: KeyValue[];
  droppedAttributesCount: number;
}

interface SpanContext {
  limits: FlattenLimits;
  nowNs: bigint;
}

/**
 * Flattens an export request into one record a span, carrying its resource and scope.
 * A span whose trace or span id is invalid is rejected and counted; other defects are
 * repaired and listed in the span's `ingestWarnings`. Any decoded shape is accepted:
 * fields of the wrong type read as absent, so hostile input cannot throw here.
 */
export function flattenExportRequest(
  request: OtlpExportRequest,
  limits: FlattenLimits = DEFAULT_FLATTEN_LIMITS,
): FlattenResult {
  const result: FlattenResult = { spans: [], rejectedSpans: 0, errorMessage: '' };
  const context: SpanContext = { limits, nowNs: BigInt(Date.now()) * 1_000_000n };
  for (const resourceSpans of objects(request?.resourceSpans)) {
    const resource = readResource(resourceSpans, limits, request?.[REPAIRED_TEXTS]);
    for (const scopeSpans of objects(resourceSpans.scopeSpans)) {
      const scope = readScope(scopeSpans, resource, limits);
      for (const span of asArray(scopeSpans.spans)) {
        const input = span && typeof span === 'object' ? span : {};
        const flattened = flattenSpan(input, resource, scope, context);
        if (typeof flattened === 'string') {
          result.rejectedSpans += 1;
          if (!result.errorMessage) result.errorMessage = flattened;
        } else {
          result.spans.push(flattened);
        }
      }
    }
  }
  return result;
}

/** Counts the spans of a request without converting them, to enforce the per-request limit. */
export function countSpans(request: OtlpExportRequest): number {
  let count = 0;
  for (const resourceSpans of objects(request?.resourceSpans)) {
    for (const scopeSpans of objects(resourceSpans.scopeSpans)) {
      count += asArray(scopeSpans.spans).length;
    }
  }
  return count;
}

function asArray<T>(value: T[] | null | undefined): T[] {
  return Array.isArray(value) ? value : [];
}

function objects<T>(value: (T | null | undefined)[] | null | undefined): T[] {
  return asArray(value).filter((item): item is T => !!item && typeof item === 'object');
}

function objectOrEmpty<T extends object>(value: T | null | undefined): Partial<T> {
  return value && typeof value === 'object' ? value : {};
}

function valueContext(
  limits: FlattenLimits,
  marks: Set<string>,
  repairedTexts: ReadonlySet<string> | undefined,
): ValueContext {
  return { maxValueLength: limits.maxAttributeValueLength, marks, repairedTexts };
}

/** Converts attributes and keeps at most the limit; returns the kept ones and the dropped count. */
function readAttributes(
  list: OtlpKeyValue[] | null | undefined,
  context: ValueContext,
  limits: FlattenLimits,
): { attributes: KeyValue[]; dropped: number } {
  const attributes = toKeyValues(list, context);
  if (attributes.length <= limits.maxAttributesPerSpan) return { attributes, dropped: 0 };
  context.marks.add('attributes_dropped');
  const dropped = attributes.length - limits.maxAttributesPerSpan;
  return { attributes: attributes.slice(0, limits.maxAttributesPerSpan), dropped };
}

function readResource(
  resourceSpans: OtlpResourceSpans,
  limits: FlattenLimits,
  repairedTexts: ReadonlySet<string> | undefined,
): ResourceContext {
  const marks = new Set<string>();
  const context = valueContext(limits, marks, repairedTexts);
  const resource = objectOrEmpty(resourceSpans.resource);
  const { attributes, dropped } = readAttributes(resource.attributes, context, limits);
  let serviceName = attributeText(attributes, 'service.name') ?? '';
  if (!serviceName) {
    serviceName = UNKNOWN_SERVICE;
    marks.add('missing_service_name');
  }
  return {
    attributes,
    droppedAttributesCount: toCount(resource.droppedAttributesCount) + dropped,
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

function readScope(
  scopeSpans: OtlpScopeSpans,
  resource: ResourceContext,
  limits: FlattenLimits,
): ScopeContext {
  const context = valueContext(limits, resource.marks, resource.repairedTexts);
  const scope = objectOrEmpty(scopeSpans.scope);
  const { attributes, dropped } = readAttributes(scope.attributes, context, limits);
  return {
    name: cleanText(scope.name, context),
    version: cleanText(scope.version, context),
    attributes,
    droppedAttributesCount: toCount(scope.droppedAttributesCount) + dropped,
  };
}

/**
 * Returns why a span is rejected, or undefined when its converted ids are valid. The
 * message quotes the ids as sent. Exported for every decoder, so all reject alike.
 */
export function spanIdProblem(
  ids: { traceId: string | undefined; spanId: string | undefined },
  sent: { traceId?: unknown; spanId?: unknown; name?: unknown },
): string | undefined {
  const name = JSON.stringify(typeof sent.name === 'string' ? sent.name : '');
  if (ids.traceId === undefined || ids.traceId.length !== 32 || ids.traceId === ZERO_TRACE_ID) {
    return `invalid trace id ${JSON.stringify(describeId(sent.traceId))} in span ${name}: expected 16 bytes (32 hex digits), not all zero`;
  }
  if (ids.spanId === undefined || ids.spanId.length !== 16 || ids.spanId === ZERO_SPAN_ID) {
    return `invalid span id ${JSON.stringify(describeId(sent.spanId))} in span ${name}: expected 8 bytes (16 hex digits), not all zero`;
  }
  return undefined;
}

/** Returns the flattened span, or the reason it is rejected. */
function flattenSpan(
  span: OtlpSpan,
  resource: ResourceContext,
  scope: ScopeContext,
  spanContext: SpanContext,
): SpanRecord | string {
  const traceId = idToHex(span.traceId);
  const spanId = idToHex(span.spanId);
  const rejection = spanIdProblem({ traceId, spanId }, span);
  if (rejection) return rejection;

  const { limits } = spanContext;
  const marks = new Set(resource.marks);
  const context = valueContext(limits, marks, resource.repairedTexts);
  const parentSpanId = readParentId(span.parentSpanId, marks);
  const kind = SPAN_KINDS[toEnumNumber(span.kind, KIND_NAMES)] ?? 'UNSPECIFIED';
  const status = objectOrEmpty(span.status);
  const statusCode = STATUS_CODES[toEnumNumber(status.code, STATUS_NAMES)] ?? 'UNSET';
  const { attributes, dropped } = readAttributes(span.attributes, context, limits);
  const times = readTimes(span, marks, spanContext.nowNs, attributes);
  const httpStatus = httpStatusCode(attributes);

  return {
    traceId: traceId as string,
    spanId: spanId as string,
    parentSpanId,
    traceState: cleanText(span.traceState, context),
    flags: toCount(span.flags),
    name: cleanText(span.name, context),
    kind,
    ...times,
    statusCode,
    statusMessage: cleanText(status.message, context),
    serviceName: resource.serviceName,
    serviceVersion: resource.serviceVersion,
    deploymentEnvironment: resource.environment,
    remoteService: remoteServiceName(kind, attributes),
    httpStatusCode: httpStatus,
    isError: isErrorSpan(kind, statusCode, httpStatus),
    attributes,
    droppedAttributesCount: toCount(span.droppedAttributesCount) + dropped,
    resourceAttributes: resource.attributes,
    droppedResourceAttributesCount: resource.droppedAttributesCount,
    scopeName: scope.name,
    scopeVersion: scope.version,
    scopeAttributes: scope.attributes,
    events: readEvents(span, context, limits),
    droppedEventsCount: toCount(span.droppedEventsCount),
    links: readLinks(span.links, context, limits),
    droppedLinksCount: toCount(span.droppedLinksCount),
    ingestWarnings: [...marks],
  };
}

function describeId(value: unknown): string {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  const text = typeof value === 'string' ? value : String(value ?? '');
  return text.length > 80 ? `${text.slice(0, 80)}...` : text;
}

function readParentId(value: unknown, marks: Set<string>): string {
  const parentSpanId = idToHex(value);
  if (parentSpanId === undefined || (parentSpanId !== '' && parentSpanId.length !== 16)) {
    marks.add('invalid_parent_span_id');
    return '';
  }
  return parentSpanId === ZERO_SPAN_ID ? '' : parentSpanId;
}

function readNanos(value: unknown, marks: Set<string>): bigint {
  const text = toDecimalString(value);
  if (text === undefined) {
    marks.add('invalid_timestamp');
    return 0n;
  }
  const nanos = BigInt(text);
  // Nanoseconds since the epoch fit in UInt64, so negative or larger values are invalid.
  // Span times past the storable range are repaired by repairTimes, event times below.
  if (nanos < 0n || nanos >= 1n << 64n) {
    marks.add('invalid_timestamp');
    return 0n;
  }
  return nanos;
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

function readTimes(span: OtlpSpan, marks: Set<string>, nowNs: bigint, attributes: KeyValue[]) {
  const sent = readNanos(span.startTimeUnixNano, marks);
  const end = readNanos(span.endTimeUnixNano, marks);
  return repairTimes(sent, end, { marks, nowNs, attributes });
}

/**
 * Applies the timestamp repairs to a span's start and end as sent: a start too early to
 * store, a start outside the plausible range, an end before the start. Exported so that
 * every decoder repairs alike; it adds marks and the original-start attribute in place.
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
    attributes.push({ key: ORIGINAL_START_ATTRIBUTE, value: { intValue: sent.toString() } });
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

/** Reads an event time. One past the storable range is marked invalid and read as 0. */
function readEventNanos(value: unknown, marks: Set<string>): bigint {
  const nanos = readNanos(value, marks);
  if (nanos <= MAX_STORABLE_NS) return nanos;
  marks.add('invalid_timestamp');
  return 0n;
}

function readEvents(span: OtlpSpan, context: ValueContext, limits: FlattenLimits): SpanEvent[] {
  return objects(span.events).map((event) => {
    const { attributes, dropped } = readAttributes(event.attributes, context, limits);
    return {
      timeUnixNano: readEventNanos(event.timeUnixNano, context.marks).toString(),
      name: cleanText(event.name, context),
      attributes,
      droppedAttributesCount: toCount(event.droppedAttributesCount) + dropped,
    };
  });
}

function readLinks(
  links: OtlpLink[] | null | undefined,
  context: ValueContext,
  limits: FlattenLimits,
): SpanLink[] {
  const result: SpanLink[] = [];
  for (const link of objects(links)) {
    const traceId = idToHex(link.traceId);
    const spanId = idToHex(link.spanId);
    if (!traceId || traceId.length !== 32 || !spanId || spanId.length !== 16) {
      context.marks.add('invalid_link_dropped');
      continue;
    }
    const { attributes, dropped } = readAttributes(link.attributes, context, limits);
    result.push({
      traceId,
      spanId,
      traceState: cleanText(link.traceState, context),
      attributes,
      droppedAttributesCount: toCount(link.droppedAttributesCount) + dropped,
      flags: toCount(link.flags),
    });
  }
  return result;
}
