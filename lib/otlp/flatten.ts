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
import type { OtlpExportRequest, OtlpLink, OtlpResourceSpans, OtlpSpan } from './request';
import { idToHex, toCount, toDecimalString, toEnumNumber, toKeyValues } from './values';

/** Service name the OpenTelemetry SDKs use when `service.name` is missing. */
export const UNKNOWN_SERVICE = 'unknown_service';

const KIND_NAMES = SPAN_KINDS.map((kind) => `SPAN_KIND_${kind}`);
const STATUS_NAMES = STATUS_CODES.map((code) => `STATUS_CODE_${code}`);
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);

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
  warnings: string[];
}

interface ScopeContext {
  name: string;
  version: string;
  attributes: KeyValue[];
}

/**
 * Flattens an export request into one record a span, carrying its resource and scope.
 * A span whose trace or span id is invalid is rejected and counted; other defects are
 * repaired and listed in the span's `ingestWarnings`.
 */
export function flattenExportRequest(request: OtlpExportRequest): FlattenResult {
  const result: FlattenResult = { spans: [], rejectedSpans: 0, errorMessage: '' };
  for (const resourceSpans of request.resourceSpans ?? []) {
    if (!resourceSpans) continue;
    const resource = readResource(resourceSpans);
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      if (!scopeSpans) continue;
      const scope: ScopeContext = {
        name: scopeSpans.scope?.name ?? '',
        version: scopeSpans.scope?.version ?? '',
        attributes: toKeyValues(scopeSpans.scope?.attributes),
      };
      for (const span of scopeSpans.spans ?? []) {
        const flattened = flattenSpan(span ?? {}, resource, scope);
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

function readResource(resourceSpans: OtlpResourceSpans): ResourceContext {
  const attributes = toKeyValues(resourceSpans.resource?.attributes);
  const warnings: string[] = [];
  let serviceName = attributeText(attributes, 'service.name') ?? '';
  if (!serviceName) {
    serviceName = UNKNOWN_SERVICE;
    warnings.push('missing_service_name');
  }
  return {
    attributes,
    droppedAttributesCount: toCount(resourceSpans.resource?.droppedAttributesCount),
    serviceName,
    serviceVersion: attributeText(attributes, 'service.version') ?? '',
    environment:
      attributeText(attributes, 'deployment.environment.name') ??
      attributeText(attributes, 'deployment.environment') ??
      '',
    warnings,
  };
}

/** Returns the flattened span, or the reason it is rejected. */
function flattenSpan(
  span: OtlpSpan,
  resource: ResourceContext,
  scope: ScopeContext,
): SpanRecord | string {
  const traceId = idToHex(span.traceId);
  if (traceId === undefined || traceId.length !== 32 || traceId === ZERO_TRACE_ID) {
    return `invalid trace id ${JSON.stringify(describeId(span.traceId))} in span ${JSON.stringify(span.name ?? '')}: expected 16 bytes (32 hex digits), not all zero`;
  }
  const spanId = idToHex(span.spanId);
  if (spanId === undefined || spanId.length !== 16 || spanId === ZERO_SPAN_ID) {
    return `invalid span id ${JSON.stringify(describeId(span.spanId))} in span ${JSON.stringify(span.name ?? '')}: expected 8 bytes (16 hex digits), not all zero`;
  }

  const warnings = [...resource.warnings];
  let parentSpanId = idToHex(span.parentSpanId);
  if (parentSpanId === undefined || (parentSpanId !== '' && parentSpanId.length !== 16)) {
    warnings.push('invalid_parent_span_id');
    parentSpanId = '';
  } else if (parentSpanId === ZERO_SPAN_ID) {
    parentSpanId = '';
  }

  const kind = SPAN_KINDS[toEnumNumber(span.kind, KIND_NAMES)] ?? 'UNSPECIFIED';
  const statusCode = STATUS_CODES[toEnumNumber(span.status?.code, STATUS_NAMES)] ?? 'UNSET';
  const times = readTimes(span, warnings);
  const attributes = toKeyValues(span.attributes);
  const httpStatus = httpStatusCode(attributes);

  return {
    traceId,
    spanId,
    parentSpanId,
    traceState: span.traceState ?? '',
    flags: toCount(span.flags),
    name: span.name ?? '',
    kind,
    ...times,
    statusCode,
    statusMessage: span.status?.message ?? '',
    serviceName: resource.serviceName,
    serviceVersion: resource.serviceVersion,
    deploymentEnvironment: resource.environment,
    remoteService: remoteServiceName(kind, attributes),
    httpStatusCode: httpStatus,
    isError: isErrorSpan(kind, statusCode, httpStatus),
    attributes,
    droppedAttributesCount: toCount(span.droppedAttributesCount),
    resourceAttributes: resource.attributes,
    droppedResourceAttributesCount: resource.droppedAttributesCount,
    scopeName: scope.name,
    scopeVersion: scope.version,
    scopeAttributes: scope.attributes,
    events: readEvents(span),
    droppedEventsCount: toCount(span.droppedEventsCount),
    links: readLinks(span.links),
    droppedLinksCount: toCount(span.droppedLinksCount),
    ingestWarnings: warnings,
  };
}

function describeId(value: unknown): string {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  return typeof value === 'string' ? value : String(value ?? '');
}

function readTimes(span: OtlpSpan, warnings: string[]) {
  const start = BigInt(toDecimalString(span.startTimeUnixNano) ?? '0');
  let end = BigInt(toDecimalString(span.endTimeUnixNano) ?? '0');
  if (start <= 0n) warnings.push('missing_start_time');
  if (end < start) {
    warnings.push('end_before_start');
    end = start;
  }
  return {
    startTimeUnixNano: start.toString(),
    endTimeUnixNano: end.toString(),
    durationNs: (end - start).toString(),
  };
}

function readEvents(span: OtlpSpan): SpanEvent[] {
  if (!Array.isArray(span.events)) return [];
  return span.events.map((event) => ({
    timeUnixNano: toDecimalString(event?.timeUnixNano) ?? '0',
    name: event?.name ?? '',
    attributes: toKeyValues(event?.attributes),
    droppedAttributesCount: toCount(event?.droppedAttributesCount),
  }));
}

function readLinks(links: OtlpLink[] | null | undefined): SpanLink[] {
  if (!Array.isArray(links)) return [];
  const result: SpanLink[] = [];
  for (const link of links) {
    const traceId = idToHex(link?.traceId);
    const spanId = idToHex(link?.spanId);
    if (!traceId || traceId.length !== 32 || !spanId || spanId.length !== 16) continue;
    result.push({
      traceId,
      spanId,
      traceState: link.traceState ?? '',
      attributes: toKeyValues(link.attributes),
      droppedAttributesCount: toCount(link.droppedAttributesCount),
      flags: toCount(link.flags),
    });
  }
  return result;
}
