/**
 * Storage figures on the embedded engine (or a server with --clickhouse-url): insert
 * speed, bytes per span on disk after merges, and query latencies over one hour of
 * synthetic traces that ended ten minutes ago.
 *   npx tsx bench/storage.ts [--spans 1000000] [--lookups 200] [--clickhouse-url URL]
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { readDependencies } from '../analyzer/dependencies';
import { decodeSpansFast } from '../lib/otlp/fast-decode';
import { openStorage, type Storage, type StorageOptions } from '../lib/storage/clickhouse';
import { readTraceSpans, searchTraces } from '../lib/storage/span-reader';
import { writeSpans } from '../lib/storage/span-writer';
import { makeTempDir } from '../test/helpers/faultline';
import { quantile, report, round } from './measure';
import { seededRandom, syntheticTraces, takeSpans } from './synthetic';

const HOUR_MS = 3_600_000;
const BATCH_SPANS = 10_000;

async function timed<T>(step: () => Promise<T>): Promise<[number, T]> {
  const start = performance.now();
  const value = await step();
  return [performance.now() - start, value];
}

async function insertSpans(storage: Storage, total: number, startMs: number): Promise<string[]> {
  const traces = syntheticTraces({ seed: 11, startMs, traceIntervalMs: HOUR_MS / (total / 20) });
  const random = seededRandom(5);
  const sampledTraceIds: string[] = [];
  let written = 0;
  let insertMs = 0;
  while (written < total) {
    const body = ProtobufTraceSerializer.serializeRequest(takeSpans(traces, BATCH_SPANS))!;
    const spans = decodeSpansFast(body).spans;
    const [ms] = await timed(() => writeSpans(storage, spans));
    insertMs += ms;
    written += spans.length;
    for (let pick = 0; pick < 20; pick += 1) {
      sampledTraceIds.push(spans[Math.floor(random() * spans.length)].traceId);
    }
  }
  report('storage.insert', {
    spans: written,
    spansPerSecond: Math.round((written * 1000) / insertMs),
    batchSpans: BATCH_SPANS,
    format: 'Native',
  });
  return sampledTraceIds;
}

async function rows<T>(storage: Storage, query: string): Promise<T[]> {
  const result = await storage.client.query({ query, format: 'JSONEachRow' });
  return result.json<T>();
}

async function reportDiskBytes(storage: Storage): Promise<void> {
  const db = storage.database;
  for (const table of ['spans', 'trace_summaries', 'latency_minutes', 'dependency_minutes']) {
    await storage.client.command({ query: `OPTIMIZE TABLE ${db}.${table} FINAL` });
  }
  const tables = await rows<{ table: string; rows: string; bytes: string }>(
    storage,
    `SELECT table, sum(rows) AS rows, sum(bytes_on_disk) AS bytes FROM system.parts
     WHERE database = '${db}' AND active GROUP BY table ORDER BY table`,
  );
  const spans = tables.find((table) => table.table === 'spans');
  const spanRows = Number(spans?.rows ?? 0);
  const allBytes = tables.reduce((sum, table) => sum + Number(table.bytes), 0);
  report('storage.bytes', {
    spans: spanRows,
    spansTableBytesPerSpan: round(Number(spans?.bytes ?? 0) / spanRows, 1),
    allTablesBytesPerSpan: round(allBytes / spanRows, 1),
    tables: Object.fromEntries(tables.map((table) => [table.table, Number(table.bytes)])),
  });
  const columns = await rows<{ name: string; compressed: string }>(
    storage,
    `SELECT name, sum(data_compressed_bytes) AS compressed FROM system.columns
     WHERE database = '${db}' AND table = 'spans' GROUP BY name ORDER BY compressed DESC LIMIT 16`,
  );
  report('storage.columns', {
    bytesPerSpanByColumn: Object.fromEntries(
      columns.map((column) => [column.name, round(Number(column.compressed) / spanRows, 2)]),
    ),
  });
}

async function measureLookups(storage: Storage, traceIds: string[], label: string) {
  const latencies: number[] = [];
  for (const traceId of traceIds) {
    const [ms, spans] = await timed(() => readTraceSpans(storage, traceId));
    if (spans.length === 0) throw new Error(`trace ${traceId} not found`);
    latencies.push(ms);
  }
  report('query.traceById', {
    when: label,
    lookups: latencies.length,
    p50Ms: round(quantile(latencies, 0.5)),
    p99Ms: round(quantile(latencies, 0.99)),
  });
}

async function measureRepeated(label: string, runs: number, step: () => Promise<unknown>) {
  const [firstMs] = await timed(step);
  const latencies: number[] = [];
  for (let run = 0; run < runs; run += 1) latencies.push((await timed(step))[0]);
  report(label, {
    firstMs: round(firstMs),
    runs,
    p50Ms: round(quantile(latencies, 0.5)),
    p99Ms: round(quantile(latencies, 0.99)),
  });
}

async function measureQueries(storage: Storage, range: { startMs: number; endMs: number }) {
  await measureRepeated('query.searchByServiceAndDuration', 20, () =>
    searchTraces(storage, {
      range,
      service: 'checkout',
      minDurationNs: 50_000_000n,
      limit: 20,
    }),
  );
  await measureRepeated('query.dependencyReportOneHour', 10, () =>
    readDependencies(storage, range),
  );
}

export async function runStorageBenchmark(spans: number, lookups: number, url: string) {
  const dataDir = makeTempDir('bench-storage');
  const options: StorageOptions = {
    dataDir,
    url,
    database: url ? 'faultline_bench' : 'faultline',
    retentionDays: 7,
  };
  const endMs = Date.now() - 10 * 60_000;
  const range = { startMs: endMs - HOUR_MS, endMs };
  let storage = await openStorage(options);
  try {
    if (url) await storage.client.command({ query: `TRUNCATE DATABASE IF EXISTS faultline_bench` });
    const traceIds = (await insertSpans(storage, spans, range.startMs)).slice(0, lookups);
    await reportDiskBytes(storage);
    await measureLookups(storage, traceIds, 'first read');
    await measureLookups(storage, traceIds, 'warm');
    await measureQueries(storage, range);
    await storage.close();
    storage = await openStorage(options);
    await measureLookups(storage, traceIds, 'after restart');
  } finally {
    await storage.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const { values } = parseArgs({
    options: {
      spans: { type: 'string', default: '1000000' },
      lookups: { type: 'string', default: '200' },
      'clickhouse-url': { type: 'string', default: '' },
    },
  });
  runStorageBenchmark(Number(values.spans), Number(values.lookups), values['clickhouse-url']).catch(
    (error) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
