import express from 'express';
import type { FaultlineConfig } from '../lib/config';
import { FaultlineError } from '../lib/errors';
import { listen } from '../lib/http-server';
import type { Logger } from '../lib/logger';
import type { Storage } from '../lib/storage/clickhouse';
import { cors, queryLimits, requireToken, type AccessConfig } from './access';
import { queryApiRouter, type AnalysisApiOptions } from './api';
import { incidentsRouter } from './incidents/api';
import { AnalysisScheduler } from './incidents/scheduler';
import { IncidentStore } from './incidents/store';
import { DEFAULT_NOTIFIER_OPTIONS, Notifier, targetsFromConfig } from './incidents/webhooks';
import { jaegerRouter } from './jaeger/routes';
import { uiRouter } from './ui/serve';
import { zipkinRouter } from './zipkin/routes';
import { DEFAULT_USER_ATTRIBUTE } from './report';

export type AnalyzerConfig = Pick<FaultlineConfig, 'host' | 'queryPort'> &
  AccessConfig &
  Partial<
    Pick<
      FaultlineConfig,
      | 'userAttribute'
      | 'maxTraceSpans'
      | 'baselineMs'
      | 'analysisIntervalMs'
      | 'analysisWindowMs'
      | 'incidentOpenAfterMs'
      | 'incidentResolveAfterMs'
      | 'incidentMinSamples'
      | 'webhookUrls'
      | 'slackWebhookUrls'
    >
  >;

/** The analyzer role: the query APIs and the web UI over stored spans, and the scheduled analysis. */
export interface Analyzer {
  readonly port: number;
  readonly scheduler: AnalysisScheduler;
  readonly notifier: Notifier;
  stop(): Promise<void>;
}

/** Paths of the collector's port that users send to the query port by mistake. */
const COLLECTOR_PATHS = ['/v1/traces', '/api/v2/spans', '/metrics', '/readyz'];

function sendNotFound(response: express.Response, message: string): void {
  const error = new FaultlineError('FL_NOT_FOUND', message);
  response.status(error.httpStatus).json({ error: { code: error.code, message: error.message } });
}

/** Milliseconds between checks for webhook deliveries due for a retry. */
const RETRY_CHECK_MS = 1000;

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
  analysis: Partial<AnalysisApiOptions> = {},
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
  app.use(
    '/zipkin',
    zipkinRouter(storage, logger, {
      ...options,
      autocompleteKeys: access.zipkinAutocompleteKeys ?? [],
    }),
  );
  app.use(queryApiRouter(storage, logger, { ...options, ...analysis }));
  // Ahead of the UI, whose page would otherwise return these with 200 and HTML.
  app.all(COLLECTOR_PATHS, (request: express.Request, response: express.Response) => {
    sendNotFound(
      response,
      `${request.method} ${request.path} is served by the collector on its own port (FAULTLINE_OTLP_HTTP_PORT, 4318 by default), not by the query port`,
    );
  });
  app.use(uiRouter(uiDistDir));
  app.use((request: express.Request, response: express.Response) => {
    sendNotFound(response, `no route ${request.method} ${request.path}`);
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
  const store = new IncidentStore(options.storage);
  const notifier = new Notifier(
    store,
    {
      ...DEFAULT_NOTIFIER_OPTIONS,
      targets: targetsFromConfig({
        webhookUrls: config.webhookUrls ?? [],
        slackWebhookUrls: config.slackWebhookUrls ?? [],
      }),
    },
    logger,
  );
  const scheduler = new AnalysisScheduler(
    options.storage,
    store,
    notifier,
    {
      intervalMs: config.analysisIntervalMs ?? 0,
      windowMs: config.analysisWindowMs ?? 900_000,
      baselineMs: config.baselineMs ?? 3_600_000,
      userAttribute: config.userAttribute ?? DEFAULT_USER_ATTRIBUTE,
      policy: {
        openAfterMs: config.incidentOpenAfterMs ?? 300_000,
        resolveAfterMs: config.incidentResolveAfterMs ?? 900_000,
        minSamples: config.incidentMinSamples ?? 50,
      },
    },
    logger,
  );
  const http = await listen(
    createAnalyzerApp(options.storage, logger, config, undefined, {
      userAttribute: config.userAttribute,
      maxTraceSpans: config.maxTraceSpans,
      baselineMs: config.baselineMs,
      incidents: incidentsRouter(store, scheduler),
    }),
    config.host,
    config.queryPort,
    { env: 'FAULTLINE_QUERY_PORT', flag: '--query-port' },
  );
  logger.info(
    {
      host: config.host,
      port: http.port,
      ui: `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${http.port}/`,
      tokens: config.queryTokens.length,
      corsOrigins: config.corsOrigins,
    },
    'query api and web ui listening',
  );
  scheduler.start();
  notifier.start(RETRY_CHECK_MS);
  let stopping: Promise<void> | undefined;
  return {
    port: http.port,
    scheduler,
    notifier,
    stop() {
      stopping ??= (async () => {
        await scheduler.stop();
        await notifier.stop();
        await http.close();
        logger.info('analyzer stopped');
      })();
      return stopping;
    },
  };
}
