import fs from 'node:fs';
import path from 'node:path';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { syntheticTraces, takeSpans } from '../bench/synthetic';
import type { SpanKind, SpanRecord } from '../lib/model/span';
import { decodeProtobufRequest } from '../lib/otlp/decode';
import { flattenExportRequest } from '../lib/otlp/flatten';
import { openStorage, type Storage } from '../lib/storage/clickhouse';
import { insertFilesDir } from '../lib/storage/insert-files';
import { readTraceSpans } from '../lib/storage/span-reader';
import { SPAN_COLUMNS, toSpanRow } from '../lib/storage/span-rows';
import { writeSpans } from '../lib/storage/span-writer';
import { makeTempDir } from './helpers/faultline';

const STORAGE_OPTIONS = { url: '', database: 'faultline', retentionDays: 7 };

async function rows<T>(storage: Storage, query: string, params = {}): Promise<T[]> {
  const result = await storage.client.query({ query, query_params: params, format: 'JSONEachRow' });
  return result.json<T>();
}

async function countSpans(storage: Storage, spans: SpanRecord[]): Promise<number> {
  const [row] = await rows<{ spans: string }>(
    storage,
    `SELECT count() AS spans FROM faultline.spans WHERE span_id IN
       (SELECT arrayJoin(arrayMap(id -> reinterpretAsUInt64(reverse(unhex(id))), {ids:Array(String)})))`,
    { ids: spans.map((span) => span.spanId) },
  );
  return Number(row.spans);
}

function syntheticSpans(seed: number, count: number): SpanRecord[] {
  const traces = syntheticTraces({ seed, startMs: Date.now() - 3_600_000, traceIntervalMs: 50 });
  const body = ProtobufTraceSerializer.serializeRequest(takeSpans(traces, count))!;
  return flattenExportRequest(decodeProtobufRequest(body)).spans;
}

function insertFiles(dataDir: string): string[] {
  const dir = insertFilesDir(dataDir);
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

let storage: Storage;
let dataDir: string;

beforeAll(async () => {
  dataDir = makeTempDir('span-writer');
  storage = await openStorage({ dataDir, ...STORAGE_OPTIONS });
});

afterAll(async () => {
  await storage.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('writeSpans on the embedded engine', () => {
  it('stores the rows a request body stores', async () => {
    const spans = syntheticSpans(11, 3000);
    expect(spans.some((span) => span.events.length > 0)).toBe(true);
    await storage.client.command({
      query: 'CREATE TABLE faultline.spans_from_body AS faultline.spans',
    });
    await storage.client.insert({
      table: 'faultline.spans_from_body',
      values: spans.map((span) => {
        const row = toSpanRow(span);
        return SPAN_COLUMNS.map((column) => row[column]);
      }),
      columns: SPAN_COLUMNS,
      format: 'JSONCompactEachRow',
    });

    await writeSpans(storage, spans);

    const columns = SPAN_COLUMNS.map((column) => `\`${column}\``).join(', ');
    const [onlyInFile] = await rows<{ rows: string }>(
      storage,
      `SELECT count() AS rows FROM (SELECT ${columns} FROM faultline.spans
       EXCEPT SELECT ${columns} FROM faultline.spans_from_body)`,
    );
    const [onlyInBody] = await rows<{ rows: string }>(
      storage,
      `SELECT count() AS rows FROM (SELECT ${columns} FROM faultline.spans_from_body
       EXCEPT SELECT ${columns} FROM faultline.spans)`,
    );
    expect(Number(onlyInFile.rows)).toBe(0);
    expect(Number(onlyInBody.rows)).toBe(0);
    expect(await countSpans(storage, spans)).toBe(spans.length);
  });

  it('makes a trace readable on resolve', async () => {
    const spans = syntheticSpans(12, 200);
    const traceId = spans[0].traceId;
    await writeSpans(storage, spans);
    const stored = await readTraceSpans(storage, traceId);
    expect(stored).toHaveLength(spans.filter((span) => span.traceId === traceId).length);
  });

  it('stores a retried batch once with its token', async () => {
    const spans = syntheticSpans(13, 100);
    await writeSpans(storage, spans, { deduplicationToken: 'writer-retry' });
    await writeSpans(storage, spans, { deduplicationToken: 'writer-retry' });
    expect(await countSpans(storage, spans)).toBe(spans.length);
  });

  it('stores two batches in flight at once', async () => {
    const first = syntheticSpans(14, 500);
    const second = syntheticSpans(15, 500);
    await Promise.all([writeSpans(storage, first), writeSpans(storage, second)]);
    expect(await countSpans(storage, first)).toBe(first.length);
    expect(await countSpans(storage, second)).toBe(second.length);
  });

  it('removes its file after an insert', async () => {
    await writeSpans(storage, syntheticSpans(16, 100));
    expect(insertFiles(dataDir)).toEqual([]);
  });

  it('removes its file after a failed insert', async () => {
    const [span] = syntheticSpans(17, 1);
    const invalid = { ...span, kind: 'SIDEWAYS' as SpanKind };
    await expect(writeSpans(storage, [invalid])).rejects.toThrow(/SIDEWAYS/);
    expect(insertFiles(dataDir)).toEqual([]);
    expect(await countSpans(storage, [invalid])).toBe(0);
  });

  it('removes files a stopped process left', async () => {
    await storage.close();
    fs.mkdirSync(insertFilesDir(dataDir), { recursive: true });
    fs.writeFileSync(path.join(insertFilesDir(dataDir), 'spans-left.jsonl'), '[]\n');
    storage = await openStorage({ dataDir, ...STORAGE_OPTIONS });
    expect(insertFiles(dataDir)).toEqual([]);
  });
});

describe('writeSpans under a data folder with glob characters', () => {
  it('sends the rows in the query instead of a file', async () => {
    await storage.close();
    const globDir = makeTempDir('glob{a,b}*');
    try {
      const globStorage = await openStorage({ dataDir: globDir, ...STORAGE_OPTIONS });
      const spans = syntheticSpans(18, 300);
      try {
        await writeSpans(globStorage, spans);
        expect(await countSpans(globStorage, spans)).toBe(spans.length);
      } finally {
        await globStorage.close();
      }
      expect(fs.existsSync(insertFilesDir(globDir))).toBe(false);
    } finally {
      fs.rmSync(globDir, { recursive: true, force: true });
      storage = await openStorage({ dataDir, ...STORAGE_OPTIONS });
    }
  });
});
