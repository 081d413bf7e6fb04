import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ClickHouseSettings } from '@clickhouse/client';
import type { SpanRecord } from '../model/span';
import type { Storage } from './clickhouse';
import { insertFilesDir } from './insert-files';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { spanRowsJson, toSpanRows, type SpanRows } from './span-rows';

export interface WriteOptions {
  /**
   * Insert deduplication token. A retry of the same spans with the same token is
   * stored once, because the table keeps the tokens of its last 1000 inserts.
   */
  deduplicationToken?: string;
}

// Characters that ClickHouse's file() table function reads as a glob pattern.
const GLOB_CHARACTERS = /[*?{}]/;

/**
 * ClickHouse error types (besides every CANNOT_PARSE_*) that come from the values or
 * columns of the inserted rows, as opposed to the state of the server. Other errors, such
 * as TOO_MANY_PARTS, MEMORY_LIMIT_EXCEEDED or NOT_ENOUGH_SPACE, can pass once the server
 * recovers.
 */
const ROW_ERROR_TYPES = new Set([
  'ATTEMPT_TO_READ_AFTER_EOF',
  'CANNOT_CONVERT_TYPE',
  'CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN',
  'CANNOT_READ_ARRAY_FROM_TEXT',
  'CANNOT_READ_MAP_FROM_TEXT',
  'DECIMAL_OVERFLOW',
  'INCORRECT_DATA',
  'INCORRECT_NUMBER_OF_COLUMNS',
  'NO_SUCH_COLUMN_IN_TABLE',
  'SIZES_OF_ARRAYS_DONT_MATCH',
  'TOO_LARGE_STRING_SIZE',
  'TYPE_MISMATCH',
  'UNKNOWN_ELEMENT_OF_ENUM',
  'VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE',
]);

/**
 * Checks whether ClickHouse rejected an insert for the rows it carried, by the error type
 * that the client reads from the server's message. Any other error, including one without
 * a type, may pass on a retry.
 */
export function isRowRejection(error: unknown): boolean {
  const type = (error as { type?: unknown } | undefined)?.type;
  if (typeof type !== 'string') return false;
  return type.startsWith('CANNOT_PARSE_') || ROW_ERROR_TYPES.has(type);
}

function quoted(columns: readonly string[]): string {
  return columns.map((column) => `\`${column}\``).join(', ');
}

function insertSettings(options: WriteOptions): ClickHouseSettings {
  return {
    // call_spans is partitioned by hour, and ClickHouse rejects an insert into more than
    // 100 partitions by default, so a batch from clients with wrong clocks or a replay
    // of old traces would fail whole.
    max_partitions_per_insert_block: '0',
    ...(options.deduplicationToken
      ? { insert_deduplicate: 1, insert_deduplication_token: options.deduplicationToken }
      : {}),
  };
}

/**
 * Writes spans to the `spans` table in one insert. Rows go as a Native block, which the
 * embedded engine inserted with about 37% less CPU than the same rows as
 * JSONCompactEachRow text (`npm run bench:insert`, docs/benchmarks.md).
 *
 * Contract: when the returned promise resolves, every span is stored and visible to
 * readers. Writing the same span again is harmless: the table collapses rows with the
 * same (trace id, start time, span id, kind) in merges, and readers collapse rows with
 * the same (trace id, span id, kind), which covers those that merges have not reached.
 * A rejected promise means none or only some of the spans may be stored, so the caller
 * retries the whole batch, with the same `deduplicationToken` when it gave one.
 */
export async function writeSpans(
  storage: Storage,
  spans: SpanRecord[],
  options: WriteOptions = {},
): Promise<void> {
  if (spans.length === 0) return;
  await writeSpanRows(storage, toSpanRows(spans), options);
}

/**
 * Writes insert-ready rows (see `toSpanRows`) to the `spans` table in one insert, with the
 * contract of `writeSpans`.
 *
 * The embedded engine reads the rows from a file in the data folder with
 * `INSERT ... SELECT FROM file()`. Its connection (chdb 3.4) would otherwise paste the
 * rows into the query text behind the per-query SET statements, and the engine spent
 * about twice as long a span on that insert (docs/benchmarks.md). A server gets the
 * rows as the request body.
 */
export async function writeSpanRows(
  storage: Storage,
  rows: SpanRows,
  options: WriteOptions = {},
): Promise<void> {
  if (rows.count === 0) return;
  const settings = insertSettings(options);
  if (storage.mode === 'embedded' && !GLOB_CHARACTERS.test(storage.location)) {
    await insertFromFile(storage, rows, settings);
    return;
  }
  // The embedded connection pastes a request body into the query text, where binary
  // data does not survive, so Native rows go there as JSON text.
  if (storage.mode === 'embedded' && rows.format === 'Native') rows = toJsonRows(rows);
  // insert() takes JSON formats only as objects to encode, and no Native data, so the
  // ready rows go through exec() as the request body.
  // NOTE: no test sends a Native body to a ClickHouse server; only the embedded path runs.
  const result = await storage.client.exec({
    query: `INSERT INTO ${storage.database}.spans (${quoted(rows.columns)}) FORMAT ${rows.format}`,
    values: Readable.from(rows.chunks, { objectMode: false }),
    clickhouse_settings: settings,
  });
  result.stream.resume();
  await finished(result.stream);
}

/** Converts rows to JSONCompactEachRow lines, for a connection that cannot take Native. */
function toJsonRows(rows: SpanRows): SpanRows {
  const lines = spanRowsJson(rows).map((line) => `${line}\n`);
  return { ...rows, format: 'JSONCompactEachRow', chunks: [Buffer.from(lines.join(''))] };
}

/**
 * Inserts the rows through a file in their format that is removed when the insert
 * ends, whether it succeeded or not. file() takes the column types from the insert's
 * column list, and the token of a deduplicated insert applies as to any other insert.
 */
async function insertFromFile(
  storage: Storage,
  rows: SpanRows,
  settings: ClickHouseSettings,
): Promise<void> {
  const dir = insertFilesDir(storage.location);
  await fs.mkdir(dir, { recursive: true });
  const extension = rows.format === 'Native' ? 'native' : 'jsonl';
  const file = path.join(dir, `spans-${randomUUID()}.${extension}`);
  try {
    await writeChunks(file, rows.chunks);
    await storage.client.command({
      query: `INSERT INTO ${storage.database}.spans (${quoted(rows.columns)})
        SELECT * FROM file({path:String}, {format:String})`,
      query_params: { path: file, format: rows.format },
      clickhouse_settings: settings,
    });
  } finally {
    await fs.rm(file, { force: true });
  }
}

/** Writes chunks to a new file without joining them in memory first. */
async function writeChunks(file: string, chunks: Buffer[]): Promise<void> {
  const handle = await fs.open(file, 'w');
  try {
    const expected = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    const { bytesWritten } = await handle.writev(chunks);
    if (bytesWritten !== expected) {
      throw new Error(
        `failed to write ${file}: wrote ${bytesWritten} of ${expected} bytes; check the free space of the data folder`,
      );
    }
  } finally {
    await handle.close();
  }
}
