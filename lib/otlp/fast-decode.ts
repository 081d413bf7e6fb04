import protobuf from 'protobufjs';
import { attributeText } from '../model/attributes';
import { httpStatusCode, isErrorSpan, remoteServiceName } from '../model/conventions';
import {
  SPAN_KINDS,
  STATUS_CODES,
  type AnyValue,
  type KeyValue,
  type SpanEvent,
  type SpanLink,
  type SpanRecord,
} from '../model/span';
import { FaultlineError, errorMessage } from '../errors';
import { repairTimes, UNKNOWN_SERVICE, type FlattenResult } from './flatten';

/*
 * Decodes an OTLP protobuf ExportTraceServiceRequest straight into span records with
 * protobufjs's Reader, without the generic decoder's message object for every span,
 * attribute and value. The result equals flattenExportRequest(decodeProtobufRequest(body))
 * (test/otlp-fast-decode.test.ts checks it), with two differences. A field sent with
 * the wrong wire type is skipped here, where the generic decoder reads it as its
 * declared type. A span without a parent_span_id field is a root span here, with no
 * `invalid_parent_span_id` warning.
 *
 * NOTE: the limits and text repairs of flattenExportRequest (attribute count, value
 * length, nesting depth, invalid UTF-8) are not applied here. The collector therefore
 * does not use this decoder yet, and only the decode benchmark runs it.
 */

type Reader = protobuf.Reader;

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH = 2;
const WIRE_FIXED32 = 5;
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);
const TWO_TO_32 = 4294967296n;

interface Resource {
  attributes: KeyValue[];
  droppedAttributesCount: number;
  serviceName: string;
  serviceVersion: string;
  environment: string;
  warnings: string[];
}

interface Scope {
  name: string;
  version: string;
  attributes: KeyValue[];
}

/** Reads an unsigned fixed64 as a BigInt, the way protobufjs reads it as an unsigned Long. */
function readFixed64(reader: Reader): bigint {
  const low = reader.fixed32();
  const high = reader.fixed32();
  return high === 0 ? BigInt(low) : BigInt(high) * TWO_TO_32 + BigInt(low);
}

function hex(reader: Reader): string {
  const bytes = reader.bytes();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');
}

/** Reads one length-delimited field's end offset. */
function end(reader: Reader): number {
  return reader.uint32() + reader.pos;
}

function readAnyValue(reader: Reader, limit: number): AnyValue {
  let text: string | undefined;
  let bool: boolean | undefined;
  let int: string | undefined;
  let double: number | undefined;
  let array: AnyValue[] | undefined;
  let kvlist: KeyValue[] | undefined;
  let bytes: string | undefined;
  while (reader.pos < limit) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === WIRE_LENGTH) text = reader.string();
    else if (field === 2 && wire === WIRE_VARINT) bool = reader.bool();
    else if (field === 3 && wire === WIRE_VARINT) int = reader.int64().toString();
    else if (field === 4 && wire === WIRE_FIXED64) double = reader.double();
    else if (field === 5 && wire === WIRE_LENGTH) array = readArrayValue(reader, end(reader));
    else if (field === 6 && wire === WIRE_LENGTH) kvlist = readKeyValueList(reader, end(reader));
    else if (field === 7 && wire === WIRE_LENGTH)
      bytes = Buffer.from(reader.bytes()).toString('base64');
    else reader.skipType(wire);
  }
  // The same order of preference as toAnyValue when a body sets several oneof members.
  if (text !== undefined) return { stringValue: text };
  if (bool !== undefined) return { boolValue: bool };
  if (int !== undefined) return { intValue: int };
  if (double !== undefined) return { doubleValue: double };
  if (array !== undefined) return { arrayValue: { values: array } };
  if (kvlist !== undefined) return { kvlistValue: { values: kvlist } };
  if (bytes !== undefined) return { bytesValue: bytes };
  return { stringValue: '' };
}

function readArrayValue(reader: Reader, limit: number): AnyValue[] {
  const values: AnyValue[] = [];
  while (reader.pos < limit) {
    const tag = reader.uint32();
    if (tag === ((1 << 3) | WIRE_LENGTH)) values.push(readAnyValue(reader, end(reader)));
    else reader.skipType(tag & 7);
  }
  return values;
}

function readKeyValueList(reader: Reader, limit: number): KeyValue[] {
  const values: KeyValue[] = [];
  while (reader.pos < limit) {
    const tag = reader.uint32();
    if (tag === ((1 << 3) | WIRE_LENGTH)) values.push(readKeyValue(reader, end(reader)));
    else reader.skipType(tag & 7);
  }
  return values;
}

function readKeyValue(reader: Reader, limit: number): KeyValue {
  let key = '';
  let value: AnyValue = { stringValue: '' };
  while (reader.pos < limit) {
    const tag = reader.uint32();
    if (tag === ((1 << 3) | WIRE_LENGTH)) key = reader.string();
    else if (tag === ((2 << 3) | WIRE_LENGTH)) value = readAnyValue(reader, end(reader));
    else reader.skipType(tag & 7);
  }
  return { key, value };
}

function readResource(reader: Reader, limit: number): Resource {
  const attributes: KeyValue[] = [];
  let droppedAttributesCount = 0;
  while (reader.pos < limit) {
    const tag = reader.uint32();
    if (tag === ((1 << 3) | WIRE_LENGTH)) attributes.push(readKeyValue(reader, end(reader)));
    else if (tag === ((2 << 3) | WIRE_VARINT)) droppedAttributesCount = reader.uint32();
    else reader.skipType(tag & 7);
  }
  return describeResource(attributes, droppedAttributesCount);
}

function describeResource(attributes: KeyValue[], droppedAttributesCount: number): Resource {
  const warnings: string[] = [];
  let serviceName = attributeText(attributes, 'service.name') ?? '';
  if (!serviceName) {
    serviceName = UNKNOWN_SERVICE;
    warnings.push('missing_service_name');
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
    warnings,
  };
}

function readScope(reader: Reader, limit: number): Scope {
  const scope: Scope = { name: '', version: '', attributes: [] };
  while (reader.pos < limit) {
    const tag = reader.uint32();
    if (tag === ((1 << 3) | WIRE_LENGTH)) scope.name = reader.string();
    else if (tag === ((2 << 3) | WIRE_LENGTH)) scope.version = reader.string();
    else if (tag === ((3 << 3) | WIRE_LENGTH))
      scope.attributes.push(readKeyValue(reader, end(reader)));
    else reader.skipType(tag & 7);
  }
  return scope;
}

function readEvent(reader: Reader, limit: number): SpanEvent {
  const event: SpanEvent = {
    timeUnixNano: '0',
    name: '',
    attributes: [],
    droppedAttributesCount: 0,
  };
  while (reader.pos < limit) {
    const tag = reader.uint32();
    if (tag === ((1 << 3) | WIRE_FIXED64)) event.timeUnixNano = readFixed64(reader).toString();
    else if (tag === ((2 << 3) | WIRE_LENGTH)) event.name = reader.string();
    else if (tag === ((3 << 3) | WIRE_LENGTH))
      event.attributes.push(readKeyValue(reader, end(reader)));
    else if (tag === ((4 << 3) | WIRE_VARINT)) event.droppedAttributesCount = reader.uint32();
    else reader.skipType(tag & 7);
  }
  return event;
}

/** Returns the link, or undefined when its ids are invalid, as readLinks drops those. */
function readLink(reader: Reader, limit: number): SpanLink | undefined {
  const link: SpanLink = {
    traceId: '',
    spanId: '',
    traceState: '',
    attributes: [],
    droppedAttributesCount: 0,
    flags: 0,
  };
  while (reader.pos < limit) {
    const tag = reader.uint32();
    if (tag === ((1 << 3) | WIRE_LENGTH)) link.traceId = hex(reader);
    else if (tag === ((2 << 3) | WIRE_LENGTH)) link.spanId = hex(reader);
    else if (tag === ((3 << 3) | WIRE_LENGTH)) link.traceState = reader.string();
    else if (tag === ((4 << 3) | WIRE_LENGTH))
      link.attributes.push(readKeyValue(reader, end(reader)));
    else if (tag === ((5 << 3) | WIRE_VARINT)) link.droppedAttributesCount = reader.uint32();
    else if (tag === ((6 << 3) | WIRE_FIXED32)) link.flags = reader.fixed32();
    else reader.skipType(tag & 7);
  }
  return link.traceId.length === 32 && link.spanId.length === 16 ? link : undefined;
}

/** The fields of a span as sent, before validation. */
interface RawSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  traceState: string;
  flags: number;
  name: string;
  kind: number;
  start: bigint;
  end: bigint;
  attributes: KeyValue[];
  droppedAttributesCount: number;
  events: SpanEvent[];
  droppedEventsCount: number;
  links: SpanLink[];
  /** Links dropped because their ids are invalid. */
  invalidLinks: number;
  droppedLinksCount: number;
  statusCode: number;
  statusMessage: string;
}

function readStatus(reader: Reader, limit: number, span: RawSpan): void {
  span.statusCode = 0;
  span.statusMessage = '';
  while (reader.pos < limit) {
    const tag = reader.uint32();
    if (tag === ((2 << 3) | WIRE_LENGTH)) span.statusMessage = reader.string();
    else if (tag === ((3 << 3) | WIRE_VARINT)) span.statusCode = reader.int32();
    else reader.skipType(tag & 7);
  }
}

function readSpanField(reader: Reader, tag: number, span: RawSpan): void {
  switch (tag) {
    case (1 << 3) | WIRE_LENGTH:
      span.traceId = hex(reader);
      return;
    case (2 << 3) | WIRE_LENGTH:
      span.spanId = hex(reader);
      return;
    case (3 << 3) | WIRE_LENGTH:
      span.traceState = reader.string();
      return;
    case (4 << 3) | WIRE_LENGTH:
      span.parentSpanId = hex(reader);
      return;
    case (5 << 3) | WIRE_LENGTH:
      span.name = reader.string();
      return;
    case (6 << 3) | WIRE_VARINT:
      span.kind = reader.int32();
      return;
    case (7 << 3) | WIRE_FIXED64:
      span.start = readFixed64(reader);
      return;
    case (8 << 3) | WIRE_FIXED64:
      span.end = readFixed64(reader);
      return;
    case (9 << 3) | WIRE_LENGTH:
      span.attributes.push(readKeyValue(reader, end(reader)));
      return;
    case (10 << 3) | WIRE_VARINT:
      span.droppedAttributesCount = reader.uint32();
      return;
    case (11 << 3) | WIRE_LENGTH:
      span.events.push(readEvent(reader, end(reader)));
      return;
    case (12 << 3) | WIRE_VARINT:
      span.droppedEventsCount = reader.uint32();
      return;
    case (13 << 3) | WIRE_LENGTH: {
      const link = readLink(reader, end(reader));
      if (link) span.links.push(link);
      else span.invalidLinks += 1;
      return;
    }
    case (14 << 3) | WIRE_VARINT:
      span.droppedLinksCount = reader.uint32();
      return;
    case (15 << 3) | WIRE_LENGTH:
      readStatus(reader, end(reader), span);
      return;
    case (16 << 3) | WIRE_FIXED32:
      span.flags = reader.fixed32();
      return;
    default:
      reader.skipType(tag & 7);
  }
}

function readRawSpan(reader: Reader, limit: number): RawSpan {
  const span: RawSpan = {
    traceId: '',
    spanId: '',
    parentSpanId: '',
    traceState: '',
    flags: 0,
    name: '',
    kind: 0,
    start: 0n,
    end: 0n,
    attributes: [],
    droppedAttributesCount: 0,
    events: [],
    droppedEventsCount: 0,
    links: [],
    invalidLinks: 0,
    droppedLinksCount: 0,
    statusCode: 0,
    statusMessage: '',
  };
  while (reader.pos < limit) readSpanField(reader, reader.uint32(), span);
  return span;
}

/** Returns the span record, or the reason the span is rejected, as flattenSpan does. */
function toRecord(
  raw: RawSpan,
  resource: Resource,
  scope: Scope,
  nowNs: bigint,
): SpanRecord | string {
  if (raw.traceId.length !== 32 || raw.traceId === ZERO_TRACE_ID) {
    return `invalid trace id ${JSON.stringify(raw.traceId)} in span ${JSON.stringify(raw.name)}: expected 16 bytes (32 hex digits), not all zero`;
  }
  if (raw.spanId.length !== 16 || raw.spanId === ZERO_SPAN_ID) {
    return `invalid span id ${JSON.stringify(raw.spanId)} in span ${JSON.stringify(raw.name)}: expected 8 bytes (16 hex digits), not all zero`;
  }
  const warnings = [...resource.warnings];
  let parentSpanId = raw.parentSpanId;
  if (parentSpanId !== '' && parentSpanId.length !== 16) {
    warnings.push('invalid_parent_span_id');
    parentSpanId = '';
  } else if (parentSpanId === ZERO_SPAN_ID) {
    parentSpanId = '';
  }
  const kind = SPAN_KINDS[raw.kind] ?? 'UNSPECIFIED';
  const statusCode = STATUS_CODES[raw.statusCode] ?? 'UNSET';
  if (raw.invalidLinks > 0) warnings.push('invalid_link_dropped');
  const marks = new Set(warnings);
  const times = repairTimes(raw.start, raw.end, { marks, nowNs, attributes: raw.attributes });
  const httpStatus = httpStatusCode(raw.attributes);
  return {
    traceId: raw.traceId,
    spanId: raw.spanId,
    parentSpanId,
    traceState: raw.traceState,
    flags: raw.flags,
    name: raw.name,
    kind,
    ...times,
    statusCode,
    statusMessage: raw.statusMessage,
    serviceName: resource.serviceName,
    serviceVersion: resource.serviceVersion,
    deploymentEnvironment: resource.environment,
    remoteService: remoteServiceName(kind, raw.attributes),
    httpStatusCode: httpStatus,
    isError: isErrorSpan(kind, statusCode, httpStatus),
    attributes: raw.attributes,
    droppedAttributesCount: raw.droppedAttributesCount,
    resourceAttributes: resource.attributes,
    droppedResourceAttributesCount: resource.droppedAttributesCount,
    scopeName: scope.name,
    scopeVersion: scope.version,
    scopeAttributes: scope.attributes,
    events: raw.events,
    droppedEventsCount: raw.droppedEventsCount,
    links: raw.links,
    droppedLinksCount: raw.droppedLinksCount,
    ingestWarnings: [...marks],
  };
}

/**
 * Reads one ScopeSpans. Spans are decoded first and validated after the whole message,
 * because the scope may follow its spans on the wire.
 */
function readScopeSpans(reader: Reader, limit: number) {
  let scope: Scope = { name: '', version: '', attributes: [] };
  const spans: RawSpan[] = [];
  while (reader.pos < limit) {
    const tag = reader.uint32();
    if (tag === ((1 << 3) | WIRE_LENGTH)) scope = readScope(reader, end(reader));
    else if (tag === ((2 << 3) | WIRE_LENGTH)) spans.push(readRawSpan(reader, end(reader)));
    else reader.skipType(tag & 7);
  }
  return { scope, spans };
}

function readResourceSpans(
  reader: Reader,
  limit: number,
  result: FlattenResult,
  nowNs: bigint,
): void {
  let resource: Resource | undefined;
  const scopes: { scope: Scope; spans: RawSpan[] }[] = [];
  while (reader.pos < limit) {
    const tag = reader.uint32();
    if (tag === ((1 << 3) | WIRE_LENGTH)) resource = readResource(reader, end(reader));
    else if (tag === ((2 << 3) | WIRE_LENGTH)) scopes.push(readScopeSpans(reader, end(reader)));
    else reader.skipType(tag & 7);
  }
  const finalResource = resource ?? describeResource([], 0);
  for (const { scope, spans } of scopes) {
    for (const raw of spans) {
      const record = toRecord(raw, finalResource, scope, nowNs);
      if (typeof record === 'string') {
        result.rejectedSpans += 1;
        if (!result.errorMessage) result.errorMessage = record;
      } else {
        result.spans.push(record);
      }
    }
  }
}

/** Decodes an OTLP/HTTP protobuf body into span records; see the note at the top. */
export function decodeSpansFast(body: Uint8Array): FlattenResult {
  const result: FlattenResult = { spans: [], rejectedSpans: 0, errorMessage: '' };
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  try {
    // A Buffer view gets protobufjs's BufferReader, which decodes UTF-8 natively.
    const buffer = Buffer.isBuffer(body)
      ? body
      : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    const reader = protobuf.Reader.create(buffer);
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      if (tag === ((1 << 3) | WIRE_LENGTH)) readResourceSpans(reader, end(reader), result, nowNs);
      else reader.skipType(tag & 7);
    }
  } catch (error) {
    throw new FaultlineError(
      'FL_UNDECODABLE_BODY',
      `invalid protobuf ExportTraceServiceRequest (${body.length} bytes): ${errorMessage(error)}; send an OTLP protobuf body or use Content-Type application/json for OTLP/JSON`,
    );
  }
  return result;
}
