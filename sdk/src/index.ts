export { startTracing } from './start';
export { resolveTracingConfig, DEFAULT_SHUTDOWN_TIMEOUT_MS } from './config';
export type { TracingConfig } from './config';
export { DEFAULT_ENDPOINT } from './endpoint';
export { createExportRequestFilter } from './export-filter';
export { parseKeyValueList } from './env';
export type { Environment } from './env';
export { consoleLogger } from './logger';
export type { SdkLogger } from './logger';
export { ATTR_DEPLOYMENT_ENVIRONMENT_NAME } from './resource';
export type {
  Instrumentation,
  ResourceAttributeValue,
  TracingHandle,
  TracingOptions,
} from './options';
// The OpenTelemetry API that startTracing registers with. A service that records spans,
// exceptions and statuses through these reaches the running SDK whatever other copy of
// @opentelemetry/api it installs.
export { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
export type { Attributes, Context, Span, Tracer } from '@opentelemetry/api';
