import fs from 'node:fs';
import path from 'node:path';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { syntheticTraces, takeSpans } from '../bench/synthetic';
import type { SpanRecord } from '../lib/model/span';
import { decodeSpansFast } from '../lib/otlp/fast-decode';
import { openStorage, type Storage } from '../lib/storage/clickhouse';
import { parseNativeType, readNativeRows, writeNativeBlock } from '../lib/storage/native';
import {
  SPAN_COLUMNS,
  SPAN_NATIVE_TYPES,
  hexToDecimal,
  joinSpanRows,
  spanRowsJson,
  splitSpanRows,
  toJsonSpanRows,
  toSpanRow,
  toSpanRows,
} from '../lib/storage/span-rows';
import { writeSpanRows } from '../lib/storage/span-writer';
import { makeTempDir } from './helpers/faultline';
import { makeSpan } from './helpers/spans';

const LONG = `${'ü'.repeat(60)} – 😀 ${'x'.repeat(300)}`;

/** Spans with every kind of value the columns take, including the edge cases. */
function edgeSpans(): SpanRecord[] {
  const start = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;
  return [
    makeSpan(1, '', start, start + 5, {
      traceId: 'ffffffffffffffffffffffffffffffff',
      kind: 'SERVER',
      statusCode: 'ERROR',
      statusMessage: 'line one\nline two "quoted" \\ tab\t',
      isError: true,
      httpStatusCode: 503,
      flags: 4_294_967_295,
      traceState: 'vendor=a,other=b',
      serviceName: 'checkout',
      serviceVersion: '1.2.3',
      deploymentEnvironment: 'prod',
      attributes: [
        { key: 'http.route', value: { stringValue: LONG } },
        { key: 'count', value: { intValue: '-9223372036854775808' } },
        { key: 'big', value: { intValue: '9223372036854775807' } },
        { key: 'ratio', value: { doubleValue: -0.125 } },
        { key: 'tiny', value: { doubleValue: 5e-324 } },
        { key: 'ok', value: { boolValue: false } },
        { key: 'list', value: { arrayValue: { values: [{ intValue: '1' }] } } },
        { key: '123', value: { stringValue: 'numeric key' } },
        { key: '', value: { stringValue: '' } },
      ],
      droppedAttributesCount: 2,
      resourceAttributes: [{ key: 'service.name', value: { stringValue: 'checkout' } }],
      droppedResourceAttributesCount: 1,
      scopeName: '@opentelemetry/instrumentation-http',
      scopeVersion: '0.1.0',
      scopeAttributes: [{ key: 'scope', value: { boolValue: true } }],
      events: [
        {
          timeUnixNano: `${BigInt(start) * 1_000_000n - 7n}`,
          name: 'before the start',
          attributes: [],
          droppedAttributesCount: 3,
        },
        {
          timeUnixNano: `${BigInt(start) * 1_000_000n + 2_000_000n}`,
          name: 'exception',
          attributes: [{ key: 'exception.message', value: { stringValue: LONG } }],
          droppedAttributesCount: 0,
        },
      ],
      droppedEventsCount: 1,
      links: [
        {
          traceId: '0123456789abcdef0123456789abcdef',
          spanId: 'fedcba9876543210',
          traceState: 'k=v',
          attributes: [{ key: 'link', value: { stringValue: 'yes' } }],
          droppedAttributesCount: 1,
          flags: 1,
        },
      ],
      droppedLinksCount: 4,
      ingestWarnings: ['invalid_int', 'clock_skew'],
    }),
    makeSpan(2, 1, start + 1, start + 2, { kind: 'CLIENT', remoteService: 'db' }),
    makeSpan(3, 1, start + 1, start + 3, { kind: 'CONSUMER', statusCode: 'OK' }),
    // Texts at the edge of the one-byte length, past 16 KiB and with NUL, and short uppercase ids.
    makeSpan(4, 1, start + 1, start + 4, {
      spanId: 'ABCDEF',
      parentSpanId: '1',
      name: '€'.repeat(42),
      statusMessage: `${'😀'.repeat(21)}x`,
      traceState: 'a\u0000b',
      scopeName: 'x'.repeat(41) + '😀',
      serviceName: 'ü'.repeat(20_000),
      events: Array.from({ length: 300 }, (_, index) => ({
        timeUnixNano: `${BigInt(start) * 1_000_000n + BigInt(index)}`,
        name: `event ${index}`,
        attributes: [],
        droppedAttributesCount: 0,
      })),
      links: Array.from({ length: 40 }, (_, index) => ({
        traceId: (index + 1).toString(16).toUpperCase(),
        spanId: 'F'.repeat(16),
        traceState: '',
        attributes: [{ key: 'index', value: { intValue: `${index}` } }],
        droppedAttributesCount: 0,
        flags: index,
      })),
    }),
  ];
}

function sortedEntries(entries: unknown[]): unknown[] {
  return [...(entries as [string, unknown][])].sort(([a], [b]) => a.localeCompare(b, 'en'));
}

function syntheticSpans(count: number): SpanRecord[] {
  const traces = syntheticTraces({
    seed: 11,
    startMs: Date.now() - 3_600_000,
    traceIntervalMs: 50,
  });
  const body = ProtobufTraceSerializer.serializeRequest(takeSpans(traces, count))!;
  return decodeSpansFast(body).spans;
}

/**
 * Converts a JSON row's value into the form the Native codec reads it in. Map entries are sorted by key,
 * because a JSON object puts integer-like keys first.
 */
function asNativeValue(value: unknown, type: string): unknown {
  if (type.startsWith('Map(')) {
    return sortedEntries(
      Object.entries(value as object).map(([key, item]) => [
        key,
        type.includes('Int64') ? String(item) : item,
      ]),
    );
  }
  if (Array.isArray(value))
    return value.map((item) => (typeof item === 'bigint' ? `${item}` : item));
  if (type === 'DateTime64(9)' || type === 'UInt64' || type === 'UInt128') return String(value);
  return value;
}

describe('native span rows', () => {
  it('read back as the JSON rows give them', () => {
    const spans = [...edgeSpans(), ...syntheticSpans(200)];
    const read = readNativeRows(toSpanRows(spans).chunks[0]);
    expect(read.columns).toEqual(SPAN_COLUMNS);
    expect(read.types).toEqual(SPAN_COLUMNS.map((column) => SPAN_NATIVE_TYPES[column]));
    expect(read.rows).toHaveLength(spans.length);
    spans.forEach((span, index) => {
      const row = toSpanRow(span);
      const expected = SPAN_COLUMNS.map((column) =>
        asNativeValue(row[column], SPAN_NATIVE_TYPES[column]),
      );
      const actual = read.rows[index].map((value, column) =>
        SPAN_NATIVE_TYPES[SPAN_COLUMNS[column]].startsWith('Map(')
          ? sortedEntries(value as unknown[])
          : value,
      );
      expect(actual).toEqual(expected);
    });
  });

  it('write the same bytes again', () => {
    const block = toSpanRows([...edgeSpans(), ...syntheticSpans(100)]).chunks[0];
    const read = readNativeRows(block);
    expect(writeNativeBlock(read.columns, read.types, read.rows).equals(block)).toBe(true);
  });

  it('split into one block a span', () => {
    const spans = edgeSpans();
    const joined = joinSpanRows([toSpanRows(spans.slice(0, 1)), toSpanRows(spans.slice(1))]);
    const single = splitSpanRows(joined);
    expect(single.map((rows) => rows.count)).toEqual([1, 1, 1, 1]);
    single.forEach((rows, index) => {
      expect(rows.format).toBe('Native');
      expect(rows.chunks[0].equals(toSpanRows([spans[index]]).chunks[0])).toBe(true);
    });
  });

  it('give quarantine lines like the JSON rows', () => {
    const spans = edgeSpans();
    const fromNative = spanRowsJson(toSpanRows(spans)).map((line) => JSON.parse(line));
    const fromJson = spanRowsJson(toJsonSpanRows(spans)).map((line) => JSON.parse(line));
    expect(fromNative).toHaveLength(4);
    fromNative.forEach((row, index) => {
      expect(row[SPAN_COLUMNS.indexOf('trace_id')]).toBe(fromJson[index][0]);
      expect(row[SPAN_COLUMNS.indexOf('attributes_string')]).toEqual(
        fromJson[index][SPAN_COLUMNS.indexOf('attributes_string')],
      );
    });
  });

  it('store counts past UInt32 as its maximum', () => {
    const span = makeSpan(1, '', 0, 1, {
      flags: 2 ** 40,
      droppedAttributesCount: 5e9,
      droppedResourceAttributesCount: 2 ** 32,
      droppedEventsCount: 1e300,
      droppedLinksCount: 2 ** 33,
    });
    const { columns, rows } = readNativeRows(toSpanRows([span]).chunks[0]);
    const value = (column: string) => rows[0][columns.indexOf(column)];
    expect(value('flags')).toBe(4_294_967_295);
    expect(value('dropped_attributes_count')).toBe(4_294_967_295);
    expect(value('dropped_resource_attributes_count')).toBe(4_294_967_295);
    expect(value('dropped_events_count')).toBe(4_294_967_295);
    expect(value('dropped_links_count')).toBe(4_294_967_295);
  });

  it('reject an id that is not hex', () => {
    const span = makeSpan(1, '', 0, 1, { spanId: '00000000000000zz' });
    expect(() => toSpanRows([span])).toThrow('invalid id "00000000000000zz": expected hex digits');
  });

  it('parse the column types of the table', () => {
    expect(parseNativeType('Map(String, Int64)')).toEqual({
      kind: 'map',
      key: { kind: 'string' },
      value: { kind: 'int64' },
    });
    expect(parseNativeType('LowCardinality(String)')).toEqual({ kind: 'lowCardinality' });
    expect(parseNativeType('Map(LowCardinality(String), Int64)')).toEqual({
      kind: 'map',
      key: { kind: 'lowCardinality' },
      value: { kind: 'int64' },
    });
    expect(() => parseNativeType('Decimal(9, 2)')).toThrow(
      'unsupported Native column type "Decimal(9, 2)"',
    );
  });
});

describe('native inserts', () => {
  let storage: Storage;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = makeTempDir('native-rows');
    storage = await openStorage({ dataDir, url: '', database: 'faultline', retentionDays: 7 });
    await storage.client.command({
      query: 'CREATE TABLE faultline.spans_from_json AS faultline.spans',
    });
  });

  afterAll(async () => {
    await storage.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('store every column as the JSON insert does', async () => {
    const spans = [...edgeSpans(), ...syntheticSpans(2_000)];
    await writeSpanRows(storage, toSpanRows(spans));
    const jsonFile = path.join(dataDir, 'rows.jsonl');
    fs.writeFileSync(jsonFile, Buffer.concat(toJsonSpanRows(spans).chunks));
    const columns = SPAN_COLUMNS.map((column) => `\`${column}\``).join(', ');
    await storage.client.command({
      query: `INSERT INTO faultline.spans_from_json (${columns})
        SELECT * FROM file({path:String}, 'JSONCompactEachRow')`,
      query_params: { path: jsonFile },
    });
    const select = (table: string) =>
      storage.client
        .query({
          query: `SELECT * FROM faultline.${table} ORDER BY trace_id, span_id, kind`,
          format: 'JSONEachRow',
        })
        .then((result) => result.json<Record<string, unknown>>());
    const [native, fromJson] = await Promise.all([select('spans'), select('spans_from_json')]);
    expect(native).toHaveLength(spans.length);
    expect(native).toEqual(fromJson);
  });

  it('store old String blocks with new ones', async () => {
    // Logs of earlier versions contain blocks with String columns, and the writer joins
    // them with new LowCardinality blocks in one insert.
    const start = Date.now() - 3_600_000;
    const spans = [0, 1].map((index) =>
      makeSpan(1, '', start, start + 5, {
        traceId: `${'e'.repeat(31)}${index}`,
        serviceName: `old-and-new-${index}`,
        scopeName: LONG,
        attributes: [{ key: LONG, value: { intValue: String(index) } }],
      }),
    );
    const read = readNativeRows(toSpanRows([spans[0]]).chunks[0]);
    const stringTypes = read.types.map((type) =>
      type.replaceAll('LowCardinality(String)', 'String'),
    );
    const oldBlock = writeNativeBlock(read.columns, stringTypes, read.rows);
    const rows = joinSpanRows([
      { ...toSpanRows([spans[0]]), chunks: [oldBlock] },
      toSpanRows([spans[1]]),
    ]);
    await writeSpanRows(storage, rows);
    const result = await storage.client.query({
      query: `SELECT service_name, scope_name, attributes_int FROM faultline.spans
        WHERE service_name LIKE 'old-and-new-%' ORDER BY service_name`,
      format: 'JSONEachRow',
    });
    expect(await result.json()).toEqual([
      { service_name: 'old-and-new-0', scope_name: LONG, attributes_int: { [LONG]: '0' } },
      { service_name: 'old-and-new-1', scope_name: LONG, attributes_int: { [LONG]: '1' } },
    ]);
  });

  it('store dictionaries past 256 values', async () => {
    const start = Date.now() - 3_600_000;
    const spans = Array.from({ length: 300 }, (_, index) =>
      makeSpan(1, '', start, start + 5, {
        traceId: `${'c'.repeat(28)}${index.toString(16).padStart(4, '0')}`,
        serviceName: `many-${index}`,
      }),
    );
    const block = toSpanRows(spans).chunks[0];
    expect(
      readNativeRows(block).rows.map((row) => row[SPAN_COLUMNS.indexOf('service_name')]),
    ).toEqual(spans.map((span) => span.serviceName));
    await writeSpanRows(storage, toSpanRows(spans));
    const result = await storage.client.query({
      query: `SELECT service_name FROM faultline.spans
        WHERE service_name LIKE 'many-%' ORDER BY toUInt32(substring(service_name, 6))`,
      format: 'JSONEachRow',
    });
    const stored = await result.json<{ service_name: string }>();
    expect(stored.map((row) => row.service_name)).toEqual(spans.map((span) => span.serviceName));
  });

  it('keep the last of repeated keys', async () => {
    const start = Date.now() - 3_600_000;
    const span = makeSpan(1, '', start, start + 5, {
      traceId: 'dddddddddddddddddddddddddddddddd',
      attributes: [
        { key: 'http.route', value: { stringValue: '/first' } },
        { key: 'count', value: { intValue: '1' } },
        { key: 'http.route', value: { stringValue: '/last' } },
        { key: 'count', value: { stringValue: 'text' } },
        { key: 'count', value: { intValue: '2' } },
      ],
    });
    await writeSpanRows(storage, toSpanRows([span]));
    const result = await storage.client.query({
      query: `SELECT http_route, length(attributes_string) AS strings, attributes_string, attributes_int
        FROM faultline.spans
        WHERE trace_id = {id:UInt128}`,
      query_params: { id: hexToDecimal(span.traceId) },
      format: 'JSONEachRow',
    });
    const rows = await result.json<Record<string, unknown>>();
    expect(rows).toHaveLength(1);
    expect(rows[0].http_route).toBe('/last');
    expect(rows[0].strings).toBe('2');
    expect(rows[0].attributes_string).toEqual({ 'http.route': '/last', count: 'text' });
    expect(rows[0].attributes_int).toEqual({ count: '2' });
  });
});
