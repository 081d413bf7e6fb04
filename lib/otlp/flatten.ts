import {
  SPAN_KINDS,
  STATUS_CODES,
  type KeyValue,
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
  describeResource,
  describeScope,
  hasValidLinkIds,
  limitAttributes,
  readParentId,
  repairTimes,
  spanIdProblem,
  toSpanEvent,
  toSpanLink,
  toSpanRecord,
  type ResourceContext,
  type ScopeContext,
} from './span-repairs';
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

const KIND_NAMES = SPAN_KINDS.map((kind) => `SPAN_KIND_${kind}`);
const STATUS_NAMES = STATUS_CODES.map((code) => `STATUS_CODE_${code}`);

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
  return limitAttributes(toKeyValues(list, context), context.marks, limits);
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
  const droppedAttributesCount = toCount(resource.droppedAttributesCount) + dropped;
  return describeResource(attributes, droppedAttributesCount, marks, repairedTexts);
}

function readScope(
  scopeSpans: OtlpScopeSpans,
  resource: ResourceContext,
  limits: FlattenLimits,
): ScopeContext {
  const context = valueContext(limits, resource.marks, resource.repairedTexts);
  const scope = objectOrEmpty(scopeSpans.scope);
  const converted = {
    name: scope.name,
    version: scope.version,
    attributes: toKeyValues(scope.attributes, context),
    droppedAttributesCount: toCount(scope.droppedAttributesCount),
  };
  return describeScope(converted, context, limits);
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
  const parentSpanId = readParentId(idToHex(span.parentSpanId), marks);
  const kind = SPAN_KINDS[toEnumNumber(span.kind, KIND_NAMES)] ?? 'UNSPECIFIED';
  const status = objectOrEmpty(span.status);
  const statusCode = STATUS_CODES[toEnumNumber(status.code, STATUS_NAMES)] ?? 'UNSET';
  const { attributes, dropped } = readAttributes(span.attributes, context, limits);
  const times = readTimes(span, marks, spanContext.nowNs, attributes);
  const fields = {
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
    attributes,
    droppedAttributesCount: toCount(span.droppedAttributesCount) + dropped,
    events: readEvents(span, context, limits),
    droppedEventsCount: toCount(span.droppedEventsCount),
    links: readLinks(span.links, context, limits),
    droppedLinksCount: toCount(span.droppedLinksCount),
  };
  return toSpanRecord(fields, resource, scope, marks);
}

/**
 * Reads nanoseconds since the epoch. Returns undefined for a value that is not an integer
 * or does not fit in UInt64, as such a time is invalid.
 */
function parseNanos(value: unknown): bigint | undefined {
  const text = toDecimalString(value);
  if (text === undefined) return undefined;
  const nanos = BigInt(text);
  return nanos < 0n || nanos >= 1n << 64n ? undefined : nanos;
}

/** Reads a span time. An invalid one is marked and read as 0, which repairTimes repairs. */
function readNanos(value: unknown, marks: Set<string>): bigint {
  const nanos = parseNanos(value);
  if (nanos !== undefined) return nanos;
  marks.add('invalid_timestamp');
  return 0n;
}

function readTimes(span: OtlpSpan, marks: Set<string>, nowNs: bigint, attributes: KeyValue[]) {
  const sent = readNanos(span.startTimeUnixNano, marks);
  const end = readNanos(span.endTimeUnixNano, marks);
  return repairTimes(sent, end, { marks, nowNs, attributes });
}

function readEvents(span: OtlpSpan, context: ValueContext, limits: FlattenLimits) {
  return objects(span.events).map((event) => {
    const converted = {
      attributes: toKeyValues(event.attributes, context),
      timeUnixNano: parseNanos(event.timeUnixNano),
      name: event.name,
      droppedAttributesCount: toCount(event.droppedAttributesCount),
    };
    return toSpanEvent(converted, context, limits);
  });
}

function readLinks(
  links: OtlpLink[] | null | undefined,
  context: ValueContext,
  limits: FlattenLimits,
): SpanLink[] {
  const result: SpanLink[] = [];
  for (const link of objects(links)) {
    const ids = { traceId: idToHex(link.traceId), spanId: idToHex(link.spanId) };
    if (!hasValidLinkIds(ids, context.marks)) continue;
    const converted = {
      traceId: ids.traceId as string,
      spanId: ids.spanId as string,
      traceState: link.traceState,
      attributes: toKeyValues(link.attributes, context),
      droppedAttributesCount: toCount(link.droppedAttributesCount),
      flags: toCount(link.flags),
    };
    result.push(toSpanLink(converted, context, limits));
  }
  return result;
}
