import { z } from 'zod';
import { FaultlineError } from './errors';

/**
 * One setting: its environment variable, its command-line flag and its default.
 * The README's configuration table lists the same settings.
 */
interface Setting<T> {
  env: string;
  flag: string;
  description: string;
  defaultValue: T;
  schema: z.ZodType<T, z.ZodTypeDef, unknown>;
  /** True when the value must never be printed, such as an access token. */
  secret?: boolean;
}

const port = z.coerce
  .number({ invalid_type_error: 'expected a port number from 0 to 65535' })
  .int('expected a whole port number')
  .min(0, 'expected a port number from 0 to 65535')
  .max(65535, 'expected a port number from 0 to 65535');
const positiveInt = z.coerce
  .number({ invalid_type_error: 'expected a whole number above 0' })
  .int('expected a whole number above 0')
  .positive('expected a whole number above 0');
const identifier = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected letters, digits and underscores');
/** Parses a comma-separated list given as text, or takes an array. Blank entries are dropped. */
function commaList<T extends z.ZodTypeAny>(item: T) {
  return z.preprocess(
    (value) =>
      typeof value === 'string'
        ? value
            .split(',')
            .map((part) => part.trim())
            .filter(Boolean)
        : value,
    z.array(item),
  );
}
const queryToken = z
  .string()
  .min(16, 'expected tokens of at least 16 characters')
  .regex(/^[\x21-\x7e]+$/, 'expected printable ASCII without spaces');
const corsOrigin = z
  .string()
  .regex(
    /^(\*|https?:\/\/[^/\s]+)$/,
    'expected * or origins such as https://grafana.example.com (scheme, host and port, no path)',
  );
const nonNegativeInt = z.coerce
  .number({ invalid_type_error: 'expected a whole number, 0 or more' })
  .int('expected a whole number, 0 or more')
  .min(0, 'expected a whole number, 0 or more');
/** True for an absolute http or https URL. */
function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}
const httpUrl = z.string().refine(isHttpUrl, 'expected an http or https URL');
const attributeKey = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]*$/, 'expected an attribute key such as enduser.id, or empty');
const urlList = z
  .string()
  .transform((text) =>
    text
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.string().refine(isHttpUrl, 'expected http or https URLs separated by commas')))
  .or(z.array(httpUrl));
/** A switch given as true/false, on/off or 1/0. */
const onOff = z
  .union([z.boolean(), z.enum(['true', 'false', 'on', 'off', '1', '0'])], {
    errorMap: () => ({ message: 'expected on or off (or true/false, 1/0)' }),
  })
  .transform((value) => value === true || value === 'true' || value === 'on' || value === '1');
/** A comma-separated list; blanks around items are ignored and empty items dropped. */
const tokenList = z
  .union([z.array(z.string()), z.string()])
  .transform((value) =>
    (Array.isArray(value) ? value : value.split(','))
      .map((item) => item.trim())
      .filter((item) => item !== ''),
  );
const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
  errorMap: () => ({ message: 'expected fatal, error, warn, info, debug, trace or silent' }),
});

function setting<T>(
  env: string,
  flag: string,
  defaultValue: T,
  schema: z.ZodType<T, z.ZodTypeDef, unknown>,
  description: string,
): Setting<T> {
  return { env, flag, defaultValue, schema, description };
}

export const SETTINGS = {
  dataDir: setting(
    'FAULTLINE_DATA_DIR',
    '--data-dir',
    './data',
    z.string().min(1),
    'Folder of the embedded ClickHouse data and the lock file',
  ),
  clickhouseUrl: setting(
    'FAULTLINE_CLICKHOUSE_URL',
    '--clickhouse-url',
    '',
    z
      .string()
      .refine(
        (text) => text === '' || isHttpUrl(text),
        'expected an http or https URL such as http://user:password@host:8123, or empty for the embedded engine',
      ),
    'ClickHouse server URL such as http://user:password@host:8123; empty uses the embedded engine',
  ),
  database: setting(
    'FAULTLINE_DATABASE',
    '--database',
    'faultline',
    identifier,
    'ClickHouse database that holds the tables',
  ),
  retentionDays: setting(
    'FAULTLINE_RETENTION_DAYS',
    '--retention-days',
    7,
    positiveInt,
    'Days a span is kept before its part is dropped',
  ),
  clusterName: setting(
    'FAULTLINE_CLICKHOUSE_CLUSTER',
    '--clickhouse-cluster',
    '',
    identifier.or(z.literal('')),
    'ClickHouse cluster from the server remote_servers; set, the schema is created ON CLUSTER as replicated tables under Distributed ones; needs --clickhouse-url',
  ),
  host: setting(
    'FAULTLINE_HOST',
    '--host',
    '127.0.0.1',
    z.string().min(1),
    'Address the collector and the analyzer listen on; 0.0.0.0 for every interface',
  ),
  otlpHttpPort: setting(
    'FAULTLINE_OTLP_HTTP_PORT',
    '--otlp-http-port',
    4318,
    port,
    'Port of OTLP/HTTP ingest (POST /v1/traces); 0 picks a free port',
  ),
  queryPort: setting(
    'FAULTLINE_QUERY_PORT',
    '--query-port',
    16686,
    port,
    'Port of the query API; 0 picks a free port',
  ),
  maxBodyBytes: setting(
    'FAULTLINE_MAX_BODY_BYTES',
    '--max-body-bytes',
    16 * 1024 * 1024,
    positiveInt,
    'Largest accepted ingest request body as sent (compressed or not), in bytes',
  ),
  maxDecompressedBytes: setting(
    'FAULTLINE_MAX_DECOMPRESSED_BYTES',
    '--max-decompressed-bytes',
    64 * 1024 * 1024,
    positiveInt,
    'Largest ingest request body after decompression, in bytes; inflating stops at this size',
  ),
  maxSpansPerRequest: setting(
    'FAULTLINE_MAX_SPANS_PER_REQUEST',
    '--max-spans-per-request',
    50000,
    positiveInt,
    'Spans one export request may carry; a larger request is refused with 413',
  ),
  maxAttributesPerSpan: setting(
    'FAULTLINE_MAX_ATTRIBUTES_PER_SPAN',
    '--max-attributes-per-span',
    512,
    positiveInt,
    'Attributes kept per span, event or link; the rest are dropped and counted',
  ),
  maxAttributeValueLength: setting(
    'FAULTLINE_MAX_ATTRIBUTE_VALUE_LENGTH',
    '--max-attribute-value-length',
    32768,
    positiveInt,
    'Characters kept of a string attribute value; longer values are truncated and marked',
  ),
  ingestTokens: setting(
    'FAULTLINE_INGEST_TOKENS',
    '--ingest-tokens',
    [] as string[],
    tokenList,
    'Comma-separated bearer tokens accepted on every ingest endpoint; empty accepts any sender',
  ),
  otlpGrpcPort: setting(
    'FAULTLINE_OTLP_GRPC_PORT',
    '--otlp-grpc-port',
    4317,
    port,
    'Port of OTLP/gRPC ingest; 0 picks a free port',
  ),
  maxInflightBytes: setting(
    'FAULTLINE_MAX_INFLIGHT_BYTES',
    '--max-inflight-bytes',
    256 * 1024 * 1024,
    positiveInt,
    'Request bytes the collector holds in memory at once; past it new exports get 429',
  ),
  wal: setting(
    'FAULTLINE_WAL',
    '--wal',
    true,
    onOff,
    'Acknowledge spans once they are in the write-ahead log (on) or once ClickHouse stored them (off)',
  ),
  walDir: setting(
    'FAULTLINE_WAL_DIR',
    '--wal-dir',
    '',
    z.string(),
    'Folder of the write-ahead log; empty uses the wal folder inside the data folder',
  ),
  walMaxBytes: setting(
    'FAULTLINE_WAL_MAX_BYTES',
    '--wal-max-bytes',
    1024 * 1024 * 1024,
    positiveInt,
    'Disk budget of the write-ahead log in bytes; past it exports get 429 or 503 with Retry-After',
  ),
  walMaxQueuedSpans: setting(
    'FAULTLINE_WAL_MAX_QUEUED_SPANS',
    '--wal-max-queued-spans',
    400000,
    positiveInt,
    'Spans in the write-ahead log past which exports get 429 while storage works; while inserts fail the log takes spans up to its disk budget',
  ),
  walSegmentBytes: setting(
    'FAULTLINE_WAL_SEGMENT_BYTES',
    '--wal-segment-bytes',
    64 * 1024 * 1024,
    positiveInt,
    'Size in bytes at which a write-ahead log segment is closed and a new one started',
  ),
  insertRetryMaxMs: setting(
    'FAULTLINE_INSERT_RETRY_MAX_MS',
    '--insert-retry-max-ms',
    30000,
    positiveInt,
    'Longest wait in milliseconds between retries of a failed insert (exponential backoff with jitter)',
  ),
  shutdownTimeoutMs: setting(
    'FAULTLINE_SHUTDOWN_TIMEOUT_MS',
    '--shutdown-timeout-ms',
    10000,
    nonNegativeInt,
    'Milliseconds a stop spends writing the write-ahead log to ClickHouse; the rest waits for the next start',
  ),
  faultHooks: setting(
    'FAULTLINE_FAULT_HOOKS',
    '--fault-hooks',
    false,
    onOff,
    'Testing only: inserts fail while the file fail-inserts exists in the data folder',
  ),
  batchMaxSpans: setting(
    'FAULTLINE_BATCH_MAX_SPANS',
    '--batch-max-spans',
    150000,
    positiveInt,
    'Spans that make the batcher insert at once',
  ),
  batchMaxAgeMs: setting(
    'FAULTLINE_BATCH_MAX_AGE_MS',
    '--batch-max-age-ms',
    1000,
    positiveInt,
    'Milliseconds the oldest buffered span waits before the batch is inserted',
  ),
  queryTokens: {
    ...setting(
      'FAULTLINE_QUERY_TOKENS',
      '--query-tokens',
      [] as string[],
      commaList(queryToken),
      'Comma-separated bearer tokens that the query API and the web UI accept; empty leaves them open',
    ),
    secret: true,
  },
  corsOrigins: setting(
    'FAULTLINE_CORS_ORIGINS',
    '--cors-origins',
    [] as string[],
    commaList(corsOrigin),
    'Comma-separated origins allowed to call the query API from a browser, or *; empty sends no CORS headers',
  ),
  queryMaxRangeHours: setting(
    'FAULTLINE_QUERY_MAX_RANGE_HOURS',
    '--query-max-range-hours',
    168,
    positiveInt,
    'Longest time range, in hours, that one trace search, dependency or report query may cover',
  ),
  queryMaxResults: setting(
    'FAULTLINE_QUERY_MAX_RESULTS',
    '--query-max-results',
    1000,
    positiveInt,
    'Most traces that one search may return (the largest accepted limit)',
  ),
  zipkinAutocompleteKeys: setting(
    'FAULTLINE_ZIPKIN_AUTOCOMPLETE_KEYS',
    '--zipkin-autocomplete-keys',
    ['http.route', 'http.request.method', 'http.response.status_code', 'db.system.name'],
    commaList(z.string().min(1)),
    "Comma-separated span or resource attribute keys whose values Zipkin's read API offers for tag search (autocompleteKeys and autocompleteValues)",
  ),
  maxTraceSpans: setting(
    'FAULTLINE_MAX_TRACE_SPANS',
    '--max-trace-spans',
    10000,
    positiveInt,
    'Spans above which GET /api/traces/{traceId} returns a summary instead of the whole tree',
  ),
  userAttribute: setting(
    'FAULTLINE_USER_ATTRIBUTE',
    '--user-attribute',
    'enduser.id',
    attributeKey,
    'Span attribute that names the user or tenant, counted as distinct users hurt; empty turns it off',
  ),
  baselineMs: setting(
    'FAULTLINE_BASELINE_MS',
    '--baseline-ms',
    3_600_000,
    positiveInt,
    'Milliseconds before the analysis window that serve as its baseline',
  ),
  analysisIntervalMs: setting(
    'FAULTLINE_ANALYSIS_INTERVAL_MS',
    '--analysis-interval-ms',
    300_000,
    nonNegativeInt,
    'Milliseconds between scheduled analyses in the analyzer; 0 turns the schedule off',
  ),
  analysisWindowMs: setting(
    'FAULTLINE_ANALYSIS_WINDOW_MS',
    '--analysis-window-ms',
    900_000,
    positiveInt,
    'Milliseconds of the latest spans that each scheduled analysis covers',
  ),
  incidentOpenAfterMs: setting(
    'FAULTLINE_INCIDENT_OPEN_AFTER_MS',
    '--incident-open-after-ms',
    300_000,
    nonNegativeInt,
    'Milliseconds a finding must keep appearing before its incident opens',
  ),
  incidentResolveAfterMs: setting(
    'FAULTLINE_INCIDENT_RESOLVE_AFTER_MS',
    '--incident-resolve-after-ms',
    900_000,
    nonNegativeInt,
    'Milliseconds without the finding after which its incident resolves',
  ),
  incidentMinSamples: setting(
    'FAULTLINE_INCIDENT_MIN_SAMPLES',
    '--incident-min-samples',
    50,
    positiveInt,
    'Calls or spans a finding must cover before it counts toward opening an incident',
  ),
  webhookUrls: setting(
    'FAULTLINE_WEBHOOK_URLS',
    '--webhook-urls',
    [] as string[],
    urlList,
    'Comma-separated URLs that get incident notifications as generic JSON',
  ),
  slackWebhookUrls: setting(
    'FAULTLINE_SLACK_WEBHOOK_URLS',
    '--slack-webhook-urls',
    [] as string[],
    urlList,
    'Comma-separated Slack incoming-webhook URLs that get incident notifications',
  ),
  logLevel: setting(
    'FAULTLINE_LOG_LEVEL',
    '--log-level',
    'info' as z.infer<typeof logLevel>,
    logLevel,
    'pino log level: fatal, error, warn, info, debug, trace or silent',
  ),
};

export type ConfigKey = keyof typeof SETTINGS;
export type FaultlineConfig = { [K in ConfigKey]: (typeof SETTINGS)[K]['defaultValue'] };

/**
 * Builds the configuration from command-line values, then environment variables, then
 * defaults, in that order of precedence. Every invalid value is reported in one
 * error that names the setting, the value and what is expected.
 */
export function loadConfig(
  overrides: Partial<Record<ConfigKey, unknown>> = {},
  env: NodeJS.ProcessEnv = process.env,
): FaultlineConfig {
  const config: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, spec] of Object.entries(SETTINGS) as [ConfigKey, Setting<unknown>][]) {
    const override = overrides[key];
    const fromEnv = env[spec.env];
    const raw =
      override !== undefined
        ? override
        : fromEnv !== undefined && fromEnv !== ''
          ? fromEnv
          : spec.defaultValue;
    const parsed = spec.schema.safeParse(raw);
    if (parsed.success) {
      config[key] = parsed.data;
    } else {
      const source = override !== undefined ? spec.flag : spec.env;
      const reason = parsed.error.issues.map((issue) => issue.message).join('; ');
      const shown = spec.secret ? '<redacted>' : JSON.stringify(raw);
      problems.push(`${source}=${shown}: ${reason}`);
    }
  }
  if (config.clusterName && !config.clickhouseUrl) {
    problems.push(
      `${SETTINGS.clusterName.env}=${JSON.stringify(config.clusterName)}: a cluster needs a ClickHouse server; set ${SETTINGS.clickhouseUrl.env} or leave the cluster empty`,
    );
  }
  if (problems.length > 0) {
    throw new FaultlineError(
      'FL_INVALID_CONFIG',
      `invalid configuration:\n  ${problems.join('\n  ')}`,
    );
  }
  return Object.freeze(config) as FaultlineConfig;
}
