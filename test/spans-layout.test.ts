import fs from 'node:fs';
import path from 'node:path';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { drainPending } from 'chdb';
import { createChdbConnection } from 'chdb/connection';
import type { SpanRecord } from '../lib/model/span';
import { openStorage, type Storage } from '../lib/storage/clickhouse';
import { loadMigrations } from '../lib/storage/migrations';
import { readTraceSpans } from '../lib/storage/span-reader';
import { toSpanRow } from '../lib/storage/span-rows';
import { writeSpans } from '../lib/storage/span-writer';
import { makeTempDir } from './helpers/faultline';
import { makeSpan, spanId } from './helpers/spans';

// A minute ago on a whole second, so the spans are inside the retention.
const BASE_MS = Math.floor(Date.now() / 1000) * 1000 - 60_000;
const OLD_TRACE = '0123456789abcdef0123456789abcdef';
const NEW_TRACE = 'fedcba9876543210fedcba9876543210';
const STORAGE_OPTIONS = { url: '', database: 'faultline', retentionDays: 7 };

const nanos = (ms: number, extra = 0n) => (BigInt(ms) * 1_000_000n + extra).toString();

/** A span with every kind of value the API returns, attributes in key order as read. */
function richSpan(traceId: string, id: number, parent: number | '', startMs: number) {
  return makeSpan(id, parent, startMs, startMs + 40, {
    traceId,
    traceState: 'vendor=1',
    flags: 1,
    kind: 'SERVER',
    statusCode: 'ERROR',
    statusMessage: 'upstream unavailable',
    serviceName: 'checkout',
    serviceVersion: '1.4.2',
    deploymentEnvironment: 'production',
    httpStatusCode: 503,
    isError: true,
    attributes: [
      { key: 'app.cache_hit', value: { boolValue: true } },
      { key: 'app.ratio', value: { doubleValue: 0.25 } },
      { key: 'app.tags', value: { arrayValue: { values: [{ stringValue: 'a' }] } } },
      { key: 'http.response.status_code', value: { intValue: '503' } },
      { key: 'http.route', value: { stringValue: '/api/orders/:id' } },
    ],
    droppedAttributesCount: 2,
    resourceAttributes: [
      { key: 'service.name', value: { stringValue: 'checkout' } },
      { key: 'host.name', value: { stringValue: 'checkout-1' } },
    ],
    scopeName: '@opentelemetry/instrumentation-http',
    scopeVersion: '0.223.0',
    scopeAttributes: [{ key: 'scope.kind', value: { stringValue: 'http' } }],
    events: [
      // Before the start, at the start and after the end: offsets of both signs.
      {
        timeUnixNano: nanos(startMs - 5, 7n),
        name: 'queued',
        attributes: [],
        droppedAttributesCount: 0,
      },
      {
        timeUnixNano: nanos(startMs),
        name: 'cache.lookup',
        attributes: [{ key: 'cache.key', value: { stringValue: 'cart:7' } }],
        droppedAttributesCount: 1,
      },
      {
        timeUnixNano: nanos(startMs + 90, 3n),
        name: 'late',
        attributes: [],
        droppedAttributesCount: 0,
      },
    ],
    droppedEventsCount: 3,
    links: [
      {
        traceId: 'aaaabbbbccccddddeeeeffff00002222',
        spanId: spanId(99),
        traceState: 'linked=1',
        attributes: [{ key: 'link.reason', value: { stringValue: 'batch' } }],
        droppedAttributesCount: 1,
        flags: 1,
      },
    ],
    droppedLinksCount: 4,
    ingestWarnings: ['attribute_value_truncated'],
  });
}

/** Builds one trace: a rich span, a span repaired to zero duration and a Zipkin pair. */
function traceSpans(traceId: string): SpanRecord[] {
  const zeroStart = nanos(BASE_MS + 10, 123n);
  return [
    richSpan(traceId, 1, '', BASE_MS),
    makeSpan(2, 1, BASE_MS + 10, BASE_MS + 10, {
      traceId,
      startTimeUnixNano: zeroStart,
      endTimeUnixNano: zeroStart,
      durationNs: '0',
      ingestWarnings: ['end_before_start'],
    }),
    makeSpan(3, 1, BASE_MS + 12, BASE_MS + 30, { traceId, kind: 'CLIENT', name: 'GET' }),
    makeSpan(3, 1, BASE_MS + 13, BASE_MS + 29, { traceId, kind: 'SERVER', name: 'GET /stock' }),
  ];
}

/** Converts a span to a row of the former layout, with its end and absolute event times. */
function formerRow(span: SpanRecord): Record<string, unknown> {
  const {
    'events.time_offset_ns': _offsets,
    'events.name': names,
    'events.attributes': attributes,
    'events.dropped_attributes_count': dropped,
    ...row
  } = toSpanRow(span);
  return {
    ...row,
    end_time: span.endTimeUnixNano,
    event_times: span.events.map((event) => event.timeUnixNano),
    event_names: names,
    event_attributes: attributes,
    event_dropped_attributes_counts: dropped,
  };
}

/** Creates the schema up to the given version, as an older release left it. */
async function createSchemaUpTo(client: ClickHouseClient, lastVersion: number) {
  await client.command({ query: 'CREATE DATABASE IF NOT EXISTS faultline' });
  await client.command({
    query: `CREATE TABLE IF NOT EXISTS faultline.schema_migrations (version UInt32, name String, applied_at DateTime DEFAULT now()) ENGINE = MergeTree ORDER BY version`,
  });
  for (const migration of loadMigrations(STORAGE_OPTIONS)) {
    if (migration.version > lastVersion) continue;
    for (const statement of migration.statements) await client.command({ query: statement });
    await client.insert({
      table: 'faultline.schema_migrations',
      values: [{ version: migration.version, name: migration.name }],
      format: 'JSONEachRow',
    });
  }
}

/** Writes spans in the former layout into a database migrated up to version 8. */
async function writeFormerLayout(dataDir: string, spans: SpanRecord[]) {
  const connection = createChdbConnection({ path: path.join(dataDir, 'clickhouse') });
  const client = createClient({
    connection: connection as unknown as NonNullable<
      Parameters<typeof createClient>[0]
    >['connection'],
    clickhouse_settings: { date_time_input_format: 'best_effort', prefer_column_name_to_alias: 1 },
  });
  try {
    await createSchemaUpTo(client, 8);
    await client.insert({
      table: 'faultline.spans',
      values: spans.map(formerRow),
      format: 'JSONEachRow',
    });
  } finally {
    await client.close();
    await connection.close();
    await drainPending();
  }
}

async function rows<T>(storage: Storage, query: string, params = {}): Promise<T[]> {
  const result = await storage.client.query({ query, query_params: params, format: 'JSONEachRow' });
  return result.json<T>();
}

/** Orders spans as `readTraceSpans` returns them: start time, then span id. */
function byStart(spans: SpanRecord[]): SpanRecord[] {
  return [...spans].sort(
    (a, b) =>
      Number(BigInt(a.startTimeUnixNano) - BigInt(b.startTimeUnixNano)) ||
      a.spanId.localeCompare(b.spanId),
  );
}

const ROLLUP_TOTALS = `SELECT
  (SELECT uniqMerge(span_count) FROM faultline.trace_summaries) AS spans,
  (SELECT count() FROM faultline.call_spans) AS call_spans,
  (SELECT sum(spans) FROM faultline.latency_minutes) AS latency_spans`;

let storage: Storage;
let dataDir: string;
let rollupsAfterMigration: {
  spans: string;
  call_spans: string;
  latency_spans: string;
};

beforeAll(async () => {
  dataDir = makeTempDir('spans-layout');
  await writeFormerLayout(dataDir, traceSpans(OLD_TRACE));
  storage = await openStorage({ dataDir, ...STORAGE_OPTIONS });
  [rollupsAfterMigration] = await rows(storage, ROLLUP_TOTALS);
});

afterAll(async () => {
  await storage.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('spans layout migration', () => {
  it('reads former spans unchanged', async () => {
    const stored = await readTraceSpans(storage, OLD_TRACE);
    expect(stored).toEqual(byStart(traceSpans(OLD_TRACE)));
  });

  it('leaves the rollups as they were', () => {
    expect(Number(rollupsAfterMigration.spans)).toBe(4);
    // Every span but the INTERNAL one is a call span.
    expect(Number(rollupsAfterMigration.call_spans)).toBe(3);
    // Filled from the spans already stored when the latency rollup was created.
    expect(Number(rollupsAfterMigration.latency_spans)).toBe(4);
  });

  it('records the version and drops the copy', async () => {
    const versions = await rows<{ version: number }>(
      storage,
      'SELECT version FROM faultline.schema_migrations WHERE version = 9',
    );
    expect(versions).toHaveLength(1);
    const tables = await rows<{ name: string }>(
      storage,
      "SELECT name FROM system.tables WHERE database = 'faultline' AND name LIKE 'spans%'",
    );
    expect(tables.map((table) => table.name)).toEqual(['spans']);
  });

  it('sorts by time block, trace and start', async () => {
    const [row] = await rows<{ sorting_key: string }>(
      storage,
      "SELECT sorting_key FROM system.tables WHERE database = 'faultline' AND name = 'spans'",
    );
    expect(row.sorting_key).toBe(
      'toStartOfTenMinutes(start_time), trace_id, start_time, span_id, kind',
    );
  });

  it('runs again after a start that stopped', async () => {
    // As a start that stopped after the exchange leaves it: the copy table still there
    // and the version not recorded.
    await storage.client.command({
      query: 'ALTER TABLE faultline.schema_migrations DELETE WHERE version = 9',
      clickhouse_settings: { mutations_sync: '1' },
    });
    await storage.client.command({ query: 'CREATE TABLE faultline.spans_next AS faultline.spans' });
    await storage.close();
    storage = await openStorage({ dataDir, ...STORAGE_OPTIONS });

    expect(await readTraceSpans(storage, OLD_TRACE)).toEqual(byStart(traceSpans(OLD_TRACE)));
    const [rollups] = await rows<typeof rollupsAfterMigration>(storage, ROLLUP_TOTALS);
    expect(rollups).toEqual(rollupsAfterMigration);
  });
});

describe('spans layout', () => {
  const spans = traceSpans(NEW_TRACE);

  beforeAll(async () => {
    await writeSpans(storage, spans);
  });

  it('round-trips every value', async () => {
    expect(await readTraceSpans(storage, NEW_TRACE)).toEqual(byStart(spans));
  });

  it('returns event times far from the start', async () => {
    const edge = makeSpan(7, '', BASE_MS, BASE_MS + 1, {
      traceId: 'ffffffffffffffff0000000000000007',
      events: [
        { timeUnixNano: '0', name: 'epoch', attributes: [], droppedAttributesCount: 0 },
        {
          timeUnixNano: '9223372036854775807',
          name: 'last storable',
          attributes: [],
          droppedAttributesCount: 0,
        },
      ],
    });
    await writeSpans(storage, [edge]);
    const [stored] = await readTraceSpans(storage, edge.traceId);
    expect(stored.events.map((event) => event.timeUnixNano)).toEqual(['0', '9223372036854775807']);
  });

  it('keeps end_time and event_times in SQL', async () => {
    const selected = await rows<{ span_id: string; end: string; events: string[] }>(
      storage,
      `SELECT lower(hex(span_id)) AS span_id, toUnixTimestamp64Nano(end_time) AS end,
         arrayMap(time -> toString(toUnixTimestamp64Nano(time)), event_times) AS events
       FROM faultline.spans WHERE trace_id = toUInt128({traceId:String}) AND kind = 'SERVER'
       ORDER BY start_time`,
      { traceId: BigInt(`0x${NEW_TRACE}`).toString() },
    );
    const rich = spans[0];
    expect(selected[0].end).toBe(rich.endTimeUnixNano);
    expect(selected[0].events).toEqual(rich.events.map((event) => event.timeUnixNano));
  });

  it('collapses a span stored twice', async () => {
    await writeSpans(storage, spans);
    await storage.client.command({ query: 'OPTIMIZE TABLE faultline.spans FINAL' });
    const counted = await rows<{ span_id: string; kind: string; copies: string }>(
      storage,
      `SELECT lower(hex(span_id)) AS span_id, kind, count() AS copies FROM faultline.spans
       WHERE trace_id = toUInt128({traceId:String}) GROUP BY span_id, kind ORDER BY span_id, kind`,
      { traceId: BigInt(`0x${NEW_TRACE}`).toString() },
    );
    expect(counted.map((row) => Number(row.copies))).toEqual([1, 1, 1, 1]);
  });

  it('finds a trace whose spans lie in blocks far apart', async () => {
    const traceId = 'ffffffffffffffff0000000000000042';
    const early = makeSpan(1, '', BASE_MS - 3_600_000, BASE_MS - 3_599_000, { traceId });
    const late = makeSpan(2, 1, BASE_MS - 1_200_000, BASE_MS - 1_199_000, { traceId });
    await writeSpans(storage, [early]);
    await writeSpans(storage, [late]);
    const stored = await readTraceSpans(storage, traceId);
    expect(stored.map((span) => span.spanId)).toEqual([spanId(1), spanId(2)]);
    expect(await readTraceSpans(storage, 'ffffffffffffffff0000000000000043')).toEqual([]);
  });

  it('reads only the time blocks of the trace', async () => {
    const [plan] = await rows<{ explain: string }>(
      storage,
      `SELECT arrayStringConcat(groupArray(explain), '\n') AS explain FROM (
         EXPLAIN indexes = 1
         WITH (SELECT (min(start_time), max(end_time)) FROM faultline.trace_summaries
           WHERE trace_id = toUInt128({traceId:String})) AS trace_bounds
         SELECT span_id FROM faultline.spans
         WHERE trace_id = toUInt128({traceId:String})
           AND start_time >= trace_bounds.1 AND start_time <= trace_bounds.2)`,
      { traceId: BigInt(`0x${NEW_TRACE}`).toString() },
    );
    // The bounds are constants by the time the primary key is searched, so the key's first
    // column, the time block of start_time, narrows the read.
    const primaryKey = plan.explain.slice(plan.explain.indexOf('PrimaryKey'));
    expect(primaryKey).toMatch(/Condition: and\(\(start_time in \(-Inf, '\d+/);
  });

  it('keeps both halves of a shared span', async () => {
    const stored = await readTraceSpans(storage, NEW_TRACE);
    const shared = stored.filter((span) => span.spanId === spanId(3));
    expect(shared.map((span) => span.kind).sort()).toEqual(['CLIENT', 'SERVER']);
  });
});
