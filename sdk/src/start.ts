import { context, propagation, ProxyTracerProvider, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { ExpressInstrumentation } from '@opentelemetry/instrumentation-express';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import {
  HttpInstrumentation,
  type HttpInstrumentationConfig,
} from '@opentelemetry/instrumentation-http';
import {
  defaultResource,
  defaultServiceName,
  detectResources,
  hostDetector,
  processDetector,
  resourceFromAttributes,
  type Resource,
} from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type Sampler,
} from '@opentelemetry/sdk-trace-base';
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';
import { resolveTracingConfig, type TracingConfig } from './config';
import { warnOnIgnoringApiCopy } from './api-copy';
import { createExportRequestFilter } from './export-filter';
import { createActiveHandle, createNoopHandle } from './handle';
import { consoleLogger, describeError, guardLogger, isSdkLogger, type SdkLogger } from './logger';
import type { Instrumentation, TracingHandle, TracingOptions } from './options';
import { ReportingExporter } from './reporting-exporter';
import { plainObject } from './validate';

/** The OpenTelemetry API has one global tracer provider per process, so one handle runs at a time. */
let running: TracingHandle | undefined;

/**
 * Starts OpenTelemetry tracing for this process: the HTTP, fetch (undici) and express instrumentations, a batch
 * span processor and an OTLP/HTTP JSON exporter. Call it before the service loads `http` or
 * `express`, so that the instrumentations can patch them.
 *
 * It never throws. Invalid options are logged and replaced by defaults. When starting fails, or
 * OTEL_SDK_DISABLED is "true", it returns a handle whose methods do nothing. While a handle is
 * running, a second call logs a warning and returns that handle.
 */
export function startTracing(options: TracingOptions = {}): TracingHandle {
  const logger = chooseLogger(options);
  if (running) {
    logger.warn(
      `tracing is already running for service ${JSON.stringify(running.serviceName)}, so ` +
        'startTracing returns the running handle and ignores the new options. ' +
        'Call shutdown() on it first to start again.',
    );
    return running;
  }

  let config: TracingConfig | undefined;
  try {
    config = resolveTracingConfig(plainObject.accepts(options) ? options : {}, process.env, logger);
    if (config.disabled) {
      return createNoopHandle(config.serviceName, config.tracesUrl);
    }
    if (isTracerProviderRegistered()) {
      logger.warn(
        'another tracer provider is already registered with the OpenTelemetry API, so ' +
          'startTracing leaves it in place and returns a handle that does nothing.',
      );
      return createNoopHandle(config.serviceName, config.tracesUrl);
    }

    const handle = startSdk(config, logger, () => {
      running = undefined;
    });
    running = handle;
    warnOnIgnoringApiCopy(logger);
    return handle;
  } catch (error) {
    logger.error(
      `failed to start tracing: ${describeError(error)}. The service runs without tracing.`,
    );
    return createNoopHandle(config?.serviceName ?? defaultServiceName(), config?.tracesUrl ?? '');
  }
}

/**
 * Returns true when the global API already has a tracer provider: a registered provider is a proxy
 * whose delegate is set, while an empty registration returns the no-op provider.
 */
function isTracerProviderRegistered(): boolean {
  const provider = trace.getTracerProvider();
  if (!(provider instanceof ProxyTracerProvider)) {
    return true;
  }
  return provider.getDelegate() !== new ProxyTracerProvider().getDelegate();
}

function chooseLogger(options: unknown): SdkLogger {
  const requested = plainObject.accepts(options) ? options.logger : undefined;
  if (requested === undefined || isSdkLogger(requested)) {
    return guardLogger(requested ?? consoleLogger);
  }
  consoleLogger.warn(
    'invalid option logger: expected an object with warn and error methods. Using the console.',
  );
  return consoleLogger;
}

function startSdk(config: TracingConfig, logger: SdkLogger, onStopped: () => void): TracingHandle {
  const exporter = new OTLPTraceExporter({
    url: config.tracesUrl,
    headers: config.headers,
    timeoutMillis: config.exportTimeoutMs,
  });
  const processor = new BatchSpanProcessor(
    new ReportingExporter(exporter, config.tracesUrl, logger),
    {
      scheduledDelayMillis: config.batchDelayMs,
    },
  );
  registerEsmHook(logger);
  // Instrumentations patch modules as soon as they are constructed.
  const instrumentations = createInstrumentations(config);

  try {
    const sdk = new NodeSDK({
      resource: buildResource(config),
      autoDetectResources: false,
      spanProcessors: [processor],
      sampler: createSampler(config.sampleRatio),
      instrumentations,
      // Empty lists keep NodeSDK from starting its default OTLP metric and log exporters.
      metricReaders: [],
      logRecordProcessors: [],
    });
    sdk.start();

    return createActiveHandle({
      config,
      logger,
      flush: () => processor.forceFlush(),
      shutdownSdk: () => sdk.shutdown(),
      release: () => {
        unregisterGlobals(instrumentations, logger);
        onStopped();
      },
    });
  } catch (error) {
    unregisterGlobals(instrumentations, logger);
    throw error;
  }
}

function createInstrumentations(config: TracingConfig): Instrumentation[] {
  const httpConfig: HttpInstrumentationConfig = {
    ...config.httpInstrumentation,
    ignoreOutgoingRequestHook: combineIgnoreHooks(
      createExportRequestFilter(config.tracesUrl),
      config.httpInstrumentation.ignoreOutgoingRequestHook,
    ),
  };

  const exportUrl = new URL(config.tracesUrl);
  return [
    new HttpInstrumentation(httpConfig),
    // Node's fetch runs on undici, which the HTTP instrumentation does not see.
    new UndiciInstrumentation({
      ignoreRequestHook: (request) =>
        request.origin === exportUrl.origin && request.path.startsWith(exportUrl.pathname),
    }),
    new ExpressInstrumentation(config.expressInstrumentation),
    ...config.instrumentations,
  ];
}

type IgnoreHook = NonNullable<HttpInstrumentationConfig['ignoreOutgoingRequestHook']>;

function combineIgnoreHooks(own: IgnoreHook, user: IgnoreHook | undefined): IgnoreHook {
  if (!user) {
    return own;
  }
  return (request) => own(request) || user(request);
}

function buildResource(config: TracingConfig): Resource {
  return defaultResource()
    .merge(detectResources({ detectors: [hostDetector, processDetector] }))
    .merge(resourceFromAttributes(config.resourceAttributes));
}

function createSampler(sampleRatio: number | undefined): Sampler | undefined {
  if (sampleRatio === undefined) {
    return undefined;
  }
  return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(sampleRatio) });
}

/** Undoes what NodeSDK.start registered, so that a later startTracing can register again. */
function unregisterGlobals(instrumentations: Instrumentation[], logger: SdkLogger): void {
  for (const instrumentation of instrumentations) {
    try {
      instrumentation.disable();
    } catch (error) {
      logger.error(
        `failed to disable instrumentation ${instrumentation.instrumentationName}: ` +
          describeError(error),
      );
    }
  }
  trace.disable();
  context.disable();
  propagation.disable();
}

let esmHookRegistered = false;

/**
 * Registers OpenTelemetry's module hook, so that the instrumentations also patch packages that
 * an ES module service imports after this call (express through `import`). Without it only
 * CommonJS `require` is patched, and an ES module service gets HTTP spans named by the method
 * alone. Registered once a process.
 */
function registerEsmHook(logger: SdkLogger): void {
  if (esmHookRegistered) return;
  esmHookRegistered = true;
  try {
    register('@opentelemetry/instrumentation/hook.mjs', pathToFileURL(__filename));
  } catch (error) {
    logger.warn(
      `failed to register the ES module hook (${describeError(error)}); packages loaded with import are not instrumented, so load them with require or start Node.js with --import @opentelemetry/instrumentation/hook.mjs`,
    );
  }
}
