import express from 'express';
import type { FaultlineConfig } from '../lib/config';
import { listen, type ListeningServer } from '../lib/http-server';
import type { Logger } from '../lib/logger';
import type { Storage } from '../lib/storage/clickhouse';
import { Ingest } from './ingest';
import { CollectorMetrics } from './metrics';
import { startOtlpGrpc, type OtlpGrpcServer } from './otlp-grpc';
import { otlpHttpRouter, type OtlpHttpOptions } from './otlp-http';
import { startPipeline, type Pipeline, type PipelineConfig } from './pipeline';
import { BacklogReporter } from './backlog-reporter';
import { storageWriter } from './storage-writer';
import { zipkinHttpRouter } from './zipkin-http';

export type CollectorConfig = PipelineConfig &
  Pick<
    FaultlineConfig,
    | 'host'
    | 'otlpHttpPort'
    | 'otlpGrpcPort'
    | 'maxBodyBytes'
    | 'maxDecompressedBytes'
    | 'maxSpansPerRequest'
    | 'retentionDays'
    | 'maxAttributesPerSpan'
    | 'maxAttributeValueLength'
    | 'maxInflightBytes'
    | 'ingestTokens'
    | 'shutdownTimeoutMs'
    | 'faultHooks'
  >;

/** The collector role: receives spans over OTLP/HTTP, OTLP/gRPC and Zipkin and stores them. */
export interface Collector {
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly metrics: CollectorMetrics;
  readonly pipeline: Pipeline;
  /** Resolves once every span acknowledged so far is stored; see `Pipeline.flush`. */
  flush(timeoutMs?: number): Promise<void>;
  /**
   * Stops accepting (new exports get 503 / UNAVAILABLE), lets running exports finish,
   * then stores what it can within `shutdownTimeoutMs`; the write-ahead log keeps the rest.
   * Calling it again returns the same promise.
   */
  stop(): Promise<void>;
}

/** Express app of the collector's HTTP port: ingest routes, health, readiness and metrics. */
export function createCollectorApp(options: {
  http: OtlpHttpOptions;
  pipeline: Pipeline;
  metrics: CollectorMetrics;
}): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_request, response) => {
    response.json({ status: 'ok' });
  });
  app.get('/readyz', (_request, response) => {
    const reason = options.http.isAccepting()
      ? options.pipeline.notReadyReason()
      : 'collector is shutting down';
    if (reason) response.status(503).json({ status: 'not ready', reason });
    else response.json({ status: 'ready' });
  });
  app.get('/metrics', async (_request, response) => {
    options.pipeline.updateGauges();
    response.type(options.metrics.registry.contentType);
    response.send(await options.metrics.registry.metrics());
  });
  app.use(otlpHttpRouter(options.http));
  app.use(zipkinHttpRouter(options.http));
  return app;
}

export async function startCollector(options: {
  config: CollectorConfig;
  storage: Storage;
  logger: Logger;
  /** Whether to report the oldest unstored span to storage, for an analyzer in another process. */
  reportBacklog?: boolean;
}): Promise<Collector> {
  const { config } = options;
  const logger = options.logger.child({ role: 'collector' });
  const metrics = new CollectorMetrics();
  const writer = storageWriter({ storage: options.storage, metrics, ...config });
  const pipeline = await startPipeline({ config, writer, metrics, logger });
  options.storage.unstoredSince = () => pipeline.oldestUnstoredMs();
  const reporter = options.reportBacklog
    ? new BacklogReporter(options.storage, () => pipeline.oldestUnstoredMs(), logger)
    : undefined;
  const ingest = new Ingest({
    sink: pipeline.sink,
    limits: config,
    tokens: config.ingestTokens,
    metrics,
    logger,
  });
  let accepting = true;
  const http: OtlpHttpOptions = {
    ingest,
    limits: config,
    logger,
    isAccepting: () => accepting,
  };
  const servers = await listenAll(config, http, pipeline, metrics, logger);

  let stopping: Promise<void> | undefined;
  return {
    httpPort: servers.http.port,
    grpcPort: servers.grpc.port,
    metrics,
    pipeline,
    flush: (timeoutMs) => pipeline.flush(timeoutMs),
    stop() {
      stopping ??= (async () => {
        accepting = false;
        const started = Date.now();
        await Promise.all([
          servers.http.close(config.shutdownTimeoutMs),
          servers.grpc.close(config.shutdownTimeoutMs),
        ]);
        await pipeline.stop(Math.max(0, config.shutdownTimeoutMs - (Date.now() - started)));
        await reporter?.stop();
        options.storage.unstoredSince = undefined;
        logger.info('collector stopped');
      })();
      return stopping;
    },
  };
}

async function listenAll(
  config: CollectorConfig,
  http: OtlpHttpOptions,
  pipeline: Pipeline,
  metrics: CollectorMetrics,
  logger: Logger,
): Promise<{ http: ListeningServer; grpc: OtlpGrpcServer }> {
  const app = createCollectorApp({ http, pipeline, metrics });
  let httpServer: ListeningServer | undefined;
  try {
    httpServer = await listen(app, config.host, config.otlpHttpPort, {
      env: 'FAULTLINE_OTLP_HTTP_PORT',
      flag: '--otlp-http-port',
    });
    const grpc = await startOtlpGrpc({
      ingest: http.ingest,
      host: config.host,
      port: config.otlpGrpcPort,
      maxMessageBytes: config.maxDecompressedBytes,
      logger,
      isAccepting: http.isAccepting,
    });
    logger.info(
      { host: config.host, httpPort: httpServer.port, grpcPort: grpc.port, wal: config.wal },
      'collector listening',
    );
    return { http: httpServer, grpc };
  } catch (error) {
    await httpServer?.close(0);
    await pipeline.stop(0);
    throw error;
  }
}
