import { isUtf8 } from 'node:buffer';
import {
  httpStatusCode,
  isErrorSpan,
  remoteServiceName,
  SPAN_CONVENTION_KEYS,
} from '../model/conventions';
import { SPAN_KINDS, STATUS_CODES, type AnyValue, type KeyValue } from '../model/span';
import { ByteWriter, DICTIONARY_PREFIX, DictionaryColumn } from '../storage/native';
import {
  keyValuesBytes,
  SPAN_COLUMNS,
  storedJson,
  SPAN_NATIVE_TYPES,
  type SpanRow,
  type SpanRows,
} from '../storage/span-rows';
import { createBodyReader, type ReplacementTexts } from './decode';
import { ValueReader } from './fast-values';
import type { FlattenLimits } from './flatten';
import { describeResource, describeScope } from './span-repairs';
import { toDouble } from './values';

/*
 * Converts an OTLP protobuf ExportTraceServiceRequest straight into the Native block that
 * `toSpanRows` builds from the span records of `decodeSpansFast`, without those records.
 * Span attributes go from the body's bytes to their map columns; only the attributes that
 * the conventions read (SPAN_CONVENTION_KEYS) become values.
 *
 * It takes the common body alone: one that needs no repair, rejects no span and contains
 * no span too old to keep. For any other body it returns undefined, and the caller takes
 * the record path, whose result then contains the repairs and rejections. So the record path
 * stays the one definition of what is stored, and this one must give its bytes exactly:
 * test/otlp-fast-decode.test.ts and `npm run fuzz:ingest` compare the two.
 *
 * What sends a body to the record path:
 * - any text that is not valid UTF-8, or a string value with more bytes than the value
 *   limit allows characters;
 * - a span attribute value that is empty, sets more than one field, or is an array, a
 *   kvlist or bytes (event and link attributes may be any value);
 * - an attribute that sends its value twice, a key that comes twice in one span, or more
 *   attributes than the limit;
 * - an invalid trace, span, parent or link id;
 * - a time that needs a repair or is older than the retention, or an event time past the
 *   year 2262;
 * - a resource without `service.name`, even one without spans; a resource or scope after
 *   its spans, either of them twice, entity references;
 * - a field with an unexpected wire type, a field or length past the end of its message,
 *   any decoding error.
 */

/** Thrown inside the converter when the body needs the record path. */
const RECORD_PATH = new Error('body needs the record path');

const MAX_STORABLE_HIGH = 0x80000000;
// The start range that needs no repair: from MIN_STORABLE_NS (1970-01-12) to
// MAX_START_NS (2106) in span-repairs.ts, and no later than a day ahead of the clock.
const MIN_START_NS = 1_000_000_000_000_000n;
const MAX_START_NS = 4_294_967_295n * 1_000_000_000n;
const FUTURE_TOLERANCE_NS = 86_400n * 1_000_000_000n;

// Attribute maps by value type, in the order of their columns, as in span-rows.ts.
const STRING = 0;
const INT = 1;
const FLOAT = 2;
const BOOL = 3;

let body: Buffer = Buffer.alloc(0);
// The body as a DataView, which reads four bytes at any offset in one step.
let bodyView = new DataView(body.buffer, body.byteOffset, body.byteLength);
let pos = 0;

/**
 * Reads a varint as protobufjs's uint32 does: the low 32 bits. Past its fifth byte,
 * protobufjs takes the varint to be 10 bytes long without reading the last five, so a
 * varint of 6 to 9 bytes makes it step over the bytes after it, and so does this reader.
 */
function varint(limit: number): number {
  let value = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (pos >= limit) throw RECORD_PATH;
    const byte = body[pos++];
    value |= (byte & 0x7f) << shift;
    if (byte < 0x80) return value >>> 0;
  }
  pos += 5;
  if (pos > limit) throw RECORD_PATH;
  return value >>> 0;
}

/** Skips a varint of any length, as protobufjs skips an unknown varint field. */
function skipVarint(limit: number): void {
  do {
    if (pos >= limit) throw RECORD_PATH;
  } while (body[pos++] >= 0x80);
}

// The 64-bit varint that `varint64` read last, as its low and high 32 bits.
let low = 0;
let high = 0;

function varint64(limit: number): void {
  low = 0;
  high = 0;
  for (let index = 0; index < 10; index += 1) {
    if (pos >= limit) throw RECORD_PATH;
    const byte = body[pos++];
    const bits = byte & 0x7f;
    if (index < 4) low |= bits << (index * 7);
    else if (index === 4) {
      low |= bits << 28;
      high |= bits >>> 4;
    } else high |= bits << (index * 7 - 32);
    if (byte < 0x80) {
      low >>>= 0;
      high >>>= 0;
      return;
    }
  }
  throw RECORD_PATH;
}

function fixed32(limit: number): number {
  if (pos + 4 > limit) throw RECORD_PATH;
  const value = body.readUInt32LE(pos);
  pos += 4;
  return value;
}

/** Returns the end of a length-delimited field whose length comes next. */
function lengthEnd(limit: number): number {
  const end = varint(limit) + pos;
  if (end > limit) throw RECORD_PATH;
  return end;
}

function expectWireType(tag: number, wireType: number): void {
  if ((tag & 7) !== wireType) throw RECORD_PATH;
}

function skipField(tag: number, limit: number): void {
  switch (tag & 7) {
    case 0:
      skipVarint(limit);
      return;
    case 1:
      pos += 8;
      break;
    case 2:
      pos = lengthEnd(limit);
      return;
    case 5:
      pos += 4;
      break;
    default:
      throw RECORD_PATH;
  }
  if (pos > limit) throw RECORD_PATH;
}

/** Adds the start and end of a message field to `regions`; returns the end. */
function pushRegion(tag: number, regions: number[], limit: number): number {
  expectWireType(tag, 2);
  const end = lengthEnd(limit);
  regions.push(pos, end);
  return end;
}

type SliceBuffer = Buffer & {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
};

/**
 * Checks that bytes are valid UTF-8, with a loop for the usual ASCII text. Returns whether
 * they are all ASCII.
 */
function checkText(start: number, end: number): boolean {
  for (let index = start; index < end; index += 1) {
    if (body[index] >= 0x80) {
      if (!isUtf8(body.subarray(start, end))) throw RECORD_PATH;
      return false;
    }
  }
  return true;
}

/** Decodes checked text; ASCII through the faster one-byte decoder. */
function decodeText(start: number, end: number, ascii: boolean): string {
  const source = body as SliceBuffer;
  return ascii ? source.latin1Slice(start, end) : source.utf8Slice(start, end);
}

/**
 * Reads a string field whose text this converter copies and returns its end. The text
 * starts at `pos`.
 */
function textEnd(tag: number, limit: number): number {
  expectWireType(tag, 2);
  const end = lengthEnd(limit);
  checkText(pos, end);
  return end;
}

// The end of the field that `textField` read last.
let fieldEnd = 0;

/**
 * Reads a string field whose text this converter copies and returns its start. Its end is
 * left in `fieldEnd`.
 */
function textField(tag: number, limit: number): number {
  fieldEnd = textEnd(tag, limit);
  const start = pos;
  pos = fieldEnd;
  return start;
}

/** Reads a varint field as protobufjs's uint32 does. */
function uintField(tag: number, limit: number): number {
  expectWireType(tag, 0);
  return varint(limit);
}

function text(tag: number, limit: number): string {
  expectWireType(tag, 2);
  const end = lengthEnd(limit);
  const value = decodeText(pos, end, checkText(pos, end));
  pos = end;
  return value;
}

// Attribute keys repeat from span to span, so each is kept in a table by its bytes' hash,
// with its text and whether the conventions read it. A key found there needs no decoding.
const KEY_SLOTS = 4096;
const MAX_KEPT_KEY_BYTES = 128;
const keyTableBytes: (Buffer | undefined)[] = new Array<Buffer | undefined>(KEY_SLOTS);
// Each key's bytes as little-endian 32-bit words, the last one only if it is whole.
const keyTableWords: Int32Array[] = new Array<Int32Array>(KEY_SLOTS);
const keyTableTexts: string[] = new Array<string>(KEY_SLOTS).fill('');
const keyTableConventions = new Uint8Array(KEY_SLOTS);
const KEY_PROBES = 8;
const CONVENTION_KEYS = SPAN_CONVENTION_KEYS;
/** The text of the last key that `keySlot` found too long for the table. */
let longKey = '';

/**
 * Returns whether the key in `slot` equals the body's bytes of its length from `start`,
 * comparing four bytes at a time.
 */
function sameKeyBytes(slot: number, start: number): boolean {
  const words = keyTableWords[slot];
  for (let index = 0; index < words.length; index += 1) {
    if (bodyView.getInt32(start + index * 4, true) !== words[index]) return false;
  }
  const stored = keyTableBytes[slot]!;
  for (let index = words.length * 4; index < stored.length; index += 1) {
    if (stored[index] !== body[start + index]) return false;
  }
  return true;
}

/**
 * Returns the table slot of a key, which it fills when the key is not there yet. A key
 * found there was checked as UTF-8 when it was added, so only a new key is checked.
 * Returns -1 for a key longer than MAX_KEPT_KEY_BYTES, and leaves its text in `longKey`.
 */
function keySlot(start: number, end: number): number {
  const length = end - start;
  if (length > MAX_KEPT_KEY_BYTES) {
    longKey = decodeText(start, end, checkText(start, end));
    return -1;
  }
  // The hash reads the length and five bytes spread over the key, not every byte: the
  // keys of a sender differ there, and the comparison below reads the whole key anyway.
  let hash = Math.imul(length, 0x9e3779b1);
  if (length > 0) {
    const last = end - 1;
    hash = Math.imul(hash ^ body[start], 0x01000193);
    hash = Math.imul(hash ^ body[start + (length >> 2)], 0x01000193);
    hash = Math.imul(hash ^ body[start + (length >> 1)], 0x01000193);
    hash = Math.imul(hash ^ body[last - (length >> 2)], 0x01000193);
    hash = Math.imul(hash ^ body[last], 0x01000193);
    hash ^= hash >>> 15;
  }
  const home = (hash >>> 0) & (KEY_SLOTS - 1);
  // Linear probing over a few slots keeps two keys with one hash from evicting each other
  // in turn. When those slots are all taken, the first one is replaced.
  let slot = home;
  for (let probe = 0; probe < KEY_PROBES; probe += 1) {
    const candidate = (home + probe) & (KEY_SLOTS - 1);
    const stored = keyTableBytes[candidate];
    if (stored === undefined) {
      slot = candidate;
      break;
    }
    if (stored.length === length && sameKeyBytes(candidate, start)) return candidate;
  }
  const text = decodeText(start, end, checkText(start, end));
  const bytes = Buffer.allocUnsafe(length);
  body.copy(bytes, 0, start, end);
  keyTableBytes[slot] = bytes;
  const words = new Int32Array(length >> 2);
  for (let index = 0; index < words.length; index += 1) words[index] = bytes.readInt32LE(index * 4);
  keyTableWords[slot] = words;
  keyTableTexts[slot] = text;
  keyTableConventions[slot] = CONVENTION_KEYS.has(text) ? 1 : 0;
  return slot;
}

/** Returns whether `count` bytes at `start` are all zero. */
function allZero(start: number, count: number): boolean {
  for (let index = start; index < start + count; index += 1) if (body[index] !== 0) return false;
  return true;
}

/** Compares two unsigned 64-bit numbers given as 32-bit halves. */
function compare64(lowA: number, highA: number, lowB: number, highB: number): number {
  if (highA !== highB) return highA < highB ? -1 : 1;
  if (lowA !== lowB) return lowA < lowB ? -1 : 1;
  return 0;
}

function bigintParts(value: bigint): [number, number] {
  return [Number(value & 0xffffffffn), Number(value >> 32n)];
}

/** Returns the decimal text of a signed 64-bit integer, as fast-values.ts writes an int value. */
function decimal(lowBits: number, highBits: number): string {
  const signedHigh = highBits | 0;
  const value = signedHigh * 4294967296 + lowBits;
  if (Number.isSafeInteger(value)) return String(value);
  return ((BigInt(signedHigh) << 32n) + BigInt(lowBits)).toString();
}

/** A column of one value a span, or an array or map column with its end offsets. */
class Column {
  readonly offsets = new ByteWriter(1 << 12);
  readonly values = new ByteWriter(1 << 12);
  /** The keys of a map column. */
  readonly keys = new ByteWriter(1 << 12);
  /** The values of a LowCardinality column, written to `values` when the block is joined. */
  readonly dictionary: DictionaryColumn | undefined;
  /** The keys of a map column, written to `keys` when the block is joined. */
  readonly keyDictionary: DictionaryColumn | undefined;
  /** The bytes before the offsets: the prefix of a LowCardinality column or map key. */
  readonly prefix: Buffer;
  count = 0;

  constructor(type: string) {
    this.dictionary = type.startsWith('LowCardinality(') ? new DictionaryColumn() : undefined;
    this.keyDictionary = type.startsWith('Map(LowCardinality(')
      ? new DictionaryColumn()
      : undefined;
    this.prefix = this.dictionary || this.keyDictionary ? DICTIONARY_PREFIX : Buffer.alloc(0);
  }

  clear(): void {
    this.offsets.length = 0;
    this.values.length = 0;
    this.keys.length = 0;
    this.dictionary?.clear();
    this.keyDictionary?.clear();
    this.count = 0;
  }

  /** Ends a span's entries of an array or map column. */
  endRow(): void {
    this.offsets.uint64Number(this.count);
  }
}

const columns = new Map<keyof SpanRow, Column>(
  SPAN_COLUMNS.map((name) => [name, new Column(SPAN_NATIVE_TYPES[name])]),
);

function column(name: keyof SpanRow): Column {
  return columns.get(name)!;
}

const traceIds = column('trace_id').values;
const spanIds = column('span_id').values;
const parentIds = column('parent_span_id').values;
const traceStates = column('trace_state').values;
const flagValues = column('flags').values;
const names = column('name').values;
const kinds = column('kind').values;
const starts = column('start_time').values;
const durations = column('duration_ns').values;
const statusCodes = column('status_code').values;
const statusMessages = column('status_message').values;
const serviceNames = column('service_name').dictionary!;
const serviceVersions = column('service_version').dictionary!;
const environments = column('deployment_environment').dictionary!;
const remoteServices = column('remote_service').values;
const httpCodes = column('http_status_code').values;
const errorFlags = column('is_error').values;
const MAPS = [
  column('attributes_string'),
  column('attributes_int'),
  column('attributes_float'),
  column('attributes_bool'),
  column('attributes_complex'),
];
const droppedAttributes = column('dropped_attributes_count').values;
const resourceTexts = column('resource_attributes').dictionary!;
const droppedResourceAttributes = column('dropped_resource_attributes_count').values;
const scopeNames = column('scope_name').dictionary!;
const scopeVersions = column('scope_version').dictionary!;
const scopeTexts = column('scope_attributes').dictionary!;
const EVENT_COLUMNS = [
  column('events.time_offset_ns'),
  column('events.name'),
  column('events.attributes'),
  column('events.dropped_attributes_count'),
];
const droppedEvents = column('dropped_events_count').values;
const LINK_COLUMNS = [
  column('link_trace_ids'),
  column('link_span_ids'),
  column('link_trace_states'),
  column('link_attributes'),
  column('link_dropped_attributes_counts'),
  column('link_flags'),
];
const droppedLinks = column('dropped_links_count').values;
const warnings = column('ingest_warnings');

/** Resource and scope fields that each span of a scope gets, as bytes ready to copy. */
interface SpanContext {
  serviceName: Buffer;
  serviceVersion: Buffer;
  environment: Buffer;
  resourceText: Buffer;
  droppedResourceAttributes: number;
  scopeName: Buffer;
  scopeVersion: Buffer;
  scopeText: Buffer;
}

/** The state of one conversion; the columns are shared, since a conversion is synchronous. */
class Converter {
  spans = 0;
  private values: ValueReader | undefined;
  private readonly texts: ReplacementTexts = { repaired: new Set() };
  /** Scopes read so far, by the bytes of their message, with the resource they were read for. */
  private readonly scopes = new Map<string, { resource: SpanContext; context: SpanContext }>();
  private readonly nowLimit: [number, number];
  private readonly oldest: [number, number];

  // The fields of the span being read, as offsets into the body or numbers.
  private traceId = -1;
  private traceIdLength = 0;
  private spanId = -1;
  private spanIdLength = 0;
  private parentId = -1;
  private parentIdLength = 0;
  private traceState = 0;
  private traceStateEnd = 0;
  private name = 0;
  private nameEnd = 0;
  private kind = 0;
  private startLow = 0;
  private startHigh = 0;
  private endLow = 0;
  private endHigh = 0;
  private flags = 0;
  private droppedAttributeCount = 0;
  private droppedEventCount = 0;
  private droppedLinkCount = 0;
  private statusCode = 0;
  private statusMessage = 0;
  private statusMessageEnd = 0;
  // Offsets of the span's attribute, event and link messages, as start and end pairs.
  private attributes: number[] = [];
  private events: number[] = [];
  private links: number[] = [];
  // The span's attributes, read: key, value type, and value offsets or bits.
  private keys: string[] = [];
  private slots: number[] = [];
  /**
   * The key table's bytes of each attribute's key, kept apart because a later key of the
   * span may take the slot.
   */
  private keyBytes: (Buffer | undefined)[] = [];
  private keyStarts: number[] = [];
  private keyEnds: number[] = [];
  private types: number[] = [];
  private first: number[] = [];
  private second: number[] = [];

  constructor(
    private readonly limits: FlattenLimits,
    nowNs: bigint,
    oldestNs: bigint,
  ) {
    this.nowLimit = bigintParts(nowNs + FUTURE_TOLERANCE_NS);
    this.oldest = bigintParts(oldestNs > MIN_START_NS ? oldestNs : MIN_START_NS);
    const maxStart = bigintParts(MAX_START_NS);
    if (compare64(this.nowLimit[0], this.nowLimit[1], maxStart[0], maxStart[1]) > 0) {
      this.nowLimit = maxStart;
    }
  }

  request(): void {
    const limit = body.length;
    while (pos < limit) {
      const tag = varint(limit);
      if (tag >>> 3 === 1) {
        expectWireType(tag, 2);
        this.resourceSpans(lengthEnd(limit));
      } else skipField(tag, limit);
    }
    if (this.texts.repaired.size > 0) throw RECORD_PATH;
  }

  /** Returns a reader of values as the record path reads them, for lists stored as JSON text. */
  private valueReader(): ValueReader {
    this.values ??= new ValueReader(
      createBodyReader(body, this.texts),
      this.texts,
      this.limits.maxAttributeValueLength,
    );
    return this.values;
  }

  /** Reads the attributes at `offsets` (start and end pairs) as the record path does. */
  private keyValues(offsets: number[], from: number, to: number): KeyValue[] {
    if ((to - from) / 2 > this.limits.maxAttributesPerSpan) throw RECORD_PATH;
    const reader = this.valueReader();
    const list: KeyValue[] = [];
    for (let index = from; index < to; index += 2) {
      reader.reader.pos = offsets[index];
      list.push(reader.keyValue(offsets[index + 1], 0));
      if (reader.marks !== undefined) throw RECORD_PATH;
      // protobufjs reads a field to its end even past the end of its message, and the
      // record path goes on from there, so such a list needs the record path.
      if (reader.reader.pos !== offsets[index + 1]) throw RECORD_PATH;
    }
    return list;
  }

  private resourceSpans(limit: number): void {
    let context: SpanContext | undefined;
    let resource = -1;
    let resourceEnd = 0;
    while (pos < limit) {
      const tag = varint(limit);
      switch (tag >>> 3) {
        case 1:
          expectWireType(tag, 2);
          if (resource >= 0) throw RECORD_PATH;
          resourceEnd = lengthEnd(limit);
          resource = pos;
          pos = resourceEnd;
          break;
        case 2:
          expectWireType(tag, 2);
          if (resource < 0) throw RECORD_PATH;
          context ??= this.resource(resource, resourceEnd);
          this.scopeSpans(lengthEnd(limit), context);
          break;
        case 3:
          pos = textEnd(tag, limit);
          break;
        default:
          skipField(tag, limit);
      }
    }
    // The record path reads a resource without spans too, so it may fail there.
    if (resource >= 0 && context === undefined) this.resource(resource, resourceEnd);
  }

  private resource(start: number, limit: number): SpanContext {
    const saved = pos;
    pos = start;
    const attributes: number[] = [];
    let dropped = 0;
    while (pos < limit) {
      const tag = varint(limit);
      switch (tag >>> 3) {
        case 1:
          pos = pushRegion(tag, attributes, limit);
          break;
        case 2:
          dropped = uintField(tag, limit);
          break;
        case 3:
          throw RECORD_PATH;
        default:
          skipField(tag, limit);
      }
    }
    pos = saved;
    const list = this.keyValues(attributes, 0, attributes.length);
    const marks = new Set<string>();
    const described = describeResource(list, dropped, marks, this.texts.repaired);
    if (marks.size > 0) throw RECORD_PATH;
    return {
      serviceName: Buffer.from(described.serviceName),
      serviceVersion: Buffer.from(described.serviceVersion),
      environment: Buffer.from(described.environment),
      resourceText: keyValuesBytes(list),
      droppedResourceAttributes: dropped,
      scopeName: Buffer.alloc(0),
      scopeVersion: Buffer.alloc(0),
      scopeText: keyValuesBytes([]),
    };
  }

  private scopeSpans(limit: number, resource: SpanContext): void {
    let context = resource;
    let scopeSeen = false;
    let spansSeen = false;
    while (pos < limit) {
      const tag = varint(limit);
      switch (tag >>> 3) {
        case 1: {
          expectWireType(tag, 2);
          if (scopeSeen || spansSeen) throw RECORD_PATH;
          scopeSeen = true;
          const end = lengthEnd(limit);
          // Senders often send one scope message for each span, so scopes are looked up by
          // their bytes.
          const key = (body as SliceBuffer).latin1Slice(pos, end);
          let scoped = this.scopes.get(key);
          if (scoped?.resource !== resource) {
            scoped = { resource, context: this.scope(end, resource) };
            this.scopes.set(key, scoped);
          }
          context = scoped.context;
          pos = end;
          break;
        }
        case 2:
          expectWireType(tag, 2);
          spansSeen = true;
          this.span(lengthEnd(limit), context);
          break;
        case 3:
          pos = textEnd(tag, limit);
          break;
        default:
          skipField(tag, limit);
      }
    }
  }

  private scope(limit: number, resource: SpanContext): SpanContext {
    let name = '';
    let version = '';
    let dropped = 0;
    const attributes: number[] = [];
    while (pos < limit) {
      const tag = varint(limit);
      switch (tag >>> 3) {
        case 1:
          name = text(tag, limit);
          break;
        case 2:
          version = text(tag, limit);
          break;
        case 3:
          pos = pushRegion(tag, attributes, limit);
          break;
        case 4:
          dropped = uintField(tag, limit);
          break;
        default:
          skipField(tag, limit);
      }
    }

    const saved = pos;
    const list = this.keyValues(attributes, 0, attributes.length);
    pos = saved;

    const marks = new Set<string>();
    const context = {
      maxValueLength: this.limits.maxAttributeValueLength,
      marks,
      repairedTexts: this.texts.repaired,
    };
    const scope = describeScope(
      { name, version, attributes: list, droppedAttributesCount: dropped },
      context,
      this.limits,
    );
    if (marks.size > 0) throw RECORD_PATH;
    return {
      ...resource,
      scopeName: Buffer.from(scope.name),
      scopeVersion: Buffer.from(scope.version),
      scopeText: keyValuesBytes(scope.attributes),
    };
  }

  private resetSpan(): void {
    this.traceId = -1;
    this.spanId = -1;
    this.parentId = -1;
    this.parentIdLength = 0;
    this.traceState = 0;
    this.traceStateEnd = 0;
    this.name = 0;
    this.nameEnd = 0;
    this.kind = 0;
    this.startLow = 0;
    this.startHigh = 0;
    this.endLow = 0;
    this.endHigh = 0;
    this.flags = 0;
    this.droppedAttributeCount = 0;
    this.droppedEventCount = 0;
    this.droppedLinkCount = 0;
    this.statusCode = 0;
    this.statusMessage = 0;
    this.statusMessageEnd = 0;
    this.attributes.length = 0;
    this.events.length = 0;
    this.links.length = 0;
  }

  /** Reads a bytes field and returns its start; the length is left in `low`. */
  private bytesField(tag: number, limit: number): number {
    expectWireType(tag, 2);
    const end = lengthEnd(limit);
    const start = pos;
    low = end - start;
    pos = end;
    return start;
  }

  private span(limit: number, context: SpanContext): void {
    this.resetSpan();
    while (pos < limit) {
      const tag = varint(limit);
      switch (tag >>> 3) {
        case 1:
          this.traceId = this.bytesField(tag, limit);
          this.traceIdLength = low;
          break;
        case 2:
          this.spanId = this.bytesField(tag, limit);
          this.spanIdLength = low;
          break;
        case 3:
          this.traceState = textField(tag, limit);
          this.traceStateEnd = fieldEnd;
          break;
        case 4:
          this.parentId = this.bytesField(tag, limit);
          this.parentIdLength = low;
          break;
        case 5:
          this.name = textField(tag, limit);
          this.nameEnd = fieldEnd;
          break;
        case 6:
          this.kind = uintField(tag, limit);
          break;
        case 7:
          expectWireType(tag, 1);
          this.startLow = fixed32(limit);
          this.startHigh = fixed32(limit);
          break;
        case 8:
          expectWireType(tag, 1);
          this.endLow = fixed32(limit);
          this.endHigh = fixed32(limit);
          break;
        case 9:
          pos = pushRegion(tag, this.attributes, limit);
          break;
        case 11:
          pos = pushRegion(tag, this.events, limit);
          break;
        case 13:
          pos = pushRegion(tag, this.links, limit);
          break;
        case 10:
          this.droppedAttributeCount = uintField(tag, limit);
          break;
        case 12:
          this.droppedEventCount = uintField(tag, limit);
          break;
        case 14:
          this.droppedLinkCount = uintField(tag, limit);
          break;
        case 15:
          expectWireType(tag, 2);
          this.status(lengthEnd(limit));
          break;
        case 16:
          expectWireType(tag, 5);
          this.flags = fixed32(limit);
          break;
        default:
          skipField(tag, limit);
      }
    }
    this.writeSpan(context);
    pos = limit;
  }

  private status(limit: number): void {
    this.statusCode = 0;
    this.statusMessage = 0;
    this.statusMessageEnd = 0;
    while (pos < limit) {
      const tag = varint(limit);
      switch (tag >>> 3) {
        case 2:
          this.statusMessage = textField(tag, limit);
          this.statusMessageEnd = fieldEnd;
          break;
        case 3:
          this.statusCode = uintField(tag, limit);
          break;
        default:
          skipField(tag, limit);
      }
    }
  }

  /** Checks the span's ids and times; a span that needs a repair or a rejection throws. */
  private checkSpan(): void {
    if (this.traceId < 0 || this.traceIdLength !== 16 || allZero(this.traceId, 16)) {
      throw RECORD_PATH;
    }
    if (this.spanId < 0 || this.spanIdLength !== 8 || allZero(this.spanId, 8)) throw RECORD_PATH;
    if (this.parentId >= 0 && this.parentIdLength !== 0 && this.parentIdLength !== 8) {
      throw RECORD_PATH;
    }
    const { startLow, startHigh, endLow, endHigh } = this;
    if (compare64(startLow, startHigh, this.oldest[0], this.oldest[1]) < 0) throw RECORD_PATH;
    if (compare64(startLow, startHigh, this.nowLimit[0], this.nowLimit[1]) > 0) throw RECORD_PATH;
    if (endHigh >= MAX_STORABLE_HIGH || compare64(endLow, endHigh, startLow, startHigh) < 0) {
      throw RECORD_PATH;
    }
  }

  private writeSpan(context: SpanContext): void {
    this.checkSpan();
    traceIds.reversedFrom(body, this.traceId, 16);
    spanIds.reversedFrom(body, this.spanId, 8);
    if (this.parentIdLength === 8) parentIds.reversedFrom(body, this.parentId, 8);
    else parentIds.zeros(8);
    traceStates.stringFrom(body, this.traceState, this.traceStateEnd);
    flagValues.uint32(this.flags);
    names.stringFrom(body, this.name, this.nameEnd);
    const kindCode = this.kind < SPAN_KINDS.length ? this.kind : 0;
    kinds.int8(kindCode);
    starts.int64Parts(this.startLow, this.startHigh);
    const borrow = this.endLow < this.startLow ? 1 : 0;
    durations.int64Parts(this.endLow - this.startLow, this.endHigh - this.startHigh - borrow);
    const statusCode = this.statusCode < STATUS_CODES.length ? this.statusCode : 0;
    statusCodes.int8(statusCode);
    statusMessages.stringFrom(body, this.statusMessage, this.statusMessageEnd);
    serviceNames.add(context.serviceName);
    serviceVersions.add(context.serviceVersion);
    environments.add(context.environment);

    const conventions = this.writeAttributes();
    const kind = SPAN_KINDS[kindCode];
    const httpStatus = httpStatusCode(conventions);
    remoteServices.string(remoteServiceName(kind, conventions));
    httpCodes.uint16(httpStatus);
    errorFlags.uint8(isErrorSpan(kind, STATUS_CODES[statusCode], httpStatus) ? 1 : 0);
    droppedAttributes.uint32(this.droppedAttributeCount);
    resourceTexts.add(context.resourceText);
    droppedResourceAttributes.uint32(context.droppedResourceAttributes);
    scopeNames.add(context.scopeName);
    scopeVersions.add(context.scopeVersion);
    scopeTexts.add(context.scopeText);
    this.writeEvents();
    droppedEvents.uint32(this.droppedEventCount);
    this.writeLinks();
    droppedLinks.uint32(this.droppedLinkCount);
    warnings.endRow();
    this.spans += 1;
  }

  /**
   * Reads the span's attributes, writes them to the map columns, and returns those that
   * the conventions read as values.
   */
  private writeAttributes(): KeyValue[] {
    const offsets = this.attributes;
    const count = offsets.length / 2;
    if (count > this.limits.maxAttributesPerSpan) throw RECORD_PATH;
    const { keys, slots, keyBytes, types, first, second } = this;
    const conventions: KeyValue[] = [];
    for (let index = 0; index < count; index += 1) {
      const slot = this.attribute(offsets[index * 2], offsets[index * 2 + 1], index);
      for (let before = 0; before < index; before += 1) {
        if (slots[before] === slot && this.sameKey(before, index)) throw RECORD_PATH;
      }
      slots[index] = slot;
      keyBytes[index] = slot >= 0 ? keyTableBytes[slot] : undefined;
      keys[index] = slot >= 0 ? keyTableTexts[slot] : longKey;
      const convention = slot >= 0 ? keyTableConventions[slot] === 1 : CONVENTION_KEYS.has(longKey);
      if (convention) conventions.push({ key: keys[index], value: this.anyValue(index) });
    }
    for (let index = 0; index < count; index += 1) {
      const map = MAPS[types[index]];
      map.count += 1;
      map.keyDictionary!.add(
        keyBytes[index] ?? body.subarray(this.keyStarts[index], this.keyEnds[index]),
      );
      const values = map.values;
      switch (types[index]) {
        case STRING:
          values.stringFrom(body, first[index], second[index]);
          break;
        case INT:
          values.int64Parts(first[index], second[index]);
          break;
        case FLOAT:
          values.float64(toDouble(body.readDoubleLE(first[index])));
          break;
        default:
          values.uint8(first[index]);
      }
    }
    for (const map of MAPS) map.endRow();
    return conventions;
  }

  /**
   * Returns whether two attributes of the span have the same key. Keys in one slot are
   * the same unless a later key replaced the slot's entry.
   */
  private sameKey(first: number, second: number): boolean {
    const { keyStarts, keyEnds } = this;
    const length = keyEnds[first] - keyStarts[first];
    if (keyEnds[second] - keyStarts[second] !== length) return false;
    return (
      body.compare(body, keyStarts[second], keyEnds[second], keyStarts[first], keyEnds[first]) === 0
    );
  }

  /** Converts the value of attribute `index` as the record path does. */
  private anyValue(index: number): AnyValue {
    const { first, second } = this;
    switch (this.types[index]) {
      case STRING:
        return { stringValue: (body as SliceBuffer).utf8Slice(first[index], second[index]) };
      case INT:
        return { intValue: decimal(first[index], second[index]) };
      case FLOAT:
        return { doubleValue: toDouble(body.readDoubleLE(first[index])) };
      default:
        return { boolValue: first[index] === 1 };
    }
  }

  /**
   * Reads a KeyValue message and returns its key's slot (see keySlot). Leaves its value's
   * type and offsets or bits at `index`.
   */
  private attribute(start: number, limit: number, index: number): number {
    pos = start;
    let keyStart = -1;
    let keyEnd = 0;
    let valueStart = -1;
    let valueEnd = 0;
    while (pos < limit) {
      const tag = varint(limit);
      if (tag >>> 3 === 1) {
        // keySlot checks only the key it reads, so an earlier one is left to the records.
        if (keyStart >= 0) throw RECORD_PATH;
        expectWireType(tag, 2);
        keyEnd = lengthEnd(limit);
        keyStart = pos;
        pos = keyEnd;
      } else if (tag >>> 3 === 2) {
        // The record path reads a value that a later one replaces, so it may fail there.
        if (valueStart >= 0) throw RECORD_PATH;
        expectWireType(tag, 2);
        valueEnd = lengthEnd(limit);
        valueStart = pos;
        pos = valueEnd;
      } else skipField(tag, limit);
    }
    if (valueStart < 0) throw RECORD_PATH;
    this.value(valueStart, valueEnd, index);
    if (keyStart < 0) keyStart = keyEnd;
    this.keyStarts[index] = keyStart;
    this.keyEnds[index] = keyEnd;
    return keySlot(keyStart, keyEnd);
  }

  /** Reads an AnyValue that sets one field of type string, bool, int or double. */
  private value(start: number, limit: number, index: number): void {
    pos = start;
    let fields = 0;
    while (pos < limit) {
      const tag = varint(limit);
      fields += 1;
      switch (tag >>> 3) {
        case 1: {
          const end = textEnd(tag, limit);
          if (end - pos > this.limits.maxAttributeValueLength) throw RECORD_PATH;
          this.types[index] = STRING;
          this.first[index] = pos;
          this.second[index] = end;
          pos = end;
          break;
        }
        case 2:
          expectWireType(tag, 0);
          this.types[index] = BOOL;
          this.first[index] = varint(limit) !== 0 ? 1 : 0;
          break;
        case 3:
          expectWireType(tag, 0);
          varint64(limit);
          this.types[index] = INT;
          this.first[index] = low;
          this.second[index] = high;
          break;
        case 4:
          expectWireType(tag, 1);
          if (pos + 8 > limit) throw RECORD_PATH;
          this.types[index] = FLOAT;
          this.first[index] = pos;
          pos += 8;
          break;
        case 5:
        case 6:
        case 7:
          throw RECORD_PATH;
        default:
          fields -= 1;
          skipField(tag, limit);
      }
    }
    if (fields !== 1) throw RECORD_PATH;
  }

  private writeEvents(): void {
    const offsets = this.events;
    const [times, eventNames, texts, dropped] = EVENT_COLUMNS;
    for (let index = 0; index < offsets.length; index += 2) {
      pos = offsets[index];
      const limit = offsets[index + 1];
      let timeLow = 0;
      let timeHigh = 0;
      let name = 0;
      let nameEnd = 0;
      let droppedCount = 0;
      const attributes: number[] = [];
      while (pos < limit) {
        const tag = varint(limit);
        switch (tag >>> 3) {
          case 1:
            expectWireType(tag, 1);
            timeLow = fixed32(limit);
            timeHigh = fixed32(limit);
            break;
          case 2:
            name = textField(tag, limit);
            nameEnd = fieldEnd;
            break;
          case 3:
            pos = pushRegion(tag, attributes, limit);
            break;
          case 4:
            droppedCount = uintField(tag, limit);
            break;
          default:
            skipField(tag, limit);
        }
      }
      if (timeHigh >= MAX_STORABLE_HIGH) throw RECORD_PATH;
      // Both times are below 2^63, so the offset fits in Int64 with no clamp.
      const borrow = timeLow < this.startLow ? 1 : 0;
      times.values.int64Parts(timeLow - this.startLow, timeHigh - this.startHigh - borrow);
      eventNames.values.stringFrom(body, name, nameEnd);
      this.writeKeyValuesJson(texts.values, attributes);
      dropped.values.uint32(droppedCount);
      for (const eventColumn of EVENT_COLUMNS) eventColumn.count += 1;
    }
    for (const eventColumn of EVENT_COLUMNS) eventColumn.endRow();
  }

  /**
   * Writes the attributes at `offsets` as the JSON text of their KeyValue list, the form
   * of event and link attributes. Scalar values are written from the body's bytes, and a
   * list with any other value is read as the record path reads it.
   */
  private writeKeyValuesJson(target: ByteWriter, offsets: number[]): void {
    if (offsets.length / 2 > this.limits.maxAttributesPerSpan) throw RECORD_PATH;
    if (this.scalarKeyValuesJson(offsets)) {
      target.leb128(JSON_TEXT.length);
      target.append(JSON_TEXT);
    } else {
      target.string(storedJson(this.keyValues(offsets, 0, offsets.length)));
    }
  }

  /**
   * Writes the JSON text of attributes with scalar values into JSON_TEXT, as storedJson
   * writes their KeyValue list. Returns false for any other list, whose text is then incomplete.
   */
  private scalarKeyValuesJson(offsets: number[]): boolean {
    JSON_TEXT.length = 0;
    JSON_TEXT.uint8(OPEN_BRACKET);
    for (let index = 0; index < offsets.length / 2; index += 1) {
      try {
        this.attribute(offsets[index * 2], offsets[index * 2 + 1], index);
      } catch (error) {
        if (error === RECORD_PATH) return false;
        throw error;
      }
      if (index > 0) JSON_TEXT.uint8(COMMA);
      JSON_TEXT.copyFrom(JSON_KEY, 0, JSON_KEY.length);
      jsonText(this.keyStarts[index], this.keyEnds[index]);
      const { first, second } = this;
      switch (this.types[index]) {
        case STRING:
          JSON_TEXT.copyFrom(JSON_STRING_VALUE, 0, JSON_STRING_VALUE.length);
          jsonText(first[index], second[index]);
          break;
        case INT:
          JSON_TEXT.utf8(`${JSON_INT_VALUE}"${decimal(first[index], second[index])}"`);
          break;
        case FLOAT:
          JSON_TEXT.utf8(
            `${JSON_DOUBLE_VALUE}${storedJson(toDouble(body.readDoubleLE(first[index])))}`,
          );
          break;
        default:
          JSON_TEXT.utf8(first[index] === 1 ? JSON_TRUE_VALUE : JSON_FALSE_VALUE);
      }
      JSON_TEXT.uint8(CLOSE_BRACE);
      JSON_TEXT.uint8(CLOSE_BRACE);
    }
    JSON_TEXT.uint8(CLOSE_BRACKET);
    return true;
  }

  private writeLinks(): void {
    const offsets = this.links;
    const [linkTraceIds, linkSpanIds, states, texts, dropped, linkFlags] = LINK_COLUMNS;
    for (let index = 0; index < offsets.length; index += 2) {
      pos = offsets[index];
      const limit = offsets[index + 1];
      let traceId = -1;
      let traceIdLength = 0;
      let spanId = -1;
      let spanIdLength = 0;
      let state = 0;
      let stateEnd = 0;
      let droppedCount = 0;
      let flags = 0;
      const attributes: number[] = [];
      while (pos < limit) {
        const tag = varint(limit);
        switch (tag >>> 3) {
          case 1:
            traceId = this.bytesField(tag, limit);
            traceIdLength = low;
            break;
          case 2:
            spanId = this.bytesField(tag, limit);
            spanIdLength = low;
            break;
          case 3:
            state = textField(tag, limit);
            stateEnd = fieldEnd;
            break;
          case 4:
            pos = pushRegion(tag, attributes, limit);
            break;
          case 5:
            droppedCount = uintField(tag, limit);
            break;
          case 6:
            expectWireType(tag, 5);
            flags = fixed32(limit);
            break;
          default:
            skipField(tag, limit);
        }
      }
      if (traceId < 0 || traceIdLength !== 16 || spanId < 0 || spanIdLength !== 8) {
        throw RECORD_PATH;
      }
      linkTraceIds.values.reversedFrom(body, traceId, 16);
      linkSpanIds.values.reversedFrom(body, spanId, 8);
      states.values.stringFrom(body, state, stateEnd);
      this.writeKeyValuesJson(texts.values, attributes);
      dropped.values.uint32(droppedCount);
      linkFlags.values.uint32(flags);
      for (const linkColumn of LINK_COLUMNS) linkColumn.count += 1;
    }
    for (const linkColumn of LINK_COLUMNS) linkColumn.endRow();
  }
}

// The JSON text of event and link attributes is built here, then copied to its column.
const JSON_TEXT = new ByteWriter(1 << 12);
const JSON_KEY = Buffer.from('{"key":');
const JSON_STRING_VALUE = Buffer.from(',"value":{"stringValue":');
const JSON_INT_VALUE = ',"value":{"intValue":';
const JSON_DOUBLE_VALUE = ',"value":{"doubleValue":';
const JSON_TRUE_VALUE = ',"value":{"boolValue":true';
const JSON_FALSE_VALUE = ',"value":{"boolValue":false';
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const CLOSE_BRACE = 0x7d;
const COMMA = 0x2c;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Writes checked UTF-8 text as a JSON string, as JSON.stringify writes it: quoted as it
 * is, unless a quote, a backslash or a control character needs an escape.
 */
function jsonText(start: number, end: number): void {
  for (let index = start; index < end; index += 1) {
    const byte = body[index];
    if (byte < 0x20 || byte === QUOTE || byte === BACKSLASH) {
      JSON_TEXT.utf8(JSON.stringify(decodeText(start, end, false)));
      return;
    }
  }
  JSON_TEXT.uint8(QUOTE);
  JSON_TEXT.copyFrom(body, start, end);
  JSON_TEXT.uint8(QUOTE);
}

// The block's row count comes after the column count, then each column: its name and
// type, then its values.
const COLUMN_COUNT = leb128Bytes(SPAN_COLUMNS.length);
const HEADERS = SPAN_COLUMNS.map((name) => {
  const header = new ByteWriter(256);
  header.string(name);
  header.string(SPAN_NATIVE_TYPES[name]);
  return header.take();
});

function leb128Bytes(value: number): Buffer {
  const writer = new ByteWriter(16);
  writer.leb128(value);
  return writer.take();
}

/** Joins the columns into one Native block of `rows` rows, in the order of SPAN_COLUMNS. */
function joinColumns(rows: number): Buffer {
  const rowCount = leb128Bytes(rows);
  let size = COLUMN_COUNT.length + rowCount.length;
  SPAN_COLUMNS.forEach((name, index) => {
    const { prefix, offsets, keys, values, dictionary, keyDictionary } = columns.get(name)!;
    dictionary?.writeTo(values);
    keyDictionary?.writeTo(keys);
    size += HEADERS[index].length + prefix.length + offsets.length + keys.length + values.length;
  });
  const block = Buffer.allocUnsafe(size);
  let at = COLUMN_COUNT.copy(block, 0);
  at += rowCount.copy(block, at);
  SPAN_COLUMNS.forEach((name, index) => {
    const { prefix, offsets, keys, values } = columns.get(name)!;
    at += HEADERS[index].copy(block, at);
    at += prefix.copy(block, at);
    at = offsets.copyTo(block, at);
    at = keys.copyTo(block, at);
    at = values.copyTo(block, at);
  });
  return block;
}

export interface ProtobufRowsOptions {
  limits: FlattenLimits;
  /** The earliest start that storage keeps, in nanoseconds. */
  oldestNs: bigint;
  /** The clock, in nanoseconds, that the future tolerance counts from; now by default. */
  nowNs?: bigint;
}

function clearColumns(): void {
  for (const builder of columns.values()) builder.clear();
}

/**
 * Converts a body into the column builders after what they contain, and returns its span
 * count. Returns undefined when the body needs the record path. The builders may then
 * contain part of its spans, so the caller clears or rebuilds them.
 */
function convertInto(request: Uint8Array, options: ProtobufRowsOptions, nowNs: bigint) {
  body = Buffer.isBuffer(request)
    ? request
    : Buffer.from(request.buffer, request.byteOffset, request.byteLength);
  bodyView = new DataView(body.buffer, body.byteOffset, body.byteLength);
  pos = 0;
  const converter = new Converter(options.limits, nowNs, options.oldestNs);
  try {
    converter.request();
  } catch {
    // RECORD_PATH, or a body that does not decode: the record path gives its error.
    return undefined;
  } finally {
    body = Buffer.alloc(0);
    bodyView = new DataView(body.buffer, body.byteOffset, body.byteLength);
  }
  return converter.spans === 0 ? undefined : converter.spans;
}

function nowNsOf(options: ProtobufRowsOptions): bigint {
  return options.nowNs ?? BigInt(Date.now()) * 1_000_000n;
}

function rowsOf(spans: number): SpanRows {
  return { format: 'Native', columns: SPAN_COLUMNS, chunks: [joinColumns(spans)], count: spans };
}

// The id of the group whose bodies the column builders hold, or 0 after a conversion of a
// single body. A group that finds another owner converts its bodies again first.
let builderOwner = 0;
let groupIds = 0;

/**
 * Converts a protobuf body into the Native block of its spans, or returns undefined when
 * the body needs the record path (see the note at the top).
 */
export function protobufSpanRows(
  request: Uint8Array,
  options: ProtobufRowsOptions,
): SpanRows | undefined {
  builderOwner = 0;
  clearColumns();
  const spans = convertInto(request, options, nowNsOf(options));
  return spans === undefined ? undefined : rowsOf(spans);
}

/**
 * Converts several protobuf bodies into one Native block, as `protobufSpanRows` converts
 * each. The engine handles each block of an insert apart before it joins them. Blocks of
 * one 500-span export each cost it more CPU a span than larger ones (`insert.blockSize`
 * of `npm run bench:insert`). So the collector gathers the exports that arrive together
 * into one block.
 */
export class SpanBlockGroup {
  private readonly id = ++groupIds;
  private readonly bodies: { request: Uint8Array; options: ProtobufRowsOptions; nowNs: bigint }[] =
    [];
  /** Spans of the bodies added since the last `take`. */
  spans = 0;

  /**
   * Adds a body's spans and returns their count, or returns undefined, adding nothing,
   * when the body needs the record path. `check` gets the count first; when it throws,
   * nothing is added and the error passes on.
   */
  add(
    request: Uint8Array,
    options: ProtobufRowsOptions,
    check?: (spans: number) => void,
  ): number | undefined {
    if (builderOwner !== this.id) this.rebuild();
    const nowNs = nowNsOf(options);
    const spans = convertInto(request, options, nowNs);
    if (spans === undefined) {
      this.rebuild();
      return undefined;
    }
    try {
      check?.(spans);
    } catch (error) {
      this.rebuild();
      throw error;
    }
    this.bodies.push({ request, options, nowNs });
    this.spans += spans;
    return spans;
  }

  /** Returns the block of the bodies added so far, or undefined when none, and empties the group. */
  take(): SpanRows | undefined {
    if (this.spans === 0) return undefined;
    if (builderOwner !== this.id) this.rebuild();
    const rows = rowsOf(this.spans);
    // Empty builders are this group's state again, so they stay its own.
    this.bodies.length = 0;
    this.spans = 0;
    clearColumns();
    return rows;
  }

  /**
   * Fills the builders with this group's bodies alone: after a body that needed the
   * record path left part of its spans, or after another conversion used them. Each body
   * converted before with the same clock, so it converts the same again.
   */
  private rebuild(): void {
    builderOwner = this.id;
    clearColumns();
    for (const { request, options, nowNs } of this.bodies) convertInto(request, options, nowNs);
  }
}
