import { readEnvString, type Environment } from './env';
import { describeValue, type SdkLogger } from './logger';

export const DEFAULT_ENDPOINT = 'http://localhost:4318';
const TRACES_PATH = 'v1/traces';

interface EndpointOptions {
  endpoint?: unknown;
  tracesEndpoint?: unknown;
}

/**
 * Resolves the URL that receives export requests, in this order: option tracesEndpoint (as is),
 * option endpoint (plus /v1/traces), OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (as is),
 * OTEL_EXPORTER_OTLP_ENDPOINT (plus /v1/traces), then http://localhost:4318/v1/traces. The
 * appending rule is the one of the OTLP exporter specification. An invalid value is reported and
 * the next source in the order is used.
 */
export function resolveTracesUrl(
  options: EndpointOptions,
  env: Environment,
  logger: SdkLogger,
): string {
  const tracesUrl = parseOptionUrl(options.tracesEndpoint);
  if (tracesUrl) {
    return tracesUrl.href;
  }

  const envUrl = tracesUrlFromEnv(env, logger) ?? appendTracesPath(new URL(DEFAULT_ENDPOINT));
  const endpointUrl = parseOptionUrl(options.endpoint);
  const resolved = endpointUrl ? endpointTracesUrl(endpointUrl, logger) : envUrl;

  warnIfInvalid('endpoint', options.endpoint, endpointUrl, envUrl, logger);
  warnIfInvalid('tracesEndpoint', options.tracesEndpoint, tracesUrl, resolved, logger);
  return resolved;
}

/**
 * Appends /v1/traces to the option endpoint, unless it already ends with that path: then it
 * is used as given, with a warning, instead of sending to /v1/traces/v1/traces.
 */
function endpointTracesUrl(endpoint: URL, logger: SdkLogger): string {
  if (!endpoint.pathname.replace(/\/+$/, '').endsWith(`/${TRACES_PATH}`)) {
    return appendTracesPath(endpoint);
  }
  logger.warn(
    `option endpoint ${redactUrl(endpoint.href)} already ends with /${TRACES_PATH}, which the ` +
      `SDK adds itself: pass the base URL such as ${DEFAULT_ENDPOINT}, or set tracesEndpoint ` +
      `to the full URL. Using it as given.`,
  );
  return endpoint.href;
}

function tracesUrlFromEnv(env: Environment, logger: SdkLogger): string | undefined {
  const tracesUrl = urlFromEnv(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', logger);
  if (tracesUrl) {
    return tracesUrl.href;
  }

  const baseUrl = urlFromEnv(env, 'OTEL_EXPORTER_OTLP_ENDPOINT', logger);
  return baseUrl && appendTracesPath(baseUrl);
}

function urlFromEnv(env: Environment, variable: string, logger: SdkLogger): URL | undefined {
  const text = readEnvString(env, variable);
  if (text === undefined) {
    return undefined;
  }

  const url = parseHttpUrl(text);
  if (!url) {
    logger.warn(
      `invalid environment variable ${variable}: expected an http or https URL, ` +
        `got ${JSON.stringify(text)}. Ignoring it.`,
    );
  }
  return url;
}

function parseOptionUrl(value: unknown): URL | undefined {
  return typeof value === 'string' ? parseHttpUrl(value) : undefined;
}

function warnIfInvalid(
  name: string,
  value: unknown,
  parsed: URL | undefined,
  fallback: string,
  logger: SdkLogger,
): void {
  if (value === undefined || parsed) {
    return;
  }
  logger.warn(
    `invalid option ${name}: expected an http or https URL such as ${DEFAULT_ENDPOINT}, ` +
      `got ${describeValue(value)}. Using ${redactUrl(fallback)} instead.`,
  );
}

export function parseHttpUrl(text: string): URL | undefined {
  try {
    const url = new URL(text.trim());
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined;
  } catch {
    return undefined;
  }
}

function appendTracesPath(base: URL): string {
  const url = new URL(base.href);
  url.pathname = url.pathname.endsWith('/')
    ? url.pathname + TRACES_PATH
    : `${url.pathname}/${TRACES_PATH}`;
  return url.href;
}

/** Removes the password from a URL before it is logged. */
export function redactUrl(text: string): string {
  const url = parseHttpUrl(text);
  if (!url || url.password === '') {
    return text;
  }
  url.password = '***';
  return url.href;
}
