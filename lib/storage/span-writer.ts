import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ClickHouseSettings } from '@clickhouse/client';
import type { SpanRecord } from '../model/span';
import type { Storage } from './clickhouse';
import { insertFilesDir } from './insert-files';
import { SPAN_COLUMNS, toSpanRow } from './span-rows';

export interface WriteOptions {
  /**
   * Insert deduplication token. A retry of the same spans with the same token is
   * stored once, because the table keeps the tokens of its last 1000 inserts.
   */
  deduplicationToken?: string;
}

// Characters that ClickHouse's file() table function reads as a glob pattern.
const GLOB_CHARACTERS = /[*?{}]/;

const QUOTED_COLUMNS = SPAN_COLUMNS.map((column) => `\`${column}\``).join(', ');

function toInsertValues(span: SpanRecord): unknown[] {
  const row = toSpanRow(span);
  return SPAN_COLUMNS.map((column) => row[column]);
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
 * Writes spans to the `spans` table in one insert. Rows go as JSONCompactEachRow
 * arrays, which the embedded engine parsed about 30% faster than JSONEachRow objects
 * in bench/storage.ts-sized batches of 10k spans.
 *
 * The embedded engine reads the rows from a file in the data folder with
 * `INSERT ... SELECT FROM file()`. Its connection (chdb 3.4) would otherwise paste the
 * rows into the query text behind the per-query SET statements, and the engine spent
 * about twice as long a span on that insert (docs/benchmarks.md). A server gets the
 * rows as the request body.
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
  const settings = insertSettings(options);
  if (storage.mode === 'embedded' && !GLOB_CHARACTERS.test(storage.location)) {
    await insertFromFile(storage, spans, settings);
    return;
  }
  await storage.client.insert({
    table: `${storage.database}.spans`,
    values: spans.map(toInsertValues),
    columns: SPAN_COLUMNS,
    format: 'JSONCompactEachRow',
    clickhouse_settings: settings,
  });
}

/**
 * Inserts the spans through a JSONCompactEachRow file that is removed when the insert
 * ends, whether it succeeded or not. file() takes the column types from the insert's
 * column list, and the token of a deduplicated insert applies as to any other insert.
 */
async function insertFromFile(
  storage: Storage,
  spans: SpanRecord[],
  settings: ClickHouseSettings,
): Promise<void> {
  const dir = insertFilesDir(storage.location);
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, `spans-${randomUUID()}.jsonl`);
  try {
    const lines = spans.map((span) => JSON.stringify(toInsertValues(span)));
    await fs.writeFile(file, `${lines.join('\n')}\n`);
    await storage.client.command({
      query: `INSERT INTO ${storage.database}.spans (${QUOTED_COLUMNS})
        SELECT * FROM file({path:String}, 'JSONCompactEachRow')`,
      query_params: { path: file },
      clickhouse_settings: settings,
    });
  } finally {
    await fs.rm(file, { force: true });
  }
}
