import fs from 'node:fs';
import path from 'node:path';
import type { Storage } from '../lib/storage/clickhouse';
import type { SpanRows } from '../lib/storage/span-rows';
import { isRowRejection, writeSpanRows } from '../lib/storage/span-writer';
import type { CollectorMetrics } from './metrics';

/** File whose presence in the data folder makes inserts fail, when fault hooks are on. */
export const FAIL_INSERTS_FILE = 'fail-inserts';

/**
 * The insert function of the collector: `writeSpanRows` with the written-span counter, and
 * a reachability check. With `faultHooks` on (fault tests only), every insert throws, and the check fails, while the file
 * `fail-inserts` exists in the data folder, so a test can make storage fail and recover
 * without restarting the process.
 */
export function storageWriter(options: {
  storage: Storage;
  metrics: CollectorMetrics;
  faultHooks: boolean;
  dataDir: string;
}): StorageWriter {
  const hookFile = path.join(options.dataDir, FAIL_INSERTS_FILE);
  const failing = () => options.faultHooks && fs.existsSync(hookFile);
  return {
    async write(rows) {
      if (failing())
        throw new Error(
          `insert failed by the fault hook: ${hookFile} exists; remove it to resume inserts`,
        );
      await writeSpanRows(options.storage, rows);
      options.metrics.spansWritten.inc(rows.count);
    },
    async reachable() {
      if (failing()) return false;
      return (await options.storage.client.ping()).success;
    },
    rejectsRows: isRowRejection,
  };
}

export interface StorageWriter {
  write(rows: SpanRows): Promise<void>;
  /** Checks whether storage responds to a ping; the fault hook makes it unreachable too. */
  reachable(): Promise<boolean>;
  /** Checks whether storage rejected an insert for its rows rather than its own state. */
  rejectsRows(error: unknown): boolean;
}
