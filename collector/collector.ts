import express from 'express';
import type { FaultlineConfig } from '../lib/config';
import { listen, type ListeningServer } from '../lib/http-server';
import type { Logger } from '../lib/logger';
import type { Storage } from '../lib/storage/clickhouse';
import { writeSpans } from '../lib/storage/span-writer';
import { SpanBatcher } from './batcher';
import { otlpHttpRouter } from './otlp-http';

export type CollectorConfig = Pick<
  FaultlineConfig,
  'host' | 'otlpHttpPort' | 'maxBodyBytes' | 'batchMaxSpans' | 'batchMaxAgeMs'
>;

/** The collector role: receives spans and writes them to storage in batches. */
export interface Collector {
  readonly httpPort: number;
  readonly batcher: SpanBatcher;
  /** Stops accepting, answers 503 to new exports, and flushes what was accepted. */
  stop(): Promise<void>;
}

export function createCollectorApp(options: {
  batcher: SpanBatcher;
  config: CollectorConfig;
  logger: Logger;
  isAccepting(): boolean;
}): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_request, response) => {
    response.json({ status: 'ok' });
  });
  app.use(
    otlpHttpRouter({
      batcher: options.batcher,
      maxBodyBytes: options.config.maxBodyBytes,
      logger: options.logger,
      isAccepting: options.isAccepting,
    }),
  );
  return app;
}

export async function startCollector(options: {
  config: CollectorConfig;
  storage: Storage;
  logger: Logger;
}): Promise<Collector> {
  const logger = options.logger.child({ role: 'collector' });
  const batcher = new SpanBatcher({
    maxSpans: options.config.batchMaxSpans,
    maxAgeMs: options.config.batchMaxAgeMs,
    write: (spans) => writeSpans(options.storage, spans),
    logger,
  });
  let accepting = true;
  const app = createCollectorApp({
    batcher,
    config: options.config,
    logger,
    isAccepting: () => accepting,
  });
  const http: ListeningServer = await listen(app, options.config.host, options.config.otlpHttpPort);
  logger.info({ host: options.config.host, port: http.port }, 'otlp/http listening');

  let stopping: Promise<void> | undefined;
  return {
    httpPort: http.port,
    batcher,
    stop() {
      stopping ??= (async () => {
        accepting = false;
        await http.close();
        await batcher.flush();
        logger.info('collector stopped');
      })();
      return stopping;
    },
  };
}
