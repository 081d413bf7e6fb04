import fs from 'node:fs';
import path from 'node:path';
import type { SpanRecord } from '../lib/model/span';
import type { Storage } from '../lib/storage/clickhouse';
import { writeSpans } from '../lib/storage/span-writer';
import type { CollectorMetrics } from './metrics';

/** File whose presence in the data folder makes inserts fail, when fault hooks are on. */
export const FAIL_INSERTS_FILE = 'fail-inserts';

/**
 * The insert function of the collector: `writeSpans` with the written-span counter.
 * With `faultHooks` on (fault tests only), every insert throws while the file
 * `fail-inserts` exists in the data folder, so a test can make storage fail and recover
 * without restarting the process.
 */
export function storageWriter(options: {
  storage: Storage;
  metrics: CollectorMetrics;
  faultHooks: boolean;
  dataDir: string;
}): (spans: SpanRecord[]) => Promise<void> {
  const hookFile = path.join(options.dataDir, FAIL_INSERTS_FILE);
  return async (spans) => {
    if (options.faultHooks && fs.existsSync(hookFile)) {
      throw new Error(`insert refused by the fault hook: ${hookFile} exists`);
    }
    await writeSpans(options.storage, spans);
    options.metrics.spansWritten.inc(spans.length);
  };
}
