import {
  SPAN_KINDS,
  STATUS_CODES,
  type AnyValue,
  type KeyValue,
  type SpanKind,
  type SpanRecord,
  type StatusCode,
} from '../model/span';
import {
  ByteWriter,
  DICTIONARY_PREFIX,
  DictionaryColumn,
  readNativeRows,
  writeNativeBlock,
} from './native';

/**
 * Row of the `spans` table in the JSON form that JSONEachRow inserts and selects use.
 * The end time is not stored: readers add `duration_ns` to `start_time`.
 */
export interface SpanRow {
  trace_id: string;
  span_id: string;
  parent_span_id: string;
  trace_state: string;
  flags: number;
  name: string;
  kind: SpanKind;
  start_time: string;
  duration_ns: string;
  status_code: StatusCode;
  status_message: string;
  service_name: string;
  service_version: string;
  deployment_environment: string;
  remote_service: string;
  http_status_code: number;
  is_error: boolean;
  attributes_string: Record<string, string>;
  attributes_int: Record<string, string>;
  attributes_float: Record<string, number>;
  attributes_bool: Record<string, boolean>;
  attributes_complex: Record<string, string>;
  dropped_attributes_count: number;
  resource_attributes: string;
  dropped_resource_attributes_count: number;
  scope_name: string;
  scope_version: string;
  scope_attributes: string;
  /** Nanoseconds from the span's start time to each event's time; negative before it. */
  'events.time_offset_ns': string[];
  'events.name': string[];
  'events.attributes': string[];
  'events.dropped_attributes_count': number[];
  dropped_events_count: number;
  link_trace_ids: string[];
  link_span_ids: string[];
  link_trace_states: string[];
  link_attributes: string[];
  link_dropped_attributes_counts: number[];
  link_flags: number[];
  dropped_links_count: number;
  ingest_warnings: string[];
}

/** Converts a hex id to the decimal text of the UInt128 or UInt64 column that stores it. */
export function hexToDecimal(hex: string): string {
  return hex === '' ? '0' : BigInt(`0x${hex}`).toString();
}

interface TypedAttributes {
  string: Record<string, string>;
  int: Record<string, string>;
  float: Record<string, number>;
  bool: Record<string, boolean>;
  complex: Record<string, string>;
}

function splitAttributes(attributes: KeyValue[]): TypedAttributes {
  const typed: TypedAttributes = { string: {}, int: {}, float: {}, bool: {}, complex: {} };
  for (const { key, value } of attributes) {
    if ('stringValue' in value) typed.string[key] = value.stringValue;
    else if ('intValue' in value) typed.int[key] = value.intValue;
    else if ('doubleValue' in value) typed.float[key] = value.doubleValue;
    else if ('boolValue' in value) typed.bool[key] = value.boolValue;
    else typed.complex[key] = storedJson(value);
  }
  return typed;
}

/** Replaces NaN and the infinities, which JSON has no numbers for, with their OTLP/JSON strings. */
function nonFiniteAsText(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : value;
}

/**
 * Returns the JSON text of a stored attribute list or value: the attributes of resources,
 * scopes, events and links, and span attributes that are arrays, kvlists or bytes. A NaN
 * or infinite double is written as the string "NaN", "Infinity" or "-Infinity", as
 * OTLP/JSON writes it, where JSON.stringify would write null.
 */
export function storedJson(value: unknown): string {
  const text = JSON.stringify(value);
  // A non-finite number becomes null, so only such a text needs the second pass.
  return text.includes('null') ? JSON.stringify(value, nonFiniteAsText) : text;
}

// Spans of one resource or scope share its attribute array, so its JSON text is built
// once a batch rather than once a span.
const keyValuesJson = new WeakMap<KeyValue[], string>();

function toKeyValuesJson(attributes: KeyValue[]): string {
  if (attributes.length === 0) return '[]';
  let text = keyValuesJson.get(attributes);
  if (text === undefined) {
    text = storedJson(attributes);
    keyValuesJson.set(attributes, text);
  }
  return text;
}

/** Converts a flattened span into the row inserted into `spans`. */
export function toSpanRow(span: SpanRecord): SpanRow {
  const typed = splitAttributes(span.attributes);
  const start = BigInt(span.startTimeUnixNano);
  return {
    trace_id: hexToDecimal(span.traceId),
    span_id: hexToDecimal(span.spanId),
    parent_span_id: hexToDecimal(span.parentSpanId),
    trace_state: span.traceState,
    flags: span.flags,
    name: span.name,
    kind: span.kind,
    start_time: span.startTimeUnixNano,
    duration_ns: span.durationNs,
    status_code: span.statusCode,
    status_message: span.statusMessage,
    service_name: span.serviceName,
    service_version: span.serviceVersion,
    deployment_environment: span.deploymentEnvironment,
    remote_service: span.remoteService,
    http_status_code: span.httpStatusCode,
    is_error: span.isError,
    attributes_string: typed.string,
    attributes_int: typed.int,
    attributes_float: typed.float,
    attributes_bool: typed.bool,
    attributes_complex: typed.complex,
    dropped_attributes_count: span.droppedAttributesCount,
    resource_attributes: toKeyValuesJson(span.resourceAttributes),
    dropped_resource_attributes_count: span.droppedResourceAttributesCount,
    scope_name: span.scopeName,
    scope_version: span.scopeVersion,
    scope_attributes: toKeyValuesJson(span.scopeAttributes),
    'events.time_offset_ns': span.events.map((event) =>
      (BigInt(event.timeUnixNano) - start).toString(),
    ),
    'events.name': span.events.map((event) => event.name),
    'events.attributes': span.events.map((event) => storedJson(event.attributes)),
    'events.dropped_attributes_count': span.events.map((event) => event.droppedAttributesCount),
    dropped_events_count: span.droppedEventsCount,
    link_trace_ids: span.links.map((link) => hexToDecimal(link.traceId)),
    link_span_ids: span.links.map((link) => hexToDecimal(link.spanId)),
    link_trace_states: span.links.map((link) => link.traceState),
    link_attributes: span.links.map((link) => storedJson(link.attributes)),
    link_dropped_attributes_counts: span.links.map((link) => link.droppedAttributesCount),
    link_flags: span.links.map((link) => link.flags),
    dropped_links_count: span.droppedLinksCount,
    ingest_warnings: span.ingestWarnings,
  };
}

function hexId(expression: string, digits: number): string {
  return `leftPad(lower(hex(${expression})), ${digits}, '0')`;
}

/** Every column of `spans` that the writer fills and readers select, in insert order. */
export const SPAN_COLUMNS: [keyof SpanRow, ...(keyof SpanRow)[]] = [
  'trace_id',
  'span_id',
  'parent_span_id',
  'trace_state',
  'flags',
  'name',
  'kind',
  'start_time',
  'duration_ns',
  'status_code',
  'status_message',
  'service_name',
  'service_version',
  'deployment_environment',
  'remote_service',
  'http_status_code',
  'is_error',
  'attributes_string',
  'attributes_int',
  'attributes_float',
  'attributes_bool',
  'attributes_complex',
  'dropped_attributes_count',
  'resource_attributes',
  'dropped_resource_attributes_count',
  'scope_name',
  'scope_version',
  'scope_attributes',
  'events.time_offset_ns',
  'events.name',
  'events.attributes',
  'events.dropped_attributes_count',
  'dropped_events_count',
  'link_trace_ids',
  'link_span_ids',
  'link_trace_states',
  'link_attributes',
  'link_dropped_attributes_counts',
  'link_flags',
  'dropped_links_count',
  'ingest_warnings',
];

/** Select expressions of the columns that readers get in another form than stored. */
const SELECT_EXPRESSIONS: Partial<Record<keyof SpanRow, string>> = {
  trace_id: hexId('trace_id', 32),
  span_id: hexId('span_id', 16),
  parent_span_id: `if(parent_span_id = 0, '', ${hexId('parent_span_id', 16)})`,
  start_time: 'toUnixTimestamp64Nano(start_time)',
  // As text, because JSON output turns NaN and the infinities into null.
  attributes_float: 'mapApply((key, value) -> (key, toString(value)), attributes_float)',
  link_trace_ids: `arrayMap(id -> ${hexId('id', 32)}, link_trace_ids)`,
  link_span_ids: `arrayMap(id -> ${hexId('id', 16)}, link_span_ids)`,
};

/**
 * Column list that selects a stored span in the shape `fromSelectedRow` reads: ids as
 * hex, times as nanoseconds since the epoch.
 */
export const SPAN_SELECT = spanSelect();

/**
 * Empty values for the span attribute maps and the scope attributes, which take most of
 * the bytes a span and which cause analysis does not read. The one exception is
 * `http.route`, which names the endpoint of a handler span. It is read from `http_route`.
 */
const WITHOUT_ATTRIBUTES: Partial<Record<keyof SpanRow, string>> = {
  attributes_string:
    "if(http_route = '', CAST(map(), 'Map(String, String)'), map('http.route', toString(http_route)))",
  attributes_int: "CAST(map(), 'Map(String, Int64)')",
  attributes_float: "CAST(map(), 'Map(String, Float64)')",
  attributes_bool: "CAST(map(), 'Map(String, Bool)')",
  attributes_complex: "CAST(map(), 'Map(String, String)')",
  scope_attributes: "'[]'",
};

/**
 * Column list in the shape `fromSelectedRow` reads. With `attributes: false` the span
 * attributes and scope attributes come back empty and are not read from disk; resource
 * attributes, events and links are still read.
 */
export function spanSelect(options: { attributes: boolean } = { attributes: true }): string {
  return SPAN_COLUMNS.map((column) => {
    const expression =
      (options.attributes ? undefined : WITHOUT_ATTRIBUTES[column]) ?? SELECT_EXPRESSIONS[column];
    return expression ? `${expression} AS ${column}` : column;
  }).join(',\n  ');
}

/** Reads a Float64 that ClickHouse wrote as text, where NaN is `nan` and infinity `inf`. */
function readDouble(value: number | string): number {
  if (typeof value === 'number') return value;
  const text = value.toLowerCase();
  if (text.endsWith('inf')) return text.startsWith('-') ? -Infinity : Infinity;
  if (text.endsWith('nan')) return NaN;
  return Number(text);
}

function joinAttributes(row: SpanRow): KeyValue[] {
  const attributes: KeyValue[] = [];
  const push = (key: string, value: AnyValue) => attributes.push({ key, value });
  for (const [key, value] of Object.entries(row.attributes_string))
    push(key, { stringValue: value });
  for (const [key, value] of Object.entries(row.attributes_int))
    push(key, { intValue: String(value) });
  for (const [key, value] of Object.entries(row.attributes_float))
    push(key, { doubleValue: readDouble(value) });
  for (const [key, value] of Object.entries(row.attributes_bool))
    push(key, { boolValue: Boolean(value) });
  for (const [key, value] of Object.entries(row.attributes_complex))
    push(key, JSON.parse(value) as AnyValue);
  return attributes.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** Converts a row selected with `SPAN_SELECT` back into a span. */
export function fromSelectedRow(row: SpanRow): SpanRecord {
  const start = BigInt(row.start_time);
  return {
    traceId: row.trace_id,
    spanId: row.span_id,
    parentSpanId: row.parent_span_id,
    traceState: row.trace_state,
    flags: Number(row.flags),
    name: row.name,
    kind: row.kind,
    startTimeUnixNano: String(row.start_time),
    endTimeUnixNano: (start + BigInt(row.duration_ns)).toString(),
    durationNs: String(row.duration_ns),
    statusCode: row.status_code,
    statusMessage: row.status_message,
    serviceName: row.service_name,
    serviceVersion: row.service_version,
    deploymentEnvironment: row.deployment_environment,
    remoteService: row.remote_service,
    httpStatusCode: Number(row.http_status_code),
    isError: Boolean(row.is_error),
    attributes: joinAttributes(row),
    droppedAttributesCount: Number(row.dropped_attributes_count),
    resourceAttributes: JSON.parse(row.resource_attributes) as KeyValue[],
    droppedResourceAttributesCount: Number(row.dropped_resource_attributes_count),
    scopeName: row.scope_name,
    scopeVersion: row.scope_version,
    scopeAttributes: JSON.parse(row.scope_attributes) as KeyValue[],
    events: row['events.time_offset_ns'].map((offset, index) => ({
      timeUnixNano: (start + BigInt(offset)).toString(),
      name: row['events.name'][index] ?? '',
      attributes: JSON.parse(row['events.attributes'][index] ?? '[]') as KeyValue[],
      droppedAttributesCount: Number(row['events.dropped_attributes_count'][index] ?? 0),
    })),
    droppedEventsCount: Number(row.dropped_events_count),
    links: row.link_trace_ids.map((traceId, index) => ({
      traceId,
      spanId: row.link_span_ids[index] ?? '',
      traceState: row.link_trace_states[index] ?? '',
      attributes: JSON.parse(row.link_attributes[index] ?? '[]') as KeyValue[],
      droppedAttributesCount: Number(row.link_dropped_attributes_counts[index] ?? 0),
      flags: Number(row.link_flags[index] ?? 0),
    })),
    droppedLinksCount: Number(row.dropped_links_count),
    ingestWarnings: row.ingest_warnings,
  };
}

/** Insert formats of `SpanRows`. Logs of earlier versions contain JSONCompactEachRow. */
export type RowFormat = 'Native' | 'JSONCompactEachRow';

/**
 * Spans ready to insert into `spans`, in one of two formats. Native rows are one or more
 * Native blocks. JSONCompactEachRow rows are one line a span, each ending in a newline.
 * The write-ahead log keeps spans in this form, so storing them later needs no parsing or
 * conversion, only concatenation.
 */
export interface SpanRows {
  format: RowFormat;
  /** Columns of every row, in order. A log written by an older version may have fewer. */
  columns: readonly string[];
  /** Whole blocks or lines, in one or more chunks. */
  chunks: Buffer[];
  count: number;
}

const NEWLINE = 0x0a;

/**
 * Native types of the columns in `SPAN_COLUMNS`. The columns of a span's resource and
 * scope and the attribute keys go as LowCardinality, each value once a block, since
 * spans repeat them. The other LowCardinality columns of the table, such as the string
 * attribute values, go without it, and the engine converts them on insert.
 */
export const SPAN_NATIVE_TYPES: Record<keyof SpanRow, string> = {
  trace_id: 'UInt128',
  span_id: 'UInt64',
  parent_span_id: 'UInt64',
  trace_state: 'String',
  flags: 'UInt32',
  name: 'String',
  kind: `Enum8(${SPAN_KINDS.map((kind, code) => `'${kind}' = ${code}`).join(', ')})`,
  start_time: 'DateTime64(9)',
  duration_ns: 'UInt64',
  status_code: `Enum8(${STATUS_CODES.map((status, code) => `'${status}' = ${code}`).join(', ')})`,
  status_message: 'String',
  service_name: 'LowCardinality(String)',
  service_version: 'LowCardinality(String)',
  deployment_environment: 'LowCardinality(String)',
  remote_service: 'String',
  http_status_code: 'UInt16',
  is_error: 'Bool',
  attributes_string: 'Map(LowCardinality(String), String)',
  attributes_int: 'Map(LowCardinality(String), Int64)',
  attributes_float: 'Map(LowCardinality(String), Float64)',
  attributes_bool: 'Map(LowCardinality(String), Bool)',
  attributes_complex: 'Map(LowCardinality(String), String)',
  dropped_attributes_count: 'UInt32',
  resource_attributes: 'LowCardinality(String)',
  dropped_resource_attributes_count: 'UInt32',
  scope_name: 'LowCardinality(String)',
  scope_version: 'LowCardinality(String)',
  scope_attributes: 'LowCardinality(String)',
  'events.time_offset_ns': 'Array(Int64)',
  'events.name': 'Array(String)',
  'events.attributes': 'Array(String)',
  'events.dropped_attributes_count': 'Array(UInt32)',
  dropped_events_count: 'UInt32',
  link_trace_ids: 'Array(UInt128)',
  link_span_ids: 'Array(UInt64)',
  link_trace_states: 'Array(String)',
  link_attributes: 'Array(String)',
  link_dropped_attributes_counts: 'Array(UInt32)',
  link_flags: 'Array(UInt32)',
  dropped_links_count: 'UInt32',
  ingest_warnings: 'Array(String)',
};

const KIND_CODES = new Map<string, number>(SPAN_KINDS.map((kind, code) => [kind, code]));
const STATUS_CODE_VALUES = new Map<string, number>(
  STATUS_CODES.map((status, code) => [status, code]),
);

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

/**
 * Limits a number to the range of its column. An event time past the year 2262 (OTLP
 * allows any 64-bit unsigned time) has an offset from the start beyond Int64.
 */
function clamp(value: bigint, min: bigint, max: bigint): bigint {
  if (value < min) return min;
  if (value > max) return max;
  return value;
}

const UINT32_MAX = 0xffffffff;

/**
 * Limits a count or flags value to UInt32, the type of its column. OTLP/JSON numbers have
 * no upper bound, and a count sent at the maximum plus the attributes dropped at the limit
 * exceeds it, so such a value is stored as the maximum.
 */
function toUInt32(value: number): number {
  if (value > UINT32_MAX) return UINT32_MAX;
  return value > 0 ? value : 0;
}

function enumCode(codes: Map<string, number>, value: string): number {
  const code = codes.get(value);
  if (code === undefined) {
    throw new Error(
      `invalid enum value ${JSON.stringify(value)}: expected one of ${[...codes.keys()].join(', ')}`,
    );
  }
  return code;
}

// Attribute maps by value type, in the order of their columns.
const STRING = 0;
const INT = 1;
const FLOAT = 2;
const BOOL = 3;
const COMPLEX = 4;
const VALUE_TYPES = 5;

function valueType(value: AnyValue): number {
  if ('stringValue' in value) return STRING;
  if ('intValue' in value) return INT;
  if ('doubleValue' in value) return FLOAT;
  if ('boolValue' in value) return BOOL;
  return COMPLEX;
}

// UTF-8 text of the resource and scope attribute lists, built once a batch like their JSON.
const keyValuesByteCache = new WeakMap<KeyValue[], Buffer>();

const EMPTY_LIST_BYTES = Buffer.from('[]');

/** Returns the UTF-8 JSON text of a resource, scope, event or link attribute list, as stored. */
export function keyValuesBytes(attributes: KeyValue[]): Buffer {
  // A sender may give each span a scope of its own without attributes, as the OpenTelemetry
  // JS serializer does for spans with separate scope objects, so an empty list needs no
  // cache entry.
  if (attributes.length === 0) return EMPTY_LIST_BYTES;
  let bytes = keyValuesByteCache.get(attributes);
  if (bytes === undefined) {
    bytes = Buffer.from(toKeyValuesJson(attributes));
    keyValuesByteCache.set(attributes, bytes);
  }
  return bytes;
}

// Up to this many attributes, repeated keys are found by comparing every pair, which
// allocates nothing.
const PAIRWISE_MAX_ATTRIBUTES = 16;
const SEEN_KEYS = new Set<string>();

function hasRepeatedKey(attributes: KeyValue[]): boolean {
  if (attributes.length <= PAIRWISE_MAX_ATTRIBUTES) {
    for (let index = 1; index < attributes.length; index += 1) {
      const key = attributes[index].key;
      for (let before = 0; before < index; before += 1) {
        if (attributes[before].key === key) return true;
      }
    }
    return false;
  }
  SEEN_KEYS.clear();
  for (const { key } of attributes) SEEN_KEYS.add(key);
  return SEEN_KEYS.size < attributes.length;
}

/**
 * Removes each attribute whose key comes again later with a value of the same type, so
 * each map contains a key once, with its last value, as the JSON objects of
 * JSONCompactEachRow rows did. With a repeated key, `map[key]` and the columns
 * materialized from it, such as `http_route`, would return the first value.
 */
function withoutRepeatedKeys(attributes: KeyValue[]): KeyValue[] {
  if (!hasRepeatedKey(attributes)) return attributes;

  const lastIndex = new Map<string, number>();
  attributes.forEach((attribute, index) => {
    lastIndex.set(`${valueType(attribute.value)}:${attribute.key}`, index);
  });
  return attributes.filter(
    (attribute, index) => lastIndex.get(`${valueType(attribute.value)}:${attribute.key}`) === index,
  );
}

// Builds each LowCardinality column of a block in turn.
const DICTIONARY = new DictionaryColumn();

/**
 * Writes the attribute maps: for each value type, the end offsets of every span's entries,
 * then their keys, then their values.
 */
function writeAttributeMaps(writer: ByteWriter, spans: readonly SpanRecord[]): void {
  const counts = new Uint32Array(spans.length * VALUE_TYPES);
  const keys: string[][] = [[], [], [], [], []];
  const values: AnyValue[][] = [[], [], [], [], []];
  for (let index = 0; index < spans.length; index += 1) {
    for (const { key, value } of withoutRepeatedKeys(spans[index].attributes)) {
      const type = valueType(value);
      keys[type].push(key);
      values[type].push(value);
      counts[index * VALUE_TYPES + type] += 1;
    }
  }
  const columns = SPAN_COLUMNS.slice(SPAN_COLUMNS.indexOf('attributes_string'));
  for (let type = 0; type < VALUE_TYPES; type += 1) {
    writeHeader(writer, columns[type]);
    writer.copyFrom(DICTIONARY_PREFIX, 0, DICTIONARY_PREFIX.length);
    let end = 0;
    for (let index = 0; index < spans.length; index += 1) {
      end += counts[index * VALUE_TYPES + type];
      writer.uint64Number(end);
    }
    DICTIONARY.clear();
    for (const key of keys[type]) DICTIONARY.add(keyBytes(key));
    DICTIONARY.writeTo(writer);
    const typed = values[type];
    if (type === STRING) {
      for (const value of typed) writer.string((value as { stringValue: string }).stringValue);
    } else if (type === INT) {
      for (const value of typed) writer.int64(BigInt((value as { intValue: string }).intValue));
    } else if (type === FLOAT) {
      for (const value of typed) writer.float64((value as { doubleValue: number }).doubleValue);
    } else if (type === BOOL) {
      for (const value of typed) writer.uint8((value as { boolValue: boolean }).boolValue ? 1 : 0);
    } else {
      for (const value of typed) writer.string(storedJson(value));
    }
  }
}

function writeHeader(writer: ByteWriter, column: keyof SpanRow): void {
  writer.string(column);
  writer.string(SPAN_NATIVE_TYPES[column]);
}

/** Writes the end offsets of an array column: one running total a span. */
function writeArrayEnds(writer: ByteWriter, spans: readonly SpanRecord[], lengths: number[]): void {
  let end = 0;
  for (let index = 0; index < spans.length; index += 1) {
    end += lengths[index];
    writer.uint64Number(end);
  }
}

/**
 * Writes an array column of the events or links of each span: the end offsets, then one
 * value an item, written by `write`.
 */
function writeNested<Item>(
  writer: ByteWriter,
  column: keyof SpanRow,
  spans: readonly SpanRecord[],
  counts: number[],
  items: (span: SpanRecord) => readonly Item[],
  write: (item: Item) => void,
): void {
  writeHeader(writer, column);
  writeArrayEnds(writer, spans, counts);
  for (const span of spans) for (const item of items(span)) write(item);
}

/** Writes a LowCardinality column of one value a span, given as UTF-8 bytes. */
function writeDictionary(
  writer: ByteWriter,
  column: keyof SpanRow,
  spans: readonly SpanRecord[],
  bytes: (span: SpanRecord) => Buffer,
): void {
  writeHeader(writer, column);
  writer.copyFrom(DICTIONARY_PREFIX, 0, DICTIONARY_PREFIX.length);
  DICTIONARY.clear();
  for (const span of spans) DICTIONARY.add(bytes(span));
  DICTIONARY.writeTo(writer);
}

const KEY_BYTES = new Map<string, Buffer>();
const MAX_KEPT_KEYS = 10_000;

/** Returns the UTF-8 bytes of an attribute key, the same Buffer each time for a known key. */
function keyBytes(key: string): Buffer {
  let bytes = KEY_BYTES.get(key);
  if (bytes === undefined) {
    if (KEY_BYTES.size >= MAX_KEPT_KEYS) KEY_BYTES.clear();
    bytes = Buffer.from(key);
    KEY_BYTES.set(key, bytes);
  }
  return bytes;
}

let lastText: string | undefined;
let lastTextBytes = Buffer.alloc(0);

/** Returns the UTF-8 bytes of a text, the same Buffer for the same text as the call before. */
function textBytes(text: string): Buffer {
  if (text !== lastText) {
    lastText = text;
    lastTextBytes = Buffer.from(text);
  }
  return lastTextBytes;
}

// Conversion is synchronous, so every block is built in this one buffer, which grows to
// the largest block, and is then copied out at its size.
const SCRATCH = new ByteWriter(1 << 20);

/**
 * Converts spans into one Native block of every column in `SPAN_COLUMNS`, column after
 * column, in that order, with the values `toSpanRow` gives.
 */
export function toSpanRows(spans: readonly SpanRecord[]): SpanRows {
  const writer = SCRATCH;
  // A conversion that threw midway may have left bytes behind.
  writer.length = 0;
  writer.leb128(SPAN_COLUMNS.length);
  writer.leb128(spans.length);
  const starts = spans.map((span) => BigInt(span.startTimeUnixNano));
  const eventCounts = spans.map((span) => span.events.length);
  const linkCounts = spans.map((span) => span.links.length);

  writeHeader(writer, 'trace_id');
  for (const span of spans) writer.hexId(span.traceId, 16);
  writeHeader(writer, 'span_id');
  for (const span of spans) writer.hexId(span.spanId, 8);
  writeHeader(writer, 'parent_span_id');
  for (const span of spans) writer.hexId(span.parentSpanId, 8);
  writeHeader(writer, 'trace_state');
  for (const span of spans) writer.string(span.traceState);
  writeHeader(writer, 'flags');
  for (const span of spans) writer.uint32(toUInt32(span.flags));
  writeHeader(writer, 'name');
  for (const span of spans) writer.string(span.name);
  writeHeader(writer, 'kind');
  for (const span of spans) writer.int8(enumCode(KIND_CODES, span.kind));
  writeHeader(writer, 'start_time');
  for (const start of starts) writer.int64(start);
  writeHeader(writer, 'duration_ns');
  for (const span of spans) writer.uint64(clamp(BigInt(span.durationNs), 0n, UINT64_MAX));
  writeHeader(writer, 'status_code');
  for (const span of spans) writer.int8(enumCode(STATUS_CODE_VALUES, span.statusCode));
  writeHeader(writer, 'status_message');
  for (const span of spans) writer.string(span.statusMessage);
  writeDictionary(writer, 'service_name', spans, (span) => textBytes(span.serviceName));
  writeDictionary(writer, 'service_version', spans, (span) => textBytes(span.serviceVersion));
  writeDictionary(writer, 'deployment_environment', spans, (span) =>
    textBytes(span.deploymentEnvironment),
  );
  writeHeader(writer, 'remote_service');
  for (const span of spans) writer.string(span.remoteService);
  writeHeader(writer, 'http_status_code');
  for (const span of spans) writer.uint16(span.httpStatusCode);
  writeHeader(writer, 'is_error');
  for (const span of spans) writer.uint8(span.isError ? 1 : 0);
  writeAttributeMaps(writer, spans);
  writeHeader(writer, 'dropped_attributes_count');
  for (const span of spans) writer.uint32(toUInt32(span.droppedAttributesCount));
  writeDictionary(writer, 'resource_attributes', spans, (span) =>
    keyValuesBytes(span.resourceAttributes),
  );
  writeHeader(writer, 'dropped_resource_attributes_count');
  for (const span of spans) writer.uint32(toUInt32(span.droppedResourceAttributesCount));
  writeDictionary(writer, 'scope_name', spans, (span) => textBytes(span.scopeName));
  writeDictionary(writer, 'scope_version', spans, (span) => textBytes(span.scopeVersion));
  writeDictionary(writer, 'scope_attributes', spans, (span) =>
    keyValuesBytes(span.scopeAttributes),
  );

  writeHeader(writer, 'events.time_offset_ns');
  writeArrayEnds(writer, spans, eventCounts);
  for (let index = 0; index < spans.length; index += 1) {
    for (const event of spans[index].events) {
      writer.int64(clamp(BigInt(event.timeUnixNano) - starts[index], INT64_MIN, INT64_MAX));
    }
  }
  const events = (span: SpanRecord) => span.events;
  writeNested(writer, 'events.name', spans, eventCounts, events, (event) =>
    writer.string(event.name),
  );
  writeNested(writer, 'events.attributes', spans, eventCounts, events, (event) =>
    writer.string(storedJson(event.attributes)),
  );
  writeNested(writer, 'events.dropped_attributes_count', spans, eventCounts, events, (event) =>
    writer.uint32(toUInt32(event.droppedAttributesCount)),
  );
  writeHeader(writer, 'dropped_events_count');
  for (const span of spans) writer.uint32(toUInt32(span.droppedEventsCount));

  const links = (span: SpanRecord) => span.links;
  writeNested(writer, 'link_trace_ids', spans, linkCounts, links, (link) =>
    writer.hexId(link.traceId, 16),
  );
  writeNested(writer, 'link_span_ids', spans, linkCounts, links, (link) =>
    writer.hexId(link.spanId, 8),
  );
  writeNested(writer, 'link_trace_states', spans, linkCounts, links, (link) =>
    writer.string(link.traceState),
  );
  writeNested(writer, 'link_attributes', spans, linkCounts, links, (link) =>
    writer.string(storedJson(link.attributes)),
  );
  writeNested(writer, 'link_dropped_attributes_counts', spans, linkCounts, links, (link) =>
    writer.uint32(toUInt32(link.droppedAttributesCount)),
  );
  writeNested(writer, 'link_flags', spans, linkCounts, links, (link) =>
    writer.uint32(toUInt32(link.flags)),
  );
  writeHeader(writer, 'dropped_links_count');
  for (const span of spans) writer.uint32(toUInt32(span.droppedLinksCount));

  writeHeader(writer, 'ingest_warnings');
  writeArrayEnds(
    writer,
    spans,
    spans.map((span) => span.ingestWarnings.length),
  );
  for (const span of spans) for (const warning of span.ingestWarnings) writer.string(warning);
  return { format: 'Native', columns: SPAN_COLUMNS, chunks: [writer.take()], count: spans.length };
}

/** Converts spans into JSONCompactEachRow lines, the row format of earlier versions' logs. */
export function toJsonSpanRows(spans: readonly SpanRecord[]): SpanRows {
  let text = '';
  for (const span of spans) {
    const row = toSpanRow(span);
    text += JSON.stringify(SPAN_COLUMNS.map((column) => row[column]));
    text += '\n';
  }
  return {
    format: 'JSONCompactEachRow',
    columns: SPAN_COLUMNS,
    chunks: [Buffer.from(text)],
    count: spans.length,
  };
}

/** Splits rows into one `SpanRows` a span, to find a span that storage rejects. */
export function splitSpanRows(rows: SpanRows): SpanRows[] {
  if (rows.format === 'Native') {
    const { columns, types, rows: values } = readNativeRows(Buffer.concat(rows.chunks));
    return values.map((row) => ({
      format: 'Native',
      columns: rows.columns,
      chunks: [writeNativeBlock(columns, types, [row])],
      count: 1,
    }));
  }
  const lines: SpanRows[] = [];
  for (const chunk of rows.chunks) {
    let start = 0;
    for (let end = chunk.indexOf(NEWLINE); end >= 0; end = chunk.indexOf(NEWLINE, start)) {
      lines.push({
        format: rows.format,
        columns: rows.columns,
        chunks: [chunk.subarray(start, end + 1)],
        count: 1,
      });
      start = end + 1;
    }
  }
  return lines;
}

/**
 * Returns each span's values as the JSON text of an array, in the order of `rows.columns`,
 * for the quarantine file. Maps of Native rows become JSON objects.
 */
export function spanRowsJson(rows: SpanRows): string[] {
  if (rows.format === 'JSONCompactEachRow') {
    return splitSpanRows(rows).map((line) => line.chunks[0].toString('utf8').trimEnd());
  }
  const { types, rows: values } = readNativeRows(Buffer.concat(rows.chunks));
  const isMap = types.map((type) => type.startsWith('Map('));
  return values.map((row) =>
    JSON.stringify(
      row.map((value, column) =>
        isMap[column] ? Object.fromEntries(value as [string, unknown][]) : value,
      ),
    ),
  );
}

/** Joins rows that share one format and column list, in order. */
export function joinSpanRows(parts: readonly SpanRows[]): SpanRows {
  return {
    format: parts[0]?.format ?? 'Native',
    columns: parts[0]?.columns ?? SPAN_COLUMNS,
    chunks: parts.flatMap((part) => part.chunks),
    count: parts.reduce((sum, part) => sum + part.count, 0),
  };
}
