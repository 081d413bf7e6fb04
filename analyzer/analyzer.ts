import express from 'express';
import type { FaultlineConfig } from '../lib/config';
import { FaultlineError } from '../lib/errors';
import { listen } from '../lib/http-server';
import type { Logger } from '../lib/logger';
import type { Storage } from '../lib/storage/clickhouse';
import { cors, queryLimits, requireToken, type AccessConfig } from './access';
import { queryApiRouter } from './api';
import { jaegerRouter } from './jaeger/routes';
import { uiRouter } from './ui/serve';
import { zipkinRouter } from './zipkin/routes';

export type AnalyzerConfig = Pick<FaultlineConfig, 'host' | 'queryPort'> & AccessConfig;

/** The analyzer role: the query APIs and the web UI over stored spans. */
export interface Analyzer {
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * Builds the analyzer's HTTP app: our API under `/api`, the Jaeger query API under
 * `/jaeger`, Zipkin's read API under `/zipkin` and the web UI at `/`. Every API route
 * requires a query token when tokens are configured; `/healthz` and the UI's static
 * files do not, because they carry no trace data.
 */
export function createAnalyzerApp(
  storage: Storage,
  logger: Logger,
  access: AccessConfig,
  uiDistDir?: string,
): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('json spaces', 0);
  app.get('/healthz', (_request, response) => {
    response.json({ status: 'ok' });
  });
  app.use(cors(access.corsOrigins));
  const options = { limits: queryLimits(access), guard: requireToken(access.queryTokens) };
  app.use('/jaeger', jaegerRouter(storage, logger, options));
  app.use('/zipkin', zipkinRouter(storage, logger, options));
  app.use(queryApiRouter(storage, logger, options));
  app.use(uiRouter(uiDistDir));
  app.use((request: express.Request, response: express.Response) => {
    const error = new FaultlineError('FL_NOT_FOUND', `no route ${request.method} ${request.path}`);
    response.status(error.httpStatus).json({ error: { code: error.code, message: error.message } });
  });
  return app;
}

export async function startAnalyzer(options: {
  config: AnalyzerConfig;
  storage: Storage;
  logger: Logger;
}): Promise<Analyzer> {
  const { config } = options;
  const logger = options.logger.child({ role: 'analyzer' });
  const http = await listen(
    createAnalyzerApp(options.storage, logger, config),
    config.host,
    config.queryPort,
  );
  logger.info(
    {
      host: config.host,
      port: http.port,
      tokens: config.queryTokens.length,
      corsOrigins: config.corsOrigins,
    },
    'query api listening',
  );
  return {
    port: http.port,
    async stop() {
      await http.close();
      logger.info('analyzer stopped');
    },
  };
}
