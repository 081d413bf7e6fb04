import type protobuf from 'protobufjs';
import {
  SPAN_KINDS,
  STATUS_CODES,
  type KeyValue,
  type SpanLink,
  type SpanRecord,
} from '../model/span';
import {
  createBodyReader,
  decodeProtobufRequest,
  undecodableProtobuf,
  type ReplacementTexts,
} from './decode';
import { addMarks, joinMarks, ValueReader, type Marks } from './fast-values';
import {
  DEFAULT_FLATTEN_LIMITS,
  flattenExportRequest,
  type FlattenLimits,
  type FlattenResult,
} from './flatten';
import { EntityRefMessage } from './proto';
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
import { cleanText, type ValueContext } from './values';

/*
 * Decodes an OTLP protobuf ExportTraceServiceRequest straight into span records with
 * protobufjs's Reader, without the generic decoder's message object for every span,
 * attribute and value. The collector decodes OTLP/HTTP protobuf bodies and OTLP/gRPC
 * messages with it. The result, the error of an undecodable body included, equals
 * flattenExportRequest(decodeProtobufRequest(body), limits), with the same limits, repairs,
 * warnings and rejections; test/otlp-fast-decode.test.ts and `npm run fuzz:ingest` check
 * it. Both paths share the repairs of span-repairs.ts and the string reading of decode.ts.
 *
 * The generic path converts spans only once the whole body is decoded, and this decoder
 * while it reads. Where a later part of the body changes an earlier result, it does what
 * the generic path does:
 * - A resource or scope may follow its spans, so spans are converted at the end of their
 *   ResourceSpans message.
 * - A repeated field replaces the earlier one, so marks are kept per part of a span and
 *   added in the order of flattenExportRequest when the span is converted.
 * - The generic path marks every occurrence of a text as invalid UTF-8 once any occurrence
 *   had invalid bytes. When a body has such a text also as valid UTF-8 with a real U+FFFD,
 *   this decoder returns the generic path's result instead.
 *
 * NOTE: a body nested too deep for the JavaScript stack fails in both paths, but not from
 * the same depth, because the limit depends on the stack frames. With Node 20's default
 * stack, a kvlist failed from about 2,150 levels in the generic decoder and 2,230 here.
 */

interface RawAttributes {
  attributes: KeyValue[];
  /** Marks of the attributes before the count limit, as toKeyValues adds them. */
  marks: Marks;
  droppedAttributesCount: number;
}

interface RawScope extends RawAttributes {
  name: string;
  version: string;
}

interface RawEvent extends RawAttributes {
  timeUnixNano: bigint;
  name: string;
}

interface RawLink extends RawAttributes {
  traceId: string;
  spanId: string;
  traceState: string;
  flags: number;
}

/** The fields of a span as sent, with its values converted. */
interface RawSpan extends RawAttributes {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  traceState: string;
  flags: number;
  name: string;
  kind: number;
  start: bigint;
  end: bigint;
  events: RawEvent[];
  droppedEventsCount: number;
  links: RawLink[];
  droppedLinksCount: number;
  statusCode: number;
  statusMessage: string;
}

interface RawScopeSpans {
  scope: RawScope;
  spans: RawSpan[];
}

function newScope(): RawScope {
  return { name: '', version: '', attributes: [], marks: undefined, droppedAttributesCount: 0 };
}

/** Reads the messages of a body in the field order of the protobufjs decoder; see ValueReader. */
class SpanReader extends ValueReader {
  private readonly nowNs = BigInt(Date.now()) * 1_000_000n;

  constructor(
    reader: protobuf.Reader,
    texts: ReplacementTexts,
    private readonly limits: FlattenLimits,
  ) {
    super(reader, texts, limits.maxAttributeValueLength);
  }

  request(result: FlattenResult): void {
    const reader = this.reader;
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      if (tag >>> 3 === 1) this.resourceSpans(this.end(), result);
      else reader.skipType(tag & 7);
    }
  }

  private resourceSpans(limit: number, result: FlattenResult): void {
    const reader = this.reader;
    let resource: RawAttributes | undefined;
    const scopes: RawScopeSpans[] = [];
    while (reader.pos < limit) {
      const tag = reader.uint32();
      switch (tag >>> 3) {
        case 1:
          resource = this.resource(this.end());
          break;
        case 2:
          scopes.push(this.scopeSpans(this.end()));
          break;
        case 3:
          this.string(); // schema_url
          break;
        default:
          reader.skipType(tag & 7);
      }
    }
    this.convert(resource, scopes, result);
  }

  /** Converts the spans of one ResourceSpans message, as flattenExportRequest does. */
  private convert(raw: RawAttributes | undefined, scopes: RawScopeSpans[], result: FlattenResult) {
    const marks = new Set<string>();
    addMarks(marks, raw?.marks);
    const { attributes, dropped } = limitAttributes(raw?.attributes ?? [], marks, this.limits);
    const droppedAttributesCount = (raw?.droppedAttributesCount ?? 0) + dropped;
    const resource = describeResource(attributes, droppedAttributesCount, marks, this.repaired);
    const context = this.valueContext(marks);
    for (const { scope: rawScope, spans } of scopes) {
      addMarks(marks, rawScope.marks);
      const scope = describeScope(rawScope, context, this.limits);
      for (const span of spans) {
        const record = this.toRecord(span, resource, scope);
        if (typeof record === 'string') {
          result.rejectedSpans += 1;
          if (!result.errorMessage) result.errorMessage = record;
        } else {
          result.spans.push(record);
        }
      }
    }
  }

  private get repaired(): ReadonlySet<string> {
    return this.texts.repaired;
  }

  private valueContext(marks: Set<string>): ValueContext {
    return {
      maxValueLength: this.limits.maxAttributeValueLength,
      marks,
      repairedTexts: this.repaired,
    };
  }

  /** Returns the span record, or the reason the span is rejected, as flattenSpan does. */
  private toRecord(
    raw: RawSpan,
    resource: ResourceContext,
    scope: ScopeContext,
  ): SpanRecord | string {
    const rejection = spanIdProblem(raw, raw);
    if (rejection) return rejection;

    const marks = new Set(resource.marks);
    const context = this.valueContext(marks);
    const parentSpanId = readParentId(raw.parentSpanId, marks);
    addMarks(marks, raw.marks);
    const { attributes, dropped } = limitAttributes(raw.attributes, marks, this.limits);
    const times = repairTimes(raw.start, raw.end, { marks, nowNs: this.nowNs, attributes });
    const fields = {
      traceId: raw.traceId,
      spanId: raw.spanId,
      parentSpanId,
      traceState: cleanText(raw.traceState, context),
      flags: raw.flags,
      name: cleanText(raw.name, context),
      kind: SPAN_KINDS[raw.kind] ?? 'UNSPECIFIED',
      ...times,
      statusCode: STATUS_CODES[raw.statusCode] ?? 'UNSET',
      statusMessage: cleanText(raw.statusMessage, context),
      attributes,
      droppedAttributesCount: raw.droppedAttributesCount + dropped,
      events: raw.events.map((event) => {
        addMarks(marks, event.marks);
        return toSpanEvent(event, context, this.limits);
      }),
      droppedEventsCount: raw.droppedEventsCount,
      links: this.toLinks(raw.links, context),
      droppedLinksCount: raw.droppedLinksCount,
    };
    return toSpanRecord(fields, resource, scope, marks);
  }

  private toLinks(links: RawLink[], context: ValueContext): SpanLink[] {
    const result: SpanLink[] = [];
    for (const link of links) {
      if (!hasValidLinkIds(link, context.marks)) continue;
      addMarks(context.marks, link.marks);
      result.push(toSpanLink(link, context, this.limits));
    }
    return result;
  }

  /** Reads one attribute into a part of a span, with its marks. */
  private attribute(target: RawAttributes): void {
    target.attributes.push(this.keyValue(this.end(), 0));
    target.marks = joinMarks(target.marks, this.marks);
  }

  private hex(): string {
    return (this.reader.bytes() as Buffer).toString('hex');
  }

  /** Reads a fixed64 as an unsigned BigInt, without protobufjs's Long. */
  private fixed64(): bigint {
    const reader = this.reader;
    // Throws the error of protobufjs's fixed64 for a value cut short.
    if (reader.pos + 8 > reader.len) reader.skip(8);
    const low = reader.fixed32();
    const high = reader.fixed32();
    return high === 0 ? BigInt(low) : (BigInt(high) << 32n) + BigInt(low);
  }

  private resource(limit: number): RawAttributes {
    const reader = this.reader;
    const resource: RawAttributes = { attributes: [], marks: undefined, droppedAttributesCount: 0 };
    while (reader.pos < limit) {
      const tag = reader.uint32();
      switch (tag >>> 3) {
        case 1:
          this.attribute(resource);
          break;
        case 2:
          resource.droppedAttributesCount = reader.uint32();
          break;
        case 3:
          EntityRefMessage.decode(reader, reader.uint32());
          break;
        default:
          reader.skipType(tag & 7);
      }
    }
    return resource;
  }

  /**
   * Reads one ScopeSpans. Spans are read first and converted after the whole
   * ResourceSpans message, because the scope and the resource may follow them on the wire.
   */
  private scopeSpans(limit: number): RawScopeSpans {
    const reader = this.reader;
    const scopeSpans: RawScopeSpans = { scope: newScope(), spans: [] };
    while (reader.pos < limit) {
      const tag = reader.uint32();
      switch (tag >>> 3) {
        case 1:
          scopeSpans.scope = this.scope(this.end());
          break;
        case 2:
          scopeSpans.spans.push(this.span(this.end()));
          break;
        case 3:
          this.string(); // schema_url
          break;
        default:
          reader.skipType(tag & 7);
      }
    }
    return scopeSpans;
  }

  private scope(limit: number): RawScope {
    const reader = this.reader;
    const scope = newScope();
    while (reader.pos < limit) {
      const tag = reader.uint32();
      switch (tag >>> 3) {
        case 1:
          scope.name = this.string();
          break;
        case 2:
          scope.version = this.string();
          break;
        case 3:
          this.attribute(scope);
          break;
        case 4:
          scope.droppedAttributesCount = reader.uint32();
          break;
        default:
          reader.skipType(tag & 7);
      }
    }
    return scope;
  }

  private event(limit: number): RawEvent {
    const reader = this.reader;
    const event: RawEvent = {
      timeUnixNano: 0n,
      name: '',
      attributes: [],
      marks: undefined,
      droppedAttributesCount: 0,
    };
    while (reader.pos < limit) {
      const tag = reader.uint32();
      switch (tag >>> 3) {
        case 1:
          event.timeUnixNano = this.fixed64();
          break;
        case 2:
          event.name = this.string();
          break;
        case 3:
          this.attribute(event);
          break;
        case 4:
          event.droppedAttributesCount = reader.uint32();
          break;
        default:
          reader.skipType(tag & 7);
      }
    }
    return event;
  }

  private link(limit: number): RawLink {
    const reader = this.reader;
    const link: RawLink = {
      traceId: '',
      spanId: '',
      traceState: '',
      attributes: [],
      marks: undefined,
      droppedAttributesCount: 0,
      flags: 0,
    };
    while (reader.pos < limit) {
      const tag = reader.uint32();
      switch (tag >>> 3) {
        case 1:
          link.traceId = this.hex();
          break;
        case 2:
          link.spanId = this.hex();
          break;
        case 3:
          link.traceState = this.string();
          break;
        case 4:
          this.attribute(link);
          break;
        case 5:
          link.droppedAttributesCount = reader.uint32();
          break;
        case 6:
          link.flags = reader.fixed32();
          break;
        default:
          reader.skipType(tag & 7);
      }
    }
    return link;
  }

  /** Reads a Status message; a later one replaces an earlier one whole. */
  private status(limit: number, span: RawSpan): void {
    const reader = this.reader;
    span.statusCode = 0;
    span.statusMessage = '';
    while (reader.pos < limit) {
      const tag = reader.uint32();
      switch (tag >>> 3) {
        case 2:
          span.statusMessage = this.string();
          break;
        case 3:
          span.statusCode = reader.int32();
          break;
        default:
          reader.skipType(tag & 7);
      }
    }
  }

  private span(limit: number): RawSpan {
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
      marks: undefined,
      droppedAttributesCount: 0,
      events: [],
      droppedEventsCount: 0,
      links: [],
      droppedLinksCount: 0,
      statusCode: 0,
      statusMessage: '',
    };
    while (this.reader.pos < limit) this.spanField(this.reader.uint32(), span);
    return span;
  }

  private spanField(tag: number, span: RawSpan): void {
    const reader = this.reader;
    switch (tag >>> 3) {
      case 1:
        span.traceId = this.hex();
        return;
      case 2:
        span.spanId = this.hex();
        return;
      case 3:
        span.traceState = this.string();
        return;
      case 4:
        span.parentSpanId = this.hex();
        return;
      case 5:
        span.name = this.string();
        return;
      case 6:
        span.kind = reader.int32();
        return;
      case 7:
        span.start = this.fixed64();
        return;
      case 8:
        span.end = this.fixed64();
        return;
      case 9:
        this.attribute(span);
        return;
      case 10:
        span.droppedAttributesCount = reader.uint32();
        return;
      case 11:
        span.events.push(this.event(this.end()));
        return;
      case 12:
        span.droppedEventsCount = reader.uint32();
        return;
      case 13:
        span.links.push(this.link(this.end()));
        return;
      case 14:
        span.droppedLinksCount = reader.uint32();
        return;
      case 15:
        this.status(this.end(), span);
        return;
      case 16:
        span.flags = reader.fixed32();
        return;
      default:
        reader.skipType(tag & 7);
    }
  }
}

/** Returns whether a text came both from invalid bytes and as valid UTF-8 with U+FFFD. */
function hasAmbiguousText(texts: Required<ReplacementTexts>): boolean {
  if (texts.repaired.size === 0) return false;
  for (const text of texts.sent) if (texts.repaired.has(text)) return true;
  return false;
}

/**
 * Decodes an OTLP protobuf body into span records, with the limits and repairs of
 * flattenExportRequest; see the note at the top. Throws FL_UNDECODABLE_BODY.
 */
export function decodeSpansFast(
  body: Uint8Array,
  limits: FlattenLimits = DEFAULT_FLATTEN_LIMITS,
): FlattenResult {
  const texts = { repaired: new Set<string>(), sent: new Set<string>() };
  const result: FlattenResult = { spans: [], rejectedSpans: 0, errorMessage: '' };
  try {
    new SpanReader(createBodyReader(body, texts), texts, limits).request(result);
  } catch (error) {
    throw undecodableProtobuf(body, error);
  }
  if (hasAmbiguousText(texts)) return flattenExportRequest(decodeProtobufRequest(body), limits);
  return result;
}
