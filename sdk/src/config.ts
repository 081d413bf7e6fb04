import type { ExpressInstrumentationConfig } from '@opentelemetry/instrumentation-express';
import type { HttpInstrumentationConfig } from '@opentelemetry/instrumentation-http';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { readEnvString, type Environment } from './env';
import { resolveTracesUrl } from './endpoint';
import { describeValue, type SdkLogger } from './logger';
import type { Instrumentation, TracingOptions } from './options';
import { resolveResourceAttributes, type ResourceAttributes } from './resource';
import { checkOption, plainObject, positiveMilliseconds, ratio } from './validate';

export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

/** Options after validation and environment fallbacks. Optional fields keep OTel's defaults. */
export interface TracingConfig {
  /** True when OTEL_SDK_DISABLED is "true". */
  disabled: boolean;
  serviceName: string;
  resourceAttributes: ResourceAttributes;
  tracesUrl: string;
  headers: Record<string, string>;
  sampleRatio?: number;
  batchDelayMs?: number;
  exportTimeoutMs?: number;
  shutdownTimeoutMs: number;
  httpInstrumentation: HttpInstrumentationConfig;
  expressInstrumentation: ExpressInstrumentationConfig;
  instrumentations: Instrumentation[];
}

/**
 * Validates the options and fills what they leave out from the OTEL_* variables in `env`. It
 * never throws. Each invalid value is reported through `logger` and replaced.
 */
export function resolveTracingConfig(
  options: TracingOptions,
  env: Environment,
  logger: SdkLogger,
): TracingConfig {
  const resourceAttributes = resolveResourceAttributes(options, env, logger);

  return {
    disabled: readEnvString(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true',
    serviceName: String(resourceAttributes[ATTR_SERVICE_NAME]),
    resourceAttributes,
    tracesUrl: resolveTracesUrl(options, env, logger),
    headers: checkHeaders(options.headers, logger),
    sampleRatio: checkOption(
      'sampleRatio',
      options.sampleRatio,
      ratio,
      'the sampler named by OTEL_TRACES_SAMPLER',
      logger,
    ),
    batchDelayMs: checkOption(
      'batchDelayMs',
      options.batchDelayMs,
      positiveMilliseconds,
      'OTEL_BSP_SCHEDULE_DELAY or 5000',
      logger,
    ),
    exportTimeoutMs: checkOption(
      'exportTimeoutMs',
      options.exportTimeoutMs,
      positiveMilliseconds,
      'the exporter default of 10000',
      logger,
    ),
    shutdownTimeoutMs:
      checkOption(
        'shutdownTimeoutMs',
        options.shutdownTimeoutMs,
        positiveMilliseconds,
        String(DEFAULT_SHUTDOWN_TIMEOUT_MS),
        logger,
      ) ?? DEFAULT_SHUTDOWN_TIMEOUT_MS,
    httpInstrumentation: checkObjectOption(
      'httpInstrumentation',
      options.httpInstrumentation,
      logger,
    ),
    expressInstrumentation: checkObjectOption(
      'expressInstrumentation',
      options.expressInstrumentation,
      logger,
    ),
    instrumentations: checkInstrumentations(options.instrumentations, logger),
  };
}

/** Checks only that an instrumentation configuration is an object, because the instrumentation reads the fields. */
function checkObjectOption<T extends object>(
  name: string,
  value: T | undefined,
  logger: SdkLogger,
): T {
  const checked = checkOption(name, value, plainObject, 'the default configuration', logger);
  return (checked as T | undefined) ?? ({} as T);
}

/** Keeps the headers whose value is a string. Header values are never logged, because they may be secrets. */
function checkHeaders(value: unknown, logger: SdkLogger): Record<string, string> {
  const input = checkOption('headers', value, plainObject, 'no extra headers', logger);
  const headers: Record<string, string> = {};

  for (const [name, headerValue] of Object.entries(input ?? {})) {
    if (typeof headerValue === 'string') {
      headers[name] = headerValue;
      continue;
    }
    logger.warn(
      `invalid option headers: the value of header ${JSON.stringify(name)} must be a string, ` +
        `got a value of type ${typeof headerValue}. Skipping this header.`,
    );
  }
  return headers;
}

function checkInstrumentations(value: unknown, logger: SdkLogger): Instrumentation[] {
  if (value === undefined) {
    return [];
  }
  if (!Array.isArray(value)) {
    logger.warn(
      `invalid option instrumentations: expected an array of instrumentations, ` +
        `got ${describeValue(value)}. Using only the HTTP, fetch and express instrumentations.`,
    );
    return [];
  }
  return value.filter((item, index) => {
    if (isInstrumentation(item)) {
      return true;
    }
    logger.warn(
      `invalid option instrumentations: item ${index} is not an instrumentation ` +
        `(it has no enable and disable methods), got ${describeValue(item)}. Skipping it.`,
    );
    return false;
  });
}

function isInstrumentation(value: unknown): value is Instrumentation {
  if (typeof value !== 'object' || value === null) {
    return false;
  }
  const candidate = value as { enable?: unknown; disable?: unknown };
  return typeof candidate.enable === 'function' && typeof candidate.disable === 'function';
}
