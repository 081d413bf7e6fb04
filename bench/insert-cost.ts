/**
 * Splits the cost of inserting spans on the embedded engine into parsing and storing:
 *   npx tsx bench/insert-cost.ts [--batches 5] [--sizes 2000,10000,50000] [--parts all]
 * `--parts` takes a comma-separated list of the parts below (PARTS) to run only those.
 * Each 10k-span batch goes through @clickhouse/client into a Null-engine copy of `spans`
 * (parsing only) as JSONEachRow, as TabSeparated text and as a JSONCompactEachRow file
 * read by file(). Then one batch goes into `spans` itself as a JSONCompactEachRow request
 * body, which the embedded connection puts into the query text, and another through
 * `writeSpans`, which inserts a Native file (parsing, storing and the materialized views).
 * Last, for each of `--sizes`, rows built beforehand as Native blocks and as
 * JSONCompactEachRow lines go through `writeSpanRows`, the collector's insert, batch after
 * batch, on a fresh data folder. It reports the wall time and the process CPU time a span
 * at that batch size and format, the engine's threads and merges included. Then it
 * compares 50,000-span inserts with the materialized views of `spans` attached and
 * detached, and with `optimize_on_insert` on and off. Then it times building the Native
 * block of exporter bodies from span records and straight from the protobuf bytes. Then
 * it inserts 75,000 spans as one block an exporter body and as the blocks of gathered
 * exports that the collector's sink builds. Then
 * it times the merges of eight 75,000-span parts of `spans` and of its view tables, and
 * compares the insert and merge CPU and the bytes of the codecs of `spans` with its former
 * ones. Last, it inserts 30 such parts at about 88k spans/s with `merge_selector_base` at
 * 5 (ClickHouse's default), 10 and 20 (the schema's), and reports the CPU time of the
 * background merges meanwhile (read from /proc, so on Linux only).
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { decodeSpansFast } from '../lib/otlp/fast-decode';
import { protobufSpanRows, SpanBlockGroup } from '../lib/otlp/protobuf-rows';
import { GROUP_MAX_SPANS } from '../collector/sinks';
import { openStorage, type Storage } from '../lib/storage/clickhouse';
import {
  joinSpanRows,
  SPAN_COLUMNS,
  toJsonSpanRows,
  toSpanRow,
  toSpanRows,
  type RowFormat,
  type SpanRow,
  type SpanRows,
} from '../lib/storage/span-rows';
import { writeSpanRows, writeSpans } from '../lib/storage/span-writer';
import { makeTempDir } from '../test/helpers/faultline';
import { quantile, report, round, threadCpuSeconds } from './measure';
import { syntheticTraces, takeSpans } from './synthetic';

const BATCH_SPANS = 10_000;
// Map and array columns whose TabSeparated elements are numbers, written without quotes.
const NUMERIC_ELEMENTS = new Set<keyof SpanRow>([
  'attributes_int',
  'attributes_float',
  'attributes_bool',
  'events.time_offset_ns',
  'events.dropped_attributes_count',
  'link_trace_ids',
  'link_span_ids',
  'link_dropped_attributes_counts',
  'link_flags',
]);

function escapeText(text: string): string {
  return text.replace(/[\\\t\n']/g, (char) =>
    char === '\t' ? '\\t' : char === '\n' ? '\\n' : `\\${char}`,
  );
}

function element(value: unknown, numeric: boolean): string {
  return numeric ? String(value) : `'${escapeText(String(value))}'`;
}

/** Formats one value as TabSeparated text, with maps and arrays in ClickHouse's text form. */
function tabSeparatedValue(value: unknown, numeric: boolean): string {
  if (Array.isArray(value)) return `[${value.map((item) => element(item, numeric)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).map(
      ([key, item]) => `'${escapeText(key)}':${element(item, numeric)}`,
    );
    return `{${entries.join(',')}}`;
  }
  return escapeText(String(value));
}

function compactValues(row: SpanRow): unknown[] {
  return SPAN_COLUMNS.map((column) => row[column]);
}

function compactLine(row: SpanRow): string {
  return `${JSON.stringify(compactValues(row))}\n`;
}

function toTabSeparated(rows: SpanRow[]): string {
  const lines = rows.map((row) =>
    SPAN_COLUMNS.map((column) => tabSeparatedValue(row[column], NUMERIC_ELEMENTS.has(column))).join(
      '\t',
    ),
  );
  return `${lines.join('\n')}\n`;
}

async function timed(step: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await step();
  return performance.now() - start;
}

/**
 * Inserts `batches` batches of `size` spans, built into rows beforehand, one after the
 * other into a fresh data folder. Returns the median wall time and the CPU time a span.
 */
async function insertBySize(size: number, batches: number, format: RowFormat) {
  const build = format === 'Native' ? toSpanRows : toJsonSpanRows;
  const dataDir = makeTempDir('insert-size');
  const storage = await openStorage({ dataDir, url: '', database: 'faultline', retentionDays: 7 });
  const traces = syntheticTraces({ seed: 4, startMs: Date.now() - 600_000, traceIntervalMs: 5 });
  let rowsMs = 0;
  let built = 0;
  const rows = Array.from({ length: batches }, () => {
    const body = ProtobufTraceSerializer.serializeRequest(takeSpans(traces, size))!;
    const spans = decodeSpansFast(body).spans;
    const started = performance.now();
    const batch = build(spans);
    rowsMs += performance.now() - started;
    built += batch.count;
    return batch;
  });
  const wall: number[] = [];
  let spans = 0;
  const cpuStart = process.cpuUsage();
  for (const batch of rows) {
    wall.push(((await timed(() => writeSpanRows(storage, batch))) * 1000) / batch.count);
    spans += batch.count;
  }
  const cpu = process.cpuUsage(cpuStart);
  await storage.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
  return {
    format,
    batchSpans: size,
    batches,
    buildRowsMicrosecondsPerSpan: round((rowsMs * 1000) / built),
    wallMicrosecondsPerSpanP50: round(quantile(wall, 0.5)),
    cpuMicrosecondsPerSpan: round((cpu.user + cpu.system) / spans),
  };
}

/**
 * Inserts 50,000-span Native batches into `spans` with its materialized views attached,
 * then with them detached, on one fresh data folder. Returns the process CPU time a span
 * of each, the merges that ran meanwhile included.
 */
async function viewsCost(batches: number) {
  const dataDir = makeTempDir('insert-views');
  const storage = await openStorage({ dataDir, url: '', database: 'faultline', retentionDays: 7 });
  const traces = syntheticTraces({ seed: 5, startMs: Date.now() - 600_000, traceIntervalMs: 5 });
  const views = await storage.client
    .query({
      query: `SELECT name FROM system.tables
        WHERE database = {database:String} AND engine = 'MaterializedView' ORDER BY name`,
      query_params: { database: storage.database },
      format: 'JSONEachRow',
    })
    .then((result) => result.json<{ name: string }>());
  const insertBatches = async () => {
    let cpu = 0;
    let spans = 0;
    for (let batch = 0; batch < batches; batch += 1) {
      const body = ProtobufTraceSerializer.serializeRequest(takeSpans(traces, 50_000))!;
      const rows = toSpanRows(decodeSpansFast(body).spans);
      const started = process.cpuUsage();
      await writeSpanRows(storage, rows);
      const used = process.cpuUsage(started);
      cpu += used.user + used.system;
      spans += rows.count;
    }
    return round(cpu / spans);
  };
  const withViews = await insertBatches();
  for (const { name } of views) {
    await storage.client.command({ query: `DETACH TABLE ${storage.database}.${name}` });
  }
  const withoutViews = await insertBatches();
  await storage.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
  return {
    views: views.map((view) => view.name),
    batches,
    batchSpans: 50_000,
    cpuMicrosecondsPerSpanWithViews: withViews,
    cpuMicrosecondsPerSpanWithoutViews: withoutViews,
  };
}

const MERGE_PARTS = 8;
const MERGE_PART_SPANS = 75_000;
const CODEC_ROUNDS = 3;

/**
 * Writes `count` files of MERGE_PART_SPANS spans each, as the Native blocks that the
 * collector builds from 500-span exporter bodies, and returns their paths.
 */
function writePartFiles(dataDir: string, count: number, seed: number): string[] {
  const traces = syntheticTraces({ seed, startMs: Date.now() - 600_000, traceIntervalMs: 1 });
  const limits = { maxAttributesPerSpan: 512, maxAttributeValueLength: 32768 };
  return Array.from({ length: count }, (_unused, part) => {
    const chunks: Buffer[] = [];
    for (let body = 0; body < MERGE_PART_SPANS / 500; body += 1) {
      const bytes = ProtobufTraceSerializer.serializeRequest(takeSpans(traces, 500))!;
      chunks.push(...protobufSpanRows(bytes, { limits, oldestNs: 0n })!.chunks);
    }
    const file = path.join(dataDir, `part-${part}.native`);
    fs.writeFileSync(file, Buffer.concat(chunks));
    return file;
  });
}

/** Inserts one of those files into a table with the columns of `spans`. */
function insertFile(storage: Storage, table: string, file: string, token: string) {
  return storage.client.command({
    query: `INSERT INTO ${storage.database}.${table} (${SPAN_COLUMNS.map((column) => `\`${column}\``).join(', ')})
      SELECT * FROM file({path:String}, 'Native')`,
    query_params: { path: file },
    clickhouse_settings: { insert_deduplication_token: token },
  });
}

// The codecs of `spans` before they were chosen for insert CPU: each pair is a column's
// current definition, as SHOW CREATE TABLE prints it, and the former one.
const FORMER_CODECS: [string, string][] = [
  [
    '`attributes_string` Map(LowCardinality(String), LowCardinality(String)) CODEC(ZSTD(3))',
    '`attributes_string` Map(LowCardinality(String), LowCardinality(String)) CODEC(ZSTD(9))',
  ],
  ['`parent_span_id` UInt64 CODEC(ZSTD(3))', '`parent_span_id` UInt64 CODEC(ZSTD(1))'],
  [
    '`attributes_float` Map(LowCardinality(String), Float64) CODEC(ZSTD(9))',
    '`attributes_float` Map(LowCardinality(String), Float64) CODEC(ZSTD(1))',
  ],
];

/**
 * Times the merges behind the collector's inserts: eight 75,000-span Native inserts into
 * `spans` and its views with merges stopped, then `OPTIMIZE ... FINAL` of each table,
 * reported as CPU a span. Then the same inserts and merge for two copies of `spans`
 * without views, one with its codecs and one with the former codecs (FORMER_CODECS), in
 * turns, with the bytes a span of both after the merge.
 */
async function mergeCost() {
  const dataDir = makeTempDir('insert-merges');
  const storage = await openStorage({ dataDir, url: '', database: 'faultline', retentionDays: 7 });
  const { client, database } = storage;
  const files = writePartFiles(dataDir, MERGE_PARTS, 9);
  const create = await client
    .query({ query: `SHOW CREATE TABLE ${database}.spans`, format: 'JSONEachRow' })
    .then((result) => result.json<{ statement: string }>());
  const copies = { current: 'spans_codecs', former: 'spans_former_codecs' };
  await client.command({
    query: create[0].statement.replace(`${database}.spans`, `${database}.${copies.current}`),
  });
  await client.command({
    query: FORMER_CODECS.reduce(
      (statement, [current, former]) => {
        if (!statement.includes(current)) throw new Error(`spans has no column ${current}`);
        return statement.replace(current, former);
      },
      create[0].statement.replace(`${database}.spans`, `${database}.${copies.former}`),
    ),
  });
  const tableStats = (table: string) =>
    client
      .query({
        query: `SELECT sum(rows) AS rows, sum(bytes_on_disk) AS bytes FROM system.parts
          WHERE database = {database:String} AND table = {table:String} AND active`,
        query_params: { database, table },
        format: 'JSONEachRow',
      })
      .then((result) => result.json<{ rows: string; bytes: string }>())
      .then(([row]) => ({ rows: Number(row.rows), bytes: Number(row.bytes) }));

  /** Inserts the parts with merges stopped and returns the CPU time it took. */
  const insertParts = async (table: string, tokenPrefix = table) => {
    await client.command({ query: `SYSTEM STOP MERGES ${database}.${table}` });
    let cpu = 0;
    for (const [part, file] of files.entries()) {
      cpu += await cpuMicroseconds(() =>
        insertFile(storage, table, file, `${tokenPrefix}-${part}`),
      );
    }
    await client.command({ query: `SYSTEM START MERGES ${database}.${table}` });
    return cpu;
  };
  const mergeTable = (table: string) =>
    cpuMicroseconds(() => client.command({ query: `OPTIMIZE TABLE ${database}.${table} FINAL` }));

  const viewTables = ['trace_summaries', 'call_spans', 'latency_minutes'];
  for (const table of viewTables) {
    await client.command({ query: `SYSTEM STOP MERGES ${database}.${table}` });
  }
  await insertParts('spans');
  const spans = (await tableStats('spans')).rows;
  const mergeCpu: Record<string, number> = { spans: await mergeTable('spans') };
  for (const table of viewTables) {
    await client.command({ query: `SYSTEM START MERGES ${database}.${table}` });
    mergeCpu[table] = await mergeTable(table);
  }
  // One round's figures differ by more than the codecs do, so the two copies take turns
  // for CODEC_ROUNDS rounds and each figure is the median of its rounds.
  const rounds = {
    current: { insert: [], merge: [] },
    former: { insert: [], merge: [] },
  } as Record<keyof typeof copies, { insert: number[]; merge: number[] }>;
  for (let turn = 0; turn < CODEC_ROUNDS; turn += 1) {
    for (const [codec, table] of Object.entries(copies) as [keyof typeof copies, string][]) {
      await client.command({ query: `TRUNCATE TABLE ${database}.${table}` });
      rounds[codec].insert.push((await insertParts(table, `turn-${turn}`)) / spans);
      rounds[codec].merge.push((await mergeTable(table)) / spans);
    }
  }
  const codecs: Record<string, Record<string, number>> = {};
  for (const [codec, table] of Object.entries(copies) as [keyof typeof copies, string][]) {
    codecs[codec] = {
      insertCpuMicrosecondsPerSpan: round(quantile(rounds[codec].insert, 0.5)),
      mergeCpuMicrosecondsPerSpan: round(quantile(rounds[codec].merge, 0.5)),
      bytesPerSpan: round((await tableStats(table)).bytes / spans),
    };
  }
  await storage.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
  return {
    parts: MERGE_PARTS,
    spans,
    mergeCpuMicrosecondsPerSpan: Object.fromEntries(
      Object.entries(mergeCpu).map(([table, cpu]) => [table, round(cpu / spans)]),
    ),
    spansWithoutViews: codecs,
  };
}

/** Returns the CPU time, in microseconds, that this process used while `run` ran. */
async function cpuMicroseconds(run: () => Promise<unknown>): Promise<number> {
  const started = process.cpuUsage();
  await run();
  const used = process.cpuUsage(started);
  return used.user + used.system;
}

const BLOCK_ROUNDS = 6;

/**
 * Inserts batches of 75,000 spans into `spans` and its views, merges stopped, as the
 * collector's writer does. The batches take turns: one has a Native block for each
 * exporter body of 500 spans. The next has the bodies gathered into blocks of up to
 * GROUP_MAX_SPANS spans, as the collector's sink gathers exports that arrive together.
 * Reports the medians of the insert CPU a span.
 */
async function blockSizeCost() {
  const dataDir = makeTempDir('insert-blocks');
  const storage = await openStorage({ dataDir, url: '', database: 'faultline', retentionDays: 7 });
  for (const table of ['spans', 'trace_summaries', 'call_spans', 'latency_minutes']) {
    await storage.client.command({ query: `SYSTEM STOP MERGES ${storage.database}.${table}` });
  }
  const traces = syntheticTraces({ seed: 12, startMs: Date.now() - 600_000, traceIntervalMs: 1 });
  const options = {
    limits: { maxAttributesPerSpan: 512, maxAttributeValueLength: 32768 },
    oldestNs: 0n,
  };
  const cpu = { exportBlocks: [] as number[], groupedBlocks: [] as number[] };
  let groupedBlockCount = 0;
  for (let round = 0; round < BLOCK_ROUNDS * 2; round += 1) {
    const bodies = Array.from(
      { length: MERGE_PART_SPANS / 500 },
      () => ProtobufTraceSerializer.serializeRequest(takeSpans(traces, 500))!,
    );
    const blocks: SpanRows[] = [];
    const grouped = round % 2 === 1;
    if (grouped) {
      const group = new SpanBlockGroup();
      for (const body of bodies) {
        group.add(body, options);
        if (group.spans >= GROUP_MAX_SPANS) blocks.push(group.take()!);
      }
      if (group.spans > 0) blocks.push(group.take()!);
      groupedBlockCount = blocks.length;
    } else {
      for (const body of bodies) blocks.push(protobufSpanRows(body, options)!);
    }
    const rows = joinSpanRows(blocks);
    const used = await cpuMicroseconds(() =>
      writeSpanRows(storage, rows, { deduplicationToken: `round-${round}` }),
    );
    cpu[grouped ? 'groupedBlocks' : 'exportBlocks'].push(used / rows.count);
  }
  await storage.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
  return {
    rounds: BLOCK_ROUNDS,
    spansAnInsert: MERGE_PART_SPANS,
    exportBlocks: MERGE_PART_SPANS / 500,
    groupedBlocks: groupedBlockCount,
    insertCpuMicrosecondsPerSpan: {
      exportBlocks: round(quantile(cpu.exportBlocks, 0.5)),
      groupedBlocks: round(quantile(cpu.groupedBlocks, 0.5)),
    },
  };
}

const STREAM_PARTS = 30;
// The tables whose merge selector base the schema sets.
const MERGE_SELECTOR_TABLES = ['spans', 'trace_summaries', 'call_spans'];
const STREAM_INTERVAL_MS = 850;

/** Returns the CPU time, in microseconds, that this process's merge threads used so far. */
function mergeThreadsCpu(): number {
  return (threadCpuSeconds(process.pid).get('MergeMutate') ?? 0) * 1_000_000;
}

/**
 * Measures background merges while parts arrive as in a long end-to-end run. It inserts
 * STREAM_PARTS parts of 75,000 spans into `spans` and its views, one every
 * STREAM_INTERVAL_MS (about 88k spans/s), on a fresh data folder with
 * `merge_selector_base` at `base` on the tables of MERGE_SELECTOR_TABLES. Returns the CPU
 * time that the merge threads used meanwhile, a span, and the parts of `spans` left.
 * Reads the threads' times from /proc, so it runs on Linux only.
 */
async function mergeStream(files: string[], base: number) {
  const dataDir = makeTempDir('insert-stream');
  const storage = await openStorage({ dataDir, url: '', database: 'faultline', retentionDays: 7 });
  const { client, database } = storage;
  for (const table of MERGE_SELECTOR_TABLES) {
    await client.command({
      query: `ALTER TABLE ${database}.${table} MODIFY SETTING merge_selector_base = ${base}`,
    });
  }

  const started = performance.now();
  const mergeCpuBefore = mergeThreadsCpu();
  for (let part = 0; part < files.length; part += 1) {
    const wait = started + part * STREAM_INTERVAL_MS - performance.now();
    if (wait > 0) await sleep(wait);
    await insertFile(storage, 'spans', files[part], `stream-${part}`);
  }
  const mergeCpu = mergeThreadsCpu() - mergeCpuBefore;
  const seconds = (performance.now() - started) / 1000;

  const [parts] = await client
    .query({
      query: `SELECT count() AS parts, sum(rows) AS rows FROM system.parts
        WHERE database = {database:String} AND table = 'spans' AND active`,
      query_params: { database },
      format: 'JSONEachRow',
    })
    .then((result) => result.json<{ parts: string; rows: string }>());
  await storage.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
  return {
    mergeSelectorBase: base,
    inserts: files.length,
    seconds: round(seconds),
    mergeCpuMicrosecondsPerSpan: round(mergeCpu / Number(parts.rows)),
    partsLeft: Number(parts.parts),
  };
}

/**
 * Inserts 50,000-span Native batches into `spans` and its views from a file, as the
 * collector does, with `optimize_on_insert` on (ClickHouse's default) and off (the
 * client's setting), alternating on one fresh data folder. Returns the median wall time
 * a span of each.
 */
async function optimizeOnInsertCost(batches: number) {
  const dataDir = makeTempDir('insert-optimize');
  const storage = await openStorage({ dataDir, url: '', database: 'faultline', retentionDays: 7 });
  const traces = syntheticTraces({ seed: 6, startMs: Date.now() - 600_000, traceIntervalMs: 5 });
  const file = path.join(dataDir, 'batch.native');
  const wall: Record<'on' | 'off', number[]> = { on: [], off: [] };
  for (let batch = 0; batch < batches * 2; batch += 1) {
    const body = ProtobufTraceSerializer.serializeRequest(takeSpans(traces, 50_000))!;
    const rows = toSpanRows(decodeSpansFast(body).spans);
    fs.writeFileSync(file, Buffer.concat(rows.chunks));
    const setting = batch % 2 === 0 ? 'on' : 'off';
    const ms = await timed(() =>
      storage.client.command({
        query: `INSERT INTO ${storage.database}.spans (${rows.columns.map((column) => `\`${column}\``).join(', ')})
          SELECT * FROM file({path:String}, 'Native')`,
        query_params: { path: file },
        clickhouse_settings: {
          max_partitions_per_insert_block: '0',
          optimize_on_insert: setting === 'on' ? 1 : 0,
        },
      }),
    );
    wall[setting].push((ms * 1000) / rows.count);
  }
  await storage.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
  return {
    batches,
    batchSpans: 50_000,
    wallMicrosecondsPerSpanOptimizeOnInsertP50: round(quantile(wall.on, 0.5)),
    wallMicrosecondsPerSpanWithoutP50: round(quantile(wall.off, 0.5)),
  };
}

/**
 * Builds the Native block of 2,000-span exporter bodies from the records of the fast
 * decoder and straight from the body, and returns the time a span of each, decoding
 * included.
 */
function buildCost(batches: number) {
  const traces = syntheticTraces({ seed: 7, startMs: Date.now() - 600_000, traceIntervalMs: 5 });
  const bodies = Array.from({ length: batches * 4 }, () =>
    Buffer.from(ProtobufTraceSerializer.serializeRequest(takeSpans(traces, 2000))!),
  );
  const limits = { maxAttributesPerSpan: 512, maxAttributeValueLength: 32768 };
  const oldestNs = BigInt(Date.now() - 7 * 86_400_000) * 1_000_000n;
  const perSpan = (build: (body: Buffer) => { count: number }) => {
    let spans = 0;
    const started = performance.now();
    for (const body of bodies) spans += build(body).count;
    return ((performance.now() - started) * 1000) / spans;
  };
  const fromRecords = (body: Buffer) => toSpanRows(decodeSpansFast(body, limits).spans);
  const direct = (body: Buffer) => protobufSpanRows(body, { limits, oldestNs })!;
  // The first rounds let the JIT compile both paths.
  for (let round = 0; round < 3; round += 1) {
    perSpan(fromRecords);
    perSpan(direct);
  }
  return {
    batches: bodies.length,
    batchSpans: 2000,
    fromRecordsMicrosecondsPerSpan: round(perSpan(fromRecords)),
    directMicrosecondsPerSpan: round(perSpan(direct)),
  };
}

/** Times parsing and storing 10,000-span batches in the formats the header lists. */
async function parseCost(batches: number) {
  const dataDir = makeTempDir('insert-cost');
  const storage = await openStorage({
    dataDir,
    url: '',
    database: 'faultline',
    retentionDays: 7,
  });
  const { client, database } = storage;
  await client.command({
    query: `CREATE TABLE ${database}.spans_null AS ${database}.spans ENGINE = Null`,
  });

  const traces = syntheticTraces({ seed: 3, startMs: Date.now() - 600_000, traceIntervalMs: 5 });
  const microseconds = {
    jsonParse: [] as number[],
    tabParse: [] as number[],
    fileParse: [] as number[],
    bodyStore: [] as number[],
    store: [] as number[],
  };
  const batchFile = path.join(dataDir, 'batch.jsonl');
  const fromFile = (table: string) =>
    client.command({
      query: `INSERT INTO ${table} (${SPAN_COLUMNS.map((column) => `\`${column}\``).join(', ')})
        SELECT * FROM file({path:String}, 'JSONCompactEachRow')`,
      query_params: { path: batchFile },
    });
  let jsonBytes = 0;
  let tabBytes = 0;
  for (let batch = 0; batch < batches; batch += 1) {
    const body = ProtobufTraceSerializer.serializeRequest(takeSpans(traces, BATCH_SPANS))!;
    const spans = decodeSpansFast(body).spans;
    const rows = spans.map(toSpanRow);
    const tab = toTabSeparated(rows);
    jsonBytes = rows.reduce((sum, row) => sum + JSON.stringify(row).length + 1, 0);
    tabBytes = tab.length;

    const table = `${database}.spans_null`;
    const jsonMs = await timed(() => client.insert({ table, values: rows, format: 'JSONEachRow' }));
    const tabMs = await timed(() =>
      client.insert({
        table,
        values: Readable.from([Buffer.from(tab)], { objectMode: false }),
        columns: SPAN_COLUMNS,
        format: 'TabSeparated',
      }),
    );
    fs.writeFileSync(batchFile, rows.map(compactLine).join(''));
    const fileMs = await timed(() => fromFile(table));

    // Another batch for writeSpans, because spans drops an insert whose rows repeat one of
    // its last 1000 inserts.
    const next = decodeSpansFast(
      ProtobufTraceSerializer.serializeRequest(takeSpans(traces, BATCH_SPANS))!,
    ).spans;
    const insertBody = () =>
      timed(() =>
        client.insert({
          table: `${database}.spans`,
          values: spans.map((span) => compactValues(toSpanRow(span))),
          columns: SPAN_COLUMNS,
          format: 'JSONCompactEachRow',
          clickhouse_settings: { max_partitions_per_insert_block: '0' },
        }),
      );
    const insertWithWriter = () => timed(() => writeSpans(storage, next));
    // The order alternates, so the merges that one insert starts slow both kinds alike.
    const [bodyMs, storeMs] =
      batch % 2 === 0
        ? [await insertBody(), await insertWithWriter()]
        : [await insertWithWriter(), await insertBody()].reverse();
    microseconds.jsonParse.push((jsonMs * 1000) / spans.length);
    microseconds.tabParse.push((tabMs * 1000) / spans.length);
    microseconds.fileParse.push((fileMs * 1000) / spans.length);
    microseconds.bodyStore.push((bodyMs * 1000) / spans.length);
    microseconds.store.push((storeMs * 1000) / next.length);
  }
  await storage.close();
  fs.rmSync(dataDir, { recursive: true, force: true });

  return {
    batches,
    batchSpans: BATCH_SPANS,
    jsonBytesPerSpan: Math.round(jsonBytes / BATCH_SPANS),
    tabSeparatedBytesPerSpan: Math.round(tabBytes / BATCH_SPANS),
    parseJsonEachRowMicrosecondsPerSpanP50: round(quantile(microseconds.jsonParse, 0.5)),
    parseTabSeparatedMicrosecondsPerSpanP50: round(quantile(microseconds.tabParse, 0.5)),
    parseCompactFileMicrosecondsPerSpanP50: round(quantile(microseconds.fileParse, 0.5)),
    requestBodyInsertMicrosecondsPerSpanP50: round(quantile(microseconds.bodyStore, 0.5)),
    writeSpansMicrosecondsPerSpanP50: round(quantile(microseconds.store, 0.5)),
  };
}

/** The parts of this benchmark, in the order they run, as `--parts` names them. */
const PARTS = [
  'cost',
  'bySize',
  'views',
  'optimizeOnInsert',
  'buildRows',
  'blockSize',
  'merges',
  'mergeStream',
] as const;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      batches: { type: 'string', default: '5' },
      sizes: { type: 'string', default: '2000,10000,50000' },
      parts: { type: 'string', default: 'all' },
    },
  });
  const batches = Number(values.batches);
  const parts = values.parts === 'all' ? PARTS : values.parts.split(',');
  const unknown = parts.filter((part) => !(PARTS as readonly string[]).includes(part));
  if (unknown.length > 0) {
    throw new Error(
      `unknown --parts ${unknown.join(', ')}: use all or a comma-separated list of ${PARTS.join(', ')}`,
    );
  }
  const selected = (part: (typeof PARTS)[number]) => parts.includes(part);
  if (selected('cost')) report('insert.cost', await parseCost(batches));
  if (selected('bySize')) {
    for (const size of values.sizes.split(',').map(Number)) {
      // The same number of spans at each size, so merges have as much to do.
      const count = Math.max(3, Math.round((batches * 20_000) / size));
      for (const format of ['Native', 'JSONCompactEachRow'] as const) {
        report('insert.bySize', await insertBySize(size, count, format));
      }
    }
  }
  if (selected('views')) report('insert.views', await viewsCost(Math.max(3, batches)));
  if (selected('optimizeOnInsert')) {
    report('insert.optimizeOnInsert', await optimizeOnInsertCost(Math.max(3, batches)));
  }
  if (selected('buildRows')) report('insert.buildRows', buildCost(batches));
  if (selected('blockSize')) report('insert.blockSize', await blockSizeCost());
  if (selected('merges')) report('insert.merges', await mergeCost());
  if (selected('mergeStream')) {
    const streamDir = makeTempDir('insert-stream-parts');
    const streamFiles = writePartFiles(streamDir, STREAM_PARTS, 10);
    for (const base of [5, 10, 20])
      report('insert.mergeStream', await mergeStream(streamFiles, base));
    fs.rmSync(streamDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
