import path from 'node:path';
import type { FaultlineConfig } from '../lib/config';
import type { Logger } from '../lib/logger';
import { toSpanRows } from '../lib/storage/span-rows';
import { WalShipper } from '../lib/wal/shipper';
import { WriteAheadLog } from '../lib/wal/wal';
import { SpanBatcher } from './batcher';
import type { SpanSink } from './ingest';
import type { CollectorMetrics } from './metrics';
import type { StorageWriter } from './storage-writer';
import { SyncSink, WalSink } from './sinks';

export type PipelineConfig = Pick<
  FaultlineConfig,
  | 'dataDir'
  | 'wal'
  | 'walDir'
  | 'walMaxBytes'
  | 'walMaxQueuedSpans'
  | 'walSegmentBytes'
  | 'batchMaxSpans'
  | 'batchMaxAgeMs'
  | 'insertRetryMaxMs'
>;

/** The path from an accepted export to storage, with or without the write-ahead log. */
export interface Pipeline {
  sink: SpanSink;
  /** Reason the collector cannot accept now (for /readyz), or undefined when it can. */
  notReadyReason(): string | undefined;
  /**
   * Resolves once every span accepted so far is stored, or rejects after `timeoutMs`.
   * For tools and tests that query right after sending; ingest never waits for it.
   */
  flush(timeoutMs?: number): Promise<void>;
  /** Refreshes the gauges before a scrape. */
  updateGauges(): void;
  /** Epoch milliseconds of the oldest accepted span not stored yet; undefined when none. */
  oldestUnstoredMs(): number | undefined;
  /** Stores what it can within `deadlineMs`; the write-ahead log keeps the rest. */
  stop(deadlineMs: number): Promise<void>;
}

export function walDirOf(config: Pick<FaultlineConfig, 'dataDir' | 'walDir'>): string {
  return config.walDir || path.join(config.dataDir, 'wal');
}

export async function startPipeline(options: {
  config: PipelineConfig;
  writer: StorageWriter;
  metrics: CollectorMetrics;
  logger: Logger;
}): Promise<Pipeline> {
  return options.config.wal ? startWalPipeline(options) : startSyncPipeline(options);
}

function startSyncPipeline(options: Parameters<typeof startPipeline>[0]): Pipeline {
  const { metrics } = options;
  const batcher = new SpanBatcher({
    maxSpans: options.config.batchMaxSpans,
    maxAgeMs: options.config.batchMaxAgeMs,
    write: async (spans) => {
      const stopTimer = metrics.insertSeconds.startTimer();
      try {
        await options.writer.write(toSpanRows(spans));
        stopTimer({ outcome: 'ok' });
      } catch (error) {
        stopTimer({ outcome: 'error' });
        throw error;
      }
    },
    logger: options.logger,
  });
  return {
    sink: new SyncSink(batcher),
    notReadyReason: () => undefined,
    flush: async () => {
      await batcher.flush();
    },
    updateGauges: () => metrics.queueDepth.set(batcher.queuedSpans),
    // Its spans are acknowledged only once stored, so none waits after the response.
    oldestUnstoredMs: () => undefined,
    stop: async () => {
      await batcher.flush();
    },
  };
}

async function startWalPipeline(options: Parameters<typeof startPipeline>[0]): Promise<Pipeline> {
  const { config, metrics, logger } = options;
  const dir = walDirOf(config);
  const { wal, replay } = await WriteAheadLog.open({
    dir,
    maxBytes: config.walMaxBytes,
    segmentBytes: config.walSegmentBytes,
    logger,
  });
  metrics.walQuarantined.inc(replay.quarantinedBytes);
  if (replay.segments > 0) logger.info({ dir, ...replay }, 'wal replay started');
  const shipper = new WalShipper({
    wal,
    write: options.writer.write,
    isStorageReachable: options.writer.reachable,
    rejectsRows: options.writer.rejectsRows,
    batchMaxSpans: config.batchMaxSpans,
    batchMaxAgeMs: config.batchMaxAgeMs,
    retryMaxMs: config.insertRetryMaxMs,
    logger,
    onInsert: (outcome, seconds) => metrics.insertSeconds.observe({ outcome }, seconds),
    onRetry: () => metrics.insertRetries.inc(),
    onQuarantine: (spans) => metrics.spansQuarantined.inc(spans),
  });
  shipper.start();
  const sink = new WalSink(wal, shipper, config.walMaxBytes, config.walMaxQueuedSpans);
  return {
    sink,
    notReadyReason: () => sink.notReadyReason(),
    flush: (timeoutMs = 30_000) => waitUntilEmpty(wal, timeoutMs),
    updateGauges: () => {
      metrics.walBytes.set(wal.bytes);
      metrics.walSegments.set(wal.segmentCount);
      metrics.queueDepth.set(wal.spans);
      const oldest = wal.oldestAppendMs;
      metrics.walOldestAgeSeconds.set(oldest ? (Date.now() - oldest) / 1000 : 0);
    },
    oldestUnstoredMs: () => wal.oldestAppendMs,
    stop: async (deadlineMs) => {
      await shipper.stop(deadlineMs);
      await wal.close();
      logger.info({ spansLeft: wal.spans, bytesLeft: wal.bytes, dir }, 'wal closed');
    },
  };
}

async function waitUntilEmpty(wal: WriteAheadLog, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (wal.spans > 0 || wal.bytes > 0) {
    if (Date.now() > deadline) {
      throw new Error(
        `flush timed out after ${timeoutMs} ms: the write-ahead log still contains ${wal.spans} spans`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
