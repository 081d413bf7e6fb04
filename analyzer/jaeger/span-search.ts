import type { SpanKind, SpanRecord } from '../../lib/model/span';
import type { Storage } from '../../lib/storage/clickhouse';
import {
  RANGE_CONDITION,
  rangeParams,
  type TimeRange,
  type TraceSummary,
} from '../../lib/storage/span-reader';

/** A tag condition: the key must be present, and equal `value` when one is given. */
export interface TagFilter {
  key: string;
  value?: string;
}

/** Conditions that one span of a trace must meet together for the trace to match. */
export interface SpanSearch {
  range: TimeRange;
  service?: string;
  operation?: string;
  spanKind?: SpanKind;
  /** Name of the called node of a CLIENT or PRODUCER span. */
  remoteService?: string;
  tags: TagFilter[];
  minDurationNs?: bigint;
  maxDurationNs?: bigint;
  limit: number;
}

type Params = Record<string, unknown>;

/** Keys that name span fields, not attributes, in Jaeger and Zipkin queries. */
const FIELD_CONDITIONS: Record<string, (param: string) => string> = {
  'span.kind': (param) => `lower(toString(kind)) = lower({${param}:String})`,
  'otel.status_code': (param) => `toString(status_code) = upper({${param}:String})`,
  'otel.status_description': (param) => `status_message = {${param}:String}`,
  'otel.scope.name': (param) => `scope_name = {${param}:String}`,
  'otel.scope.version': (param) => `scope_version = {${param}:String}`,
};

function errorCondition(value: string | undefined): string {
  if (value === undefined) return 'is_error';
  return value.toLowerCase() === 'false' ? 'NOT is_error' : 'is_error';
}

/**
 * Returns SQL that writes a Float64 as the query API does: `NaN`, `Infinity` and `-Infinity` as
 * in OTLP/JSON, where ClickHouse's `toString` writes `nan` and `inf`.
 */
export function floatText(expression: string): string {
  return `multiIf(isNaN(${expression}), 'NaN', isInfinite(${expression}),
    if(${expression} > 0, 'Infinity', '-Infinity'), toString(${expression}))`;
}

function attributeValueCondition(key: string, value: string): string {
  return `((mapContains(attributes_string, {${key}:String}) AND attributes_string[{${key}:String}] = {${value}:String})
    OR (mapContains(attributes_int, {${key}:String}) AND toString(attributes_int[{${key}:String}]) = {${value}:String})
    OR (mapContains(attributes_float, {${key}:String}) AND ${floatText(`attributes_float[{${key}:String}]`)} = {${value}:String})
    OR (mapContains(attributes_bool, {${key}:String}) AND if(attributes_bool[{${key}:String}], 'true', 'false') = lower({${value}:String}))
    OR (mapContains(attributes_complex, {${key}:String}) AND attributes_complex[{${key}:String}] = {${value}:String})
    OR arrayExists(kv -> JSONExtractString(kv, 'key') = {${key}:String}
      AND (JSONExtractString(kv, 'value', 'stringValue') = {${value}:String}
        OR JSONExtractString(kv, 'value', 'intValue') = {${value}:String}
        OR toString(JSONExtractFloat(kv, 'value', 'doubleValue')) = {${value}:String}
          AND JSONHas(kv, 'value', 'doubleValue')
        OR JSONExtractRaw(kv, 'value', 'boolValue') = lower({${value}:String})),
      JSONExtractArrayRaw(resource_attributes)))`;
}

function attributeExistsCondition(key: string): string {
  return `(mapContains(attributes_string, {${key}:String}) OR mapContains(attributes_int, {${key}:String})
    OR mapContains(attributes_float, {${key}:String}) OR mapContains(attributes_bool, {${key}:String})
    OR mapContains(attributes_complex, {${key}:String})
    OR arrayExists(kv -> JSONExtractString(kv, 'key') = {${key}:String}, JSONExtractArrayRaw(resource_attributes)))`;
}

/**
 * Builds the SQL condition of one tag with bound parameters. `error` matches the span's
 * error flag, the `FIELD_CONDITIONS` keys match span fields, and any other key matches a
 * span or resource attribute of any type, compared as text.
 */
export function tagCondition(tag: TagFilter, index: number, params: Params): string {
  if (tag.key === 'error') return errorCondition(tag.value);
  const keyParam = `tagKey${index}`;
  const valueParam = `tagValue${index}`;
  params[keyParam] = tag.key;
  const field = Object.hasOwn(FIELD_CONDITIONS, tag.key) ? FIELD_CONDITIONS[tag.key] : undefined;
  if (tag.value === undefined) return field ? '1' : attributeExistsCondition(keyParam);
  params[valueParam] = tag.value;
  return field ? field(valueParam) : attributeValueCondition(keyParam, valueParam);
}

function searchConditions(search: SpanSearch, params: Params): string[] {
  const conditions = [RANGE_CONDITION];
  Object.assign(params, rangeParams(search.range));
  const equal = (column: string, name: string, value: string | undefined) => {
    if (!value) return;
    conditions.push(`${column} = {${name}:String}`);
    params[name] = value;
  };
  equal('service_name', 'service', search.service);
  equal('name', 'operation', search.operation);
  equal('remote_service', 'remoteService', search.remoteService);
  equal('toString(kind)', 'spanKind', search.spanKind);
  if (search.minDurationNs !== undefined) {
    conditions.push('duration_ns >= {minDuration:UInt64}');
    params.minDuration = search.minDurationNs.toString();
  }
  if (search.maxDurationNs !== undefined) {
    conditions.push('duration_ns <= {maxDuration:UInt64}');
    params.maxDuration = search.maxDurationNs.toString();
  }
  search.tags.forEach((tag, index) => conditions.push(tagCondition(tag, index, params)));
  return conditions;
}

/** Finds the ids of traces that have a span meeting every condition, newest first. */
export async function findTraceIds(storage: Storage, search: SpanSearch): Promise<string[]> {
  const params: Params = { limit: search.limit };
  const conditions = searchConditions(search, params);
  const result = await storage.client.query({
    query: `SELECT leftPad(lower(hex(trace_id)), 32, '0') AS trace_hex, max(start_time) AS last_start
FROM ${storage.database}.spans
WHERE ${conditions.join('\n  AND ')}
GROUP BY trace_id
ORDER BY last_start DESC
LIMIT {limit:UInt32}`,
    query_params: params,
    format: 'JSONEachRow',
  });
  const rows = await result.json<{ trace_hex: string }>();
  return rows.map((row) => row.trace_hex);
}

/** Normalises a hex trace id of up to 32 digits to 32 lowercase digits, or undefined. */
export function normaliseTraceId(raw: string): string | undefined {
  if (!/^[0-9a-fA-F]{1,32}$/.test(raw)) return undefined;
  return raw.toLowerCase().padStart(32, '0');
}

/** Summarises one trace from all of its spans, in the shape of `searchTraces` results. */
export function summariseTrace(traceId: string, spans: SpanRecord[]): TraceSummary {
  let start = BigInt(spans[0]?.startTimeUnixNano ?? 0);
  let end = start;
  for (const span of spans) {
    const spanStart = BigInt(span.startTimeUnixNano);
    const spanEnd = BigInt(span.endTimeUnixNano);
    if (spanStart < start) start = spanStart;
    if (spanEnd > end) end = spanEnd;
  }
  const root = spans.find((span) => span.parentSpanId === '');
  return {
    traceId,
    startTimeUnixNano: start.toString(),
    durationNs: (end - start).toString(),
    rootService: root?.serviceName ?? '',
    rootName: root?.name ?? '',
    spanCount: spans.length,
    errorCount: new Set(spans.filter((span) => span.isError).map((span) => span.spanId)).size,
    services: [...new Set(spans.map((span) => span.serviceName))].sort(),
  };
}
