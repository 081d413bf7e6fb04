import express from 'express';
import type { FaultlineConfig } from '../lib/config';
import { listen } from '../lib/http-server';
import type { Logger } from '../lib/logger';
import type { Storage } from '../lib/storage/clickhouse';
import { queryApiRouter } from './api';

export type AnalyzerConfig = Pick<FaultlineConfig, 'host' | 'queryPort'>;

/** The analyzer role: the query API over stored spans. */
export interface Analyzer {
  readonly port: number;
  stop(): Promise<void>;
}

export function createAnalyzerApp(storage: Storage, logger: Logger): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('json spaces', 0);
  app.get('/healthz', (_request, response) => {
    response.json({ status: 'ok' });
  });
  app.use(queryApiRouter(storage, logger));
  return app;
}

export async function startAnalyzer(options: {
  config: AnalyzerConfig;
  storage: Storage;
  logger: Logger;
}): Promise<Analyzer> {
  const logger = options.logger.child({ role: 'analyzer' });
  const http = await listen(
    createAnalyzerApp(options.storage, logger),
    options.config.host,
    options.config.queryPort,
  );
  logger.info({ host: options.config.host, port: http.port }, 'query api listening');
  return {
    port: http.port,
    async stop() {
      await http.close();
      logger.info('analyzer stopped');
    },
  };
}
