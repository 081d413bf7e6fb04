import fs from 'node:fs';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { edgeCallsQuery, edgeRangeParams, readDependencies } from '../analyzer/dependencies';
import { syntheticTraces, takeSpans } from '../bench/synthetic';
import { attributeText } from '../lib/model/attributes';
import type { SpanRecord } from '../lib/model/span';
import { decodeProtobufRequest } from '../lib/otlp/decode';
import { flattenExportRequest } from '../lib/otlp/flatten';
import { openStorage, type Storage } from '../lib/storage/clickhouse';
import { closedMinutes, DEPENDENCY_LATENESS_MS } from '../lib/storage/dependency-minutes';
import { readLatencyGroups } from '../lib/storage/latency-minutes';
import {
  RANGE_CONDITION,
  rangeParams,
  readTraceSpans,
  readTraces,
  searchTraces,
} from '../lib/storage/span-reader';
import { writeSpans } from '../lib/storage/span-writer';
import { makeTempDir } from './helpers/faultline';

// Two hours ago, on a whole minute, so every minute of the data is closed.
const START_MS = Math.floor((Date.now() - 2 * 3_600_000) / 60_000) * 60_000;
const HOUR_RANGE = { startMs: START_MS, endMs: START_MS + 3_600_000 };
const HOUR_CONDITION =
  'start_time >= fromUnixTimestamp64Milli({startMs:Int64}) AND start_time < fromUnixTimestamp64Milli({endMs:Int64})';

function toRecords(spans: ReturnType<typeof takeSpans>): SpanRecord[] {
  const body = ProtobufTraceSerializer.serializeRequest(spans)!;
  return flattenExportRequest(decodeProtobufRequest(body)).spans;
}

async function rows<T>(storage: Storage, query: string, params = {}): Promise<T[]> {
  const result = await storage.client.query({ query, query_params: params, format: 'JSONEachRow' });
  return result.json<T>();
}

let storage: Storage;
let dataDir: string;
let records: SpanRecord[];

beforeAll(async () => {
  dataDir = makeTempDir('schema');
  storage = await openStorage({ dataDir, url: '', database: 'faultline', retentionDays: 3 });
  // One trace every 3 s over an hour: about 1200 traces and 24k spans.
  const traces = syntheticTraces({ seed: 7, startMs: START_MS, traceIntervalMs: 3000 });
  records = toRecords(takeSpans(traces, 24_000)).filter(
    (span) => Number(BigInt(span.startTimeUnixNano) / 1_000_000n) < HOUR_RANGE.endMs,
  );
  await writeSpans(storage, records.slice(0, 12_000));
  await writeSpans(storage, records.slice(12_000));
});

afterAll(async () => {
  await storage.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('spans table', () => {
  it('stores ids as integers and names as LowCardinality', async () => {
    const columns = await rows<{ name: string; type: string; compression_codec: string }>(
      storage,
      `SELECT name, type, compression_codec FROM system.columns
       WHERE database = 'faultline' AND table = 'spans'`,
    );
    const byName = new Map(columns.map((column) => [column.name, column]));
    expect(byName.get('trace_id')?.type).toBe('UInt128');
    expect(byName.get('span_id')?.type).toBe('UInt64');
    expect(byName.get('service_name')?.type).toBe('LowCardinality(String)');
    expect(byName.get('name')?.type).toBe('LowCardinality(String)');
    expect(byName.get('start_time')?.compression_codec).toBe('CODEC(Delta(8), ZSTD(1))');
    expect(byName.get('duration_ns')?.compression_codec).toBe('CODEC(T64, ZSTD(1))');
    expect(byName.get('attributes_string')?.compression_codec).toBe('CODEC(ZSTD(3))');
    expect(byName.get('parent_span_id')?.compression_codec).toBe('CODEC(ZSTD(3))');
    expect(byName.get('attributes_float')?.compression_codec).toBe('CODEC(ZSTD(9))');
  });

  it('sets a merge selector base of 20', async () => {
    for (const table of ['spans', 'trace_summaries', 'call_spans']) {
      const [row] = await rows<{ statement: string }>(
        storage,
        `SHOW CREATE TABLE faultline.${table}`,
      );
      expect(row.statement).toContain('merge_selector_base = 20');
    }
  });

  it('drops the unread operation rollup', async () => {
    const tables = await rows<{ name: string }>(
      storage,
      "SELECT name FROM system.tables WHERE database = 'faultline' AND name LIKE 'operation_minutes%'",
    );
    expect(tables).toEqual([]);
  });

  it('fills promoted attribute columns', async () => {
    const [row] = await rows<Record<string, string>>(
      storage,
      `SELECT
         countIf(http_method != '' AND http_method = attributes_string['http.request.method']) AS methods,
         countIf(attributes_string['http.request.method'] != '') AS http_spans,
         countIf(db_system = 'postgresql') AS databases,
         countIf(attributes_string['db.system.name'] = 'postgresql') AS db_spans,
         countIf(http_route != '' AND http_route = attributes_string['http.route']) AS routes,
         countIf(server_address != '') AS addresses
       FROM faultline.spans`,
    );
    expect(Number(row.http_spans)).toBeGreaterThan(0);
    expect(row.methods).toBe(row.http_spans);
    expect(Number(row.db_spans)).toBeGreaterThan(0);
    expect(row.databases).toBe(row.db_spans);
    expect(row.routes).toBe(row.http_spans);
    expect(Number(row.addresses)).toBe(records.length);
  });

  it('stores a retried insert once', async () => {
    const batch = records.slice(500, 600);
    const token = 'retry-test-batch';
    const countRows = async () => {
      const [row] = await rows<{ spans: string }>(
        storage,
        `SELECT count() AS spans FROM faultline.spans WHERE span_id IN
           (SELECT arrayJoin(arrayMap(id -> reinterpretAsUInt64(reverse(unhex(id))), {ids:Array(String)})))`,
        { ids: batch.map((span) => span.spanId) },
      );
      return Number(row.spans);
    };
    const before = await countRows();
    await writeSpans(storage, batch, { deduplicationToken: token });
    await writeSpans(storage, batch, { deduplicationToken: token });
    expect(await countRows()).toBe(before + batch.length);
  });

  it('keeps inserts after a token', async () => {
    const next = records.slice(710, 720);
    const countNext = async () => {
      const [row] = await rows<{ spans: string }>(
        storage,
        `SELECT count() AS spans FROM faultline.spans WHERE span_id IN
           (SELECT arrayJoin(arrayMap(id -> reinterpretAsUInt64(reverse(unhex(id))), {ids:Array(String)})))`,
        { ids: next.map((span) => span.spanId) },
      );
      return Number(row.spans);
    };
    const before = await countNext();
    await writeSpans(storage, records.slice(700, 710), { deduplicationToken: 'one-batch' });
    await writeSpans(storage, next);
    expect(await countNext()).toBe(before + next.length);
  });

  it('drops whole parts after the retention', async () => {
    for (const table of ['spans', 'trace_summaries', 'latency_minutes', 'dependency_minutes']) {
      const [row] = await rows<{ statement: string }>(
        storage,
        `SHOW CREATE TABLE faultline.${table}`,
      );
      expect(row.statement).toMatch(/TTL .*\+ toIntervalDay\(3\)/);
      expect(row.statement).toContain('ttl_only_drop_parts = 1');
    }
  });
});

describe('trace summaries', () => {
  it('match the spans of each trace', async () => {
    const traceId = records[100].traceId;
    const spans = records.filter((span) => span.traceId === traceId);
    const starts = spans.map((span) => BigInt(span.startTimeUnixNano));
    const ends = spans.map((span) => BigInt(span.endTimeUnixNano));
    const first = starts.reduce((a, b) => (a < b ? a : b));
    const last = ends.reduce((a, b) => (a > b ? a : b));
    const root = spans.find((span) => span.parentSpanId === '')!;
    const startMs = Number(first / 1_000_000n);

    const [summary] = (
      await searchTraces(storage, {
        range: { startMs, endMs: startMs + 1 },
        service: root.serviceName,
        operation: root.name,
        limit: 50,
      })
    ).filter((item) => item.traceId === traceId);
    expect(summary.startTimeUnixNano).toBe(first.toString());
    expect(summary.durationNs).toBe((last - first).toString());
    expect(summary.rootService).toBe(root.serviceName);
    expect(summary.rootName).toBe(root.name);
    expect(summary.spanCount).toBe(spans.length);
    expect(summary.errorCount).toBe(spans.filter((span) => span.isError).length);
    expect(summary.services).toEqual([...new Set(spans.map((s) => s.serviceName))].sort());
  });

  it('keep only the route when read without attributes', async () => {
    const traceId = records.find((span) => attributeText(span.attributes, 'http.route'))!.traceId;
    const spans = (await readTraces(storage, [traceId], { attributes: false })).get(traceId)!;
    const expected = records
      .filter((span) => span.traceId === traceId)
      .map((span) => attributeText(span.attributes, 'http.route') ?? '')
      .sort();
    const read = spans.map((span) => span.attributes);
    expect(read.map((attributes) => attributeText(attributes, 'http.route') ?? '').sort()).toEqual(
      expected,
    );
    expect(read.every((attributes) => attributes.length <= 1)).toBe(true);
  });

  it('count a span stored twice once', async () => {
    const traceId = records[200].traceId;
    const spans = records.filter((span) => span.traceId === traceId);
    await writeSpans(storage, spans);
    const [row] = await rows<{ spans: string }>(
      storage,
      `SELECT uniqMerge(span_count) AS spans FROM faultline.trace_summaries
       WHERE trace_id = reinterpretAsUInt128(reverse(unhex({id:String})))`,
      { id: traceId },
    );
    expect(Number(row.spans)).toBe(spans.length);
    expect(await readTraceSpans(storage, traceId)).toHaveLength(spans.length);
  });

  it('let lookup find a trace across midnight', async () => {
    const midnightMs = Math.floor(START_MS / 86_400_000) * 86_400_000;
    const traces = syntheticTraces({ seed: 9, startMs: midnightMs - 2, traceIntervalMs: 1 });
    const spans = toRecords(traces.next().value!);
    const startsMs = spans.map((span) => Number(BigInt(span.startTimeUnixNano) / 1_000_000n));
    expect(Math.min(...startsMs)).toBeLessThan(midnightMs);
    expect(Math.max(...startsMs)).toBeGreaterThanOrEqual(midnightMs);
    const late = spans.filter((_span, index) => startsMs[index] >= midnightMs);
    const early = spans.filter((_span, index) => startsMs[index] < midnightMs);
    await writeSpans(storage, late);
    await writeSpans(storage, early);
    const read = await readTraceSpans(storage, spans[0].traceId);
    expect(read).toHaveLength(spans.length);
  });
});

describe('latency minutes', () => {
  it('give spans, errors and duration buckets equal to spans', async () => {
    // Partial minutes at both ends, read from spans, and whole minutes from the rollup.
    const range = { startMs: START_MS + 600_250, endMs: START_MS + 1_890_500 };
    const groups = await readLatencyGroups(storage, range);
    const expected = await rows<{ key: string; spans: string; errors: string; buckets: string }>(
      storage,
      `SELECT concat(service_name, '/', name, '/', toString(kind), '/', remote_service, '/', toString(parent_span_id = 0)) AS key,
         count() AS spans, countIf(is_error) AS errors,
         toString(arraySort(groupArray(toUInt16(floor(log(greatest(duration_ns, 1)) * 16))))) AS buckets
       FROM (SELECT * FROM faultline.spans WHERE ${RANGE_CONDITION} LIMIT 1 BY trace_id, span_id, kind)
       GROUP BY key ORDER BY key`,
      rangeParams(range),
    );
    const actual = new Map<string, { spans: number; errors: number; buckets: number[] }>();
    for (const group of groups) {
      const key = [
        group.service,
        group.name,
        group.kind,
        group.remoteService,
        group.isRoot ? 1 : 0,
      ].join('/');
      const entry = actual.get(key) ?? { spans: 0, errors: 0, buckets: [] };
      entry.spans += group.spans;
      entry.errors += group.errors;
      group.buckets.forEach((bucket, index) => {
        for (let count = 0; count < group.counts[index]; count += 1) entry.buckets.push(bucket);
      });
      actual.set(key, entry);
    }
    expect(expected.length).toBeGreaterThan(5);
    expect(actual.size).toBe(expected.length);
    for (const row of expected) {
      const entry = actual.get(row.key);
      expect([row.key, entry?.spans, entry?.errors]).toEqual([
        row.key,
        Number(row.spans),
        Number(row.errors),
      ]);
      expect(`[${entry!.buckets.sort((a, b) => a - b).join(',')}]`).toBe(row.buckets);
    }
  });

  it('keep the version and the first minute of each group', async () => {
    const groups = await readLatencyGroups(storage, HOUR_RANGE);
    const firstStart = Math.min(
      ...records.map((span) => Number(BigInt(span.startTimeUnixNano) / 1_000_000n)),
    );
    expect(Math.min(...groups.map((group) => group.firstMs))).toBe(
      Math.floor(firstStart / 60_000) * 60_000,
    );
    expect(groups.every((group) => group.version !== undefined)).toBe(true);
  });
});

describe('dependency minutes', () => {
  async function liveEdges(
    range: { startMs: number; endMs: number },
    source: 'spans' | 'call_spans' = 'spans',
  ) {
    return rows<{ caller: string; callee: string; calls: string; errors: string }>(
      storage,
      `SELECT caller, callee, count() AS calls, countIf(is_error) AS errors
       FROM (${edgeCallsQuery('faultline', source)}) GROUP BY caller, callee ORDER BY caller, callee`,
      edgeRangeParams(range),
    );
  }

  it('keep the calling and called spans in call_spans', async () => {
    // Apply the TTL now, because a background merge may apply it at any time.
    await storage.client.command({ query: 'OPTIMIZE TABLE faultline.call_spans FINAL' });
    // Count only the main hour: call_spans keeps one day, and the midnight trace
    // written above is older than that when the tests run in the first hours of a day.
    const [row] = await rows<{ calls: string; spans: string }>(
      storage,
      `SELECT (SELECT uniqExact(trace_id, span_id, kind) FROM faultline.call_spans
          WHERE ${HOUR_CONDITION}) AS calls,
         (SELECT uniqExact(trace_id, span_id, kind) FROM faultline.spans
          WHERE kind IN ('CLIENT', 'PRODUCER', 'SERVER', 'CONSUMER') AND ${HOUR_CONDITION}) AS spans`,
      { startMs: HOUR_RANGE.startMs, endMs: HOUR_RANGE.endMs },
    );
    expect(Number(row.calls)).toBeGreaterThan(1000);
    expect(row.calls).toBe(row.spans);
    const range = { startMs: START_MS + 61_000, endMs: START_MS + 1_200_000 };
    expect(await liveEdges(range, 'call_spans')).toEqual(await liveEdges(range, 'spans'));
  });

  it('equal the edges joined from spans', async () => {
    const range = { startMs: START_MS + 90_500, endMs: START_MS + 1_830_250 };
    const expected = await liveEdges(range);
    const [first, second] = await Promise.all([
      readDependencies(storage, range),
      readDependencies(storage, range),
    ]);
    const again = await readDependencies(storage, range);
    expect(expected.length).toBeGreaterThan(3);
    for (const edges of [first, second, again]) {
      expect(edges.map((edge) => [edge.caller, edge.callee, edge.calls, edge.errors])).toEqual(
        expected.map((row) => [row.caller, row.callee, Number(row.calls), Number(row.errors)]),
      );
    }
  });

  it('read a range that starts before the epoch', async () => {
    await expect(readDependencies(storage, { startMs: -3_600_000, endMs: 2 })).resolves.toEqual([]);
  });

  it('store each closed minute once', async () => {
    const [row] = await rows<{ minutes: string; distinct_minutes: string }>(
      storage,
      `SELECT count() AS minutes, uniqExact(minute) AS distinct_minutes
       FROM (SELECT minute, caller, callee FROM faultline.dependency_minutes)
       GROUP BY caller, callee ORDER BY minutes DESC LIMIT 1`,
    );
    expect(Number(row.minutes)).toBe(Number(row.distinct_minutes));
  });

  it('leave open minutes and unfinished blocks of ten minutes to call spans', () => {
    const blockMs = Math.ceil(START_MS / 600_000) * 600_000 + 600_000;
    const now = blockMs + DEPENDENCY_LATENESS_MS + 540_000;
    const minutes = closedMinutes({ startMs: START_MS, endMs: now }, now);
    expect(minutes.firstMs).toBe(START_MS);
    // Nine minutes of the block that starts at blockMs are closed, but not the whole block.
    expect(minutes.endMs).toBe(blockMs);
    const later = closedMinutes({ startMs: START_MS, endMs: now }, now + 60_000);
    expect(later.endMs).toBe(blockMs + 600_000);
  });
});
