import path from 'node:path';
import { createClient, type ClickHouseClient, type ClickHouseSettings } from '@clickhouse/client';
import { drainPending } from 'chdb';
import { createChdbConnection } from 'chdb/connection';
import { FaultlineError, errorMessage } from '../errors';
import { removeInsertFiles } from './insert-files';
import { lockDataDir } from './lock';
import { runMigrations } from './migrations';
import { checkServerVersion } from './server-version';

/**
 * Settings sent with every query. The output settings make the embedded engine and a
 * server return the same JSON, with 64-bit integers as quoted strings on both paths.
 * Queries select ids as hex under the names of their integer columns, so column names
 * must win over aliases in WHERE and ORDER BY.
 */
const CLIENT_SETTINGS: ClickHouseSettings = {
  prefer_column_name_to_alias: 1,
  output_format_json_quote_64bit_integers: 1,
  output_format_json_quote_64bit_floats: 0,
  date_time_input_format: 'best_effort',
  // The embedded engine's connection applies per-query settings as session SET
  // statements (chdb 3.4), so a token given to one insert would stay for the next ones
  // and make them look like duplicates. Sending an empty token with every query resets it.
  insert_deduplication_token: '',
  // Every table that merges rows (ReplacingMergeTree spans, the aggregating rollups) is
  // read with LIMIT 1 BY, FINAL or -Merge functions, because rows of different inserts
  // meet only in merges anyway. Merging each inserted block by the sorting key as well
  // doubled the insert time of a span into `spans` (docs/benchmarks.md).
  optimize_on_insert: 0,
};

export interface StorageOptions {
  /** Folder of the embedded engine; used when `url` is empty. */
  dataDir: string;
  /** ClickHouse server URL; empty for the embedded engine. */
  url: string;
  database: string;
  retentionDays: number;
  /** ClickHouse cluster for replicated and Distributed tables; empty or absent for none. */
  clusterName?: string;
}

/** An open ClickHouse client with the schema in place. */
export interface Storage {
  readonly client: ClickHouseClient;
  readonly database: string;
  readonly mode: 'embedded' | 'server';
  /** Where the data lives: a folder for the embedded engine, the server URL without credentials otherwise. */
  readonly location: string;
  /**
   * Epoch milliseconds of the oldest span a collector accepted and has not stored yet, or
   * undefined when none waits, so that the analyzer does not turn minutes into dependency
   * edges while their spans still wait in a log. A collector in this process sets it, and
   * an analyzer without one reads the reports of the others (`collector-backlog.ts`).
   */
  unstoredSince?: () => number | undefined | Promise<number | undefined>;
  close(): Promise<void>;
}

type ClientConnection = NonNullable<NonNullable<Parameters<typeof createClient>[0]>['connection']>;

// One chdb data folder per process at a time, so embedded opens are serialised here.
let embeddedClosing: Promise<void> = Promise.resolve();

/** Opens the embedded engine or a server connection and runs the migrations. */
export async function openStorage(options: StorageOptions): Promise<Storage> {
  const storage = options.url ? openServer(options) : await openEmbedded(options);
  if (storage.mode === 'server') {
    try {
      await checkServerVersion(options.url, storage.location);
    } catch (error) {
      await storage.close();
      throw error;
    }
  }
  try {
    await runMigrations(storage.client, options);
  } catch (error) {
    await storage.close();
    throw new FaultlineError(
      'FL_STORAGE_UNAVAILABLE',
      `could not create the schema in ${storage.location}: ${errorMessage(error)}`,
      { cause: error },
    );
  }
  return storage;
}

async function openEmbedded(options: StorageOptions): Promise<Storage> {
  await embeddedClosing;
  const dataDir = path.resolve(options.dataDir);
  const lock = lockDataDir(dataDir);
  let connection: ReturnType<typeof createChdbConnection>;
  try {
    removeInsertFiles(dataDir);
    connection = createChdbConnection({ path: path.join(dataDir, 'clickhouse') });
  } catch (error) {
    lock.release();
    throw new FaultlineError(
      'FL_STORAGE_UNAVAILABLE',
      `could not open the embedded ClickHouse in ${dataDir}: ${errorMessage(error)}`,
      { cause: error },
    );
  }
  // chdb types its connection against @clickhouse/client-common, which the client bundles
  // as its own copy of the same interface.
  const client = createClient({
    connection: connection as unknown as ClientConnection,
    clickhouse_settings: CLIENT_SETTINGS,
  });
  let closing: Promise<void> | undefined;
  return {
    client,
    database: options.database,
    mode: 'embedded',
    location: dataDir,
    close() {
      closing ??= (async () => {
        await client.close();
        await connection.close();
        await drainPending();
        lock.release();
      })();
      embeddedClosing = closing.catch(() => undefined);
      return closing;
    },
  };
}

function openServer(options: StorageOptions): Storage {
  let location: string;
  try {
    const url = new URL(options.url);
    url.username = '';
    url.password = '';
    location = url.toString();
  } catch {
    throw new FaultlineError(
      'FL_INVALID_CONFIG',
      `invalid ClickHouse URL ${JSON.stringify(options.url)}: expected for example http://user:password@localhost:8123`,
    );
  }
  const client = createClient({ url: options.url, clickhouse_settings: CLIENT_SETTINGS });
  let closing: Promise<void> | undefined;
  return {
    client,
    database: options.database,
    mode: 'server',
    location,
    close() {
      closing ??= client.close();
      return closing;
    },
  };
}
