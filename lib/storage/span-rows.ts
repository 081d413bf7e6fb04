import type { AnyValue, KeyValue, SpanKind, SpanRecord, StatusCode } from '../model/span';

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
    else typed.complex[key] = JSON.stringify(value);
  }
  return typed;
}

// Spans of one resource or scope share its attribute array, so its JSON text is built
// once a batch rather than once a span.
const keyValuesJson = new WeakMap<KeyValue[], string>();

function toKeyValuesJson(attributes: KeyValue[]): string {
  let text = keyValuesJson.get(attributes);
  if (text === undefined) {
    text = JSON.stringify(attributes);
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
    'events.attributes': span.events.map((event) => JSON.stringify(event.attributes)),
    'events.dropped_attributes_count': span.events.map((event) => event.droppedAttributesCount),
    dropped_events_count: span.droppedEventsCount,
    link_trace_ids: span.links.map((link) => hexToDecimal(link.traceId)),
    link_span_ids: span.links.map((link) => hexToDecimal(link.spanId)),
    link_trace_states: span.links.map((link) => link.traceState),
    link_attributes: span.links.map((link) => JSON.stringify(link.attributes)),
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
 * the bytes a span and which cause analysis does not read.
 */
const WITHOUT_ATTRIBUTES: Partial<Record<keyof SpanRow, string>> = {
  attributes_string: "CAST(map(), 'Map(String, String)')",
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

function joinAttributes(row: SpanRow): KeyValue[] {
  const attributes: KeyValue[] = [];
  const push = (key: string, value: AnyValue) => attributes.push({ key, value });
  for (const [key, value] of Object.entries(row.attributes_string))
    push(key, { stringValue: value });
  for (const [key, value] of Object.entries(row.attributes_int))
    push(key, { intValue: String(value) });
  for (const [key, value] of Object.entries(row.attributes_float))
    push(key, { doubleValue: Number(value) });
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

/**
 * Spans as insert-ready JSONCompactEachRow text: one line a span, each ending in a newline,
 * holding the values of `columns` in order. The write-ahead log keeps spans in this form,
 * so that storing them later needs no parsing or conversion, only concatenation.
 */
export interface SpanRows {
  /** Columns of every line, in order; a log written by an older version may have fewer. */
  columns: readonly string[];
  /** Whole lines, in one or more chunks. */
  chunks: Buffer[];
  count: number;
}

const NEWLINE = 0x0a;

/** Converts spans into insert-ready lines of every column in `SPAN_COLUMNS`. */
export function toSpanRows(spans: readonly SpanRecord[]): SpanRows {
  let text = '';
  for (const span of spans) {
    const row = toSpanRow(span);
    text += JSON.stringify(SPAN_COLUMNS.map((column) => row[column]));
    text += '\n';
  }
  return { columns: SPAN_COLUMNS, chunks: [Buffer.from(text)], count: spans.length };
}

/** Splits rows into one `SpanRows` a line, to find a line that storage refuses. */
export function splitSpanRows(rows: SpanRows): SpanRows[] {
  const lines: SpanRows[] = [];
  for (const chunk of rows.chunks) {
    let start = 0;
    for (let end = chunk.indexOf(NEWLINE); end >= 0; end = chunk.indexOf(NEWLINE, start)) {
      lines.push({ columns: rows.columns, chunks: [chunk.subarray(start, end + 1)], count: 1 });
      start = end + 1;
    }
  }
  return lines;
}

/** Joins rows that share one column list, in order. */
export function joinSpanRows(parts: readonly SpanRows[]): SpanRows {
  return {
    columns: parts[0]?.columns ?? SPAN_COLUMNS,
    chunks: parts.flatMap((part) => part.chunks),
    count: parts.reduce((sum, part) => sum + part.count, 0),
  };
}
