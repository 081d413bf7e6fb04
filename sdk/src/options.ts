import type { Tracer, TracerProvider } from '@opentelemetry/api';
import type { ExpressInstrumentationConfig } from '@opentelemetry/instrumentation-express';
import type { HttpInstrumentationConfig } from '@opentelemetry/instrumentation-http';
import type { NodeSDKConfiguration } from '@opentelemetry/sdk-node';
import type { SdkLogger } from './logger';

export type Instrumentation = Exclude<NodeSDKConfiguration['instrumentations'][number], unknown[]>;

export type ResourceAttributeValue = string | number | boolean;

/**
 * Options of startTracing. Every option is optional, and an option that is set wins over the
 * matching OTEL_* environment variable. An invalid option is reported through `logger` and
 * replaced by the environment variable or the default, never thrown.
 */
export interface TracingOptions {
  /**
   * Resource attribute service.name. Falls back to OTEL_SERVICE_NAME, then to service.name in
   * OTEL_RESOURCE_ATTRIBUTES, then to `unknown_service:<argv0>`.
   */
  serviceName?: string;
  /** Resource attribute service.version, for example "1.4.2". */
  serviceVersion?: string;
  /** Resource attribute deployment.environment.name, for example "production". */
  environment?: string;
  /**
   * More resource attributes. They override OTEL_RESOURCE_ATTRIBUTES and are overridden by
   * serviceName, serviceVersion and environment.
   */
  resourceAttributes?: Record<string, ResourceAttributeValue>;
  /**
   * Base URL of the OTLP/HTTP receiver, such as http://localhost:4318. The exporter appends
   * `/v1/traces`, as it does for OTEL_EXPORTER_OTLP_ENDPOINT.
   */
  endpoint?: string;
  /**
   * Full URL that receives the traces, used as is, as OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is.
   * Wins over `endpoint`. Without either option the environment variables apply, and then
   * http://localhost:4318/v1/traces.
   */
  tracesEndpoint?: string;
  /**
   * Headers sent with each export request. The exporter adds the headers listed in
   * OTEL_EXPORTER_OTLP_HEADERS and OTEL_EXPORTER_OTLP_TRACES_HEADERS, and these options win on a
   * name that appears in both.
   */
  headers?: Record<string, string>;
  /**
   * Share of new traces to record, from 0 to 1. A span with a parent follows the parent's
   * decision. Without it, OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG apply, and the
   * default records every trace.
   */
  sampleRatio?: number;
  /** Milliseconds between batch exports. Without it, OTEL_BSP_SCHEDULE_DELAY or 5000 applies. */
  batchDelayMs?: number;
  /** Milliseconds that one export request may take before it is abandoned. Default 10000. */
  exportTimeoutMs?: number;
  /** Milliseconds that shutdown() waits for the last export before it gives up. Default 10000. */
  shutdownTimeoutMs?: number;
  /**
   * Configuration of the HTTP instrumentation. Its ignoreOutgoingRequestHook is combined with the
   * SDK's own hook, which skips the export requests.
   */
  httpInstrumentation?: HttpInstrumentationConfig;
  expressInstrumentation?: ExpressInstrumentationConfig;
  /** Instrumentations registered after the HTTP, fetch and express ones. */
  instrumentations?: Instrumentation[];
  /** Receiver of configuration warnings and start or flush errors. Default: console. */
  logger?: SdkLogger;
}

/** Running tracing, as returned by startTracing. */
export interface TracingHandle {
  /**
   * False when tracing did not start (disabled or failed), and then every method does nothing.
   * Also false once shutdown() has been called.
   */
  readonly isActive: boolean;
  readonly serviceName: string;
  /** URL that receives the export requests. */
  readonly tracesUrl: string;
  readonly tracerProvider: TracerProvider;
  getTracer(name?: string, version?: string): Tracer;
  /** Exports the spans that have ended so far. Resolves even if the export fails. */
  forceFlush(): Promise<void>;
  /**
   * Exports the pending spans, stops the instrumentations and unregisters the global tracer
   * provider, context manager and propagator, so startTracing may be called again. It runs once,
   * and later calls return the same promise. It resolves even if the last export fails or times out.
   */
  shutdown(): Promise<void>;
}
