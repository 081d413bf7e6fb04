import express, {
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
  type Router,
} from 'express';
import { FaultlineError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import type { Storage } from '../../lib/storage/clickhouse';
import {
  listOperations,
  listServices,
  readTraces,
  type TimeRange,
} from '../../lib/storage/span-reader';
import { checkRange, checkResultLimit, type QueryLimits } from '../access';
import { readDependencies } from '../dependencies';
import { toJaegerTrace } from './model';
import {
  handle,
  parseGoDuration,
  parseMicros,
  parseMicrosOrMillis,
  parseMillis,
  parsePositiveInt,
  parseSpanKind,
  queryText,
  queryTexts,
} from './params';
import { findTraceIds, normaliseTraceId, type TagFilter } from './span-search';
import { jaegerV3Router } from './v3';

const DEFAULT_LIMIT = 20;
const DEFAULT_LOOKBACK_MS = 3_600_000;
const DEFAULT_DEPENDENCY_LOOKBACK_MS = 86_400_000;

/** Jaeger's response envelope; `limit` and `offset` are always 0, as Jaeger sends them. */
function envelope<T>(data: T, total: number) {
  return { data, total, limit: 0, offset: 0, errors: null };
}

/** Reads tags from `tags` (a JSON object) and repeated `tag=key:value` parameters. */
export function readTags(request: Request): TagFilter[] {
  const tags: TagFilter[] = [];
  const json = queryText(request, 'tags');
  if (json !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch {
      parsed = undefined;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new FaultlineError(
        'FL_INVALID_PARAMETER',
        `invalid tags ${JSON.stringify(json)}: expected a JSON object such as {"http.response.status_code":"500","error":"true"}`,
      );
    }
    for (const [key, value] of Object.entries(parsed)) tags.push({ key, value: String(value) });
  }
  for (const pair of queryTexts(request, 'tag')) {
    const colon = pair.indexOf(':');
    if (colon < 1) {
      throw new FaultlineError(
        'FL_INVALID_PARAMETER',
        `invalid tag ${JSON.stringify(pair)}: expected key:value, such as http.method:GET`,
      );
    }
    tags.push({ key: pair.slice(0, colon), value: pair.slice(colon + 1) });
  }
  return tags;
}

function readSearchRange(request: Request, limits: QueryLimits): TimeRange {
  const endText = queryText(request, 'end');
  const startText = queryText(request, 'start');
  const lookback = queryText(request, 'lookback');
  const endMs = endText ? parseMicros('end', endText) : Date.now();
  const lookbackMs =
    lookback && lookback !== 'custom'
      ? Number(parseGoDuration('lookback', lookback) / 1_000_000n)
      : DEFAULT_LOOKBACK_MS;
  const startMs = startText ? parseMicros('start', startText) : endMs - lookbackMs;
  if (startMs > endMs) {
    throw new FaultlineError(
      'FL_INVALID_PARAMETER',
      `invalid time range: start ${startText} is after end ${endText} (both microseconds since the epoch)`,
    );
  }
  return checkRange({ startMs, endMs }, limits);
}

function optionalDuration(request: Request, name: string): bigint | undefined {
  const text = queryText(request, name);
  return text === undefined ? undefined : parseGoDuration(name, text);
}

async function searchTraces(storage: Storage, request: Request, limits: QueryLimits) {
  const traceIds = queryTexts(request, 'traceID').map((raw) => {
    const id = normaliseTraceId(raw);
    if (!id) {
      throw new FaultlineError(
        'FL_INVALID_PARAMETER',
        `invalid traceID ${JSON.stringify(raw)}: expected up to 32 hex digits`,
      );
    }
    return id;
  });
  if (traceIds.length > 0) {
    checkResultLimit('traceID count', traceIds.length, limits);
    return readTraces(storage, traceIds);
  }
  const service = queryText(request, 'service');
  const limitText = queryText(request, 'limit');
  const limit = limitText ? parsePositiveInt('limit', limitText) : DEFAULT_LIMIT;
  const operation = queryText(request, 'operation');
  const ids = await findTraceIds(storage, {
    range: readSearchRange(request, limits),
    service,
    operation: operation === 'all' ? undefined : operation,
    tags: readTags(request),
    minDurationNs: optionalDuration(request, 'minDuration'),
    maxDurationNs: optionalDuration(request, 'maxDuration'),
    limit: checkResultLimit('limit', limit, limits),
  });
  return readTraces(storage, ids);
}

function readTraceWindow(request: Request): void {
  // start and end only narrow where storage looks in Jaeger; every span of the trace is
  // read here, so they are validated and otherwise unused.
  for (const name of ['start', 'end']) {
    const text = queryText(request, name);
    if (text !== undefined) parseMicrosOrMillis(name, text);
  }
}

function addV1Routes(router: Router, storage: Storage, limits: QueryLimits): void {
  router.get(
    '/api/services',
    handle(async (_request, response) => {
      const services = await listServices(storage);
      response.json(envelope(services, services.length));
    }),
  );
  router.get(
    '/api/services/:service/operations',
    handle(async (request, response) => {
      const operations = await listOperations(storage, String(request.params.service));
      const names = [...new Set(operations.map((operation) => operation.name))];
      response.json(envelope(names, names.length));
    }),
  );
  router.get(
    '/api/operations',
    handle(async (request, response) => {
      const service = queryText(request, 'service');
      if (!service) {
        throw new FaultlineError('FL_INVALID_PARAMETER', 'missing service: give ?service=NAME');
      }
      const kind = parseSpanKind('spanKind', queryText(request, 'spanKind'));
      const operations = (await listOperations(storage, service))
        .filter((operation) => !kind || operation.spanKind === kind)
        .map((operation) => ({ name: operation.name, spanKind: operation.spanKind.toLowerCase() }));
      response.json(envelope(operations, operations.length));
    }),
  );
  router.get(
    '/api/traces',
    handle(async (request, response) => {
      const traces = await searchTraces(storage, request, limits);
      const data = [...traces].map(([id, spans]) => toJaegerTrace(id, spans));
      response.json(envelope(data, data.length));
    }),
  );
  router.get(
    '/api/traces/:traceId',
    handle(async (request, response) => {
      const traceId = normaliseTraceId(String(request.params.traceId));
      readTraceWindow(request);
      const spans = traceId ? (await readTraces(storage, [traceId])).get(traceId) : undefined;
      if (!traceId || !spans) {
        throw new FaultlineError('FL_TRACE_NOT_FOUND', 'trace not found');
      }
      response.json(envelope([toJaegerTrace(traceId, spans)], 1));
    }),
  );
  router.get(
    '/api/dependencies',
    handle(async (request, response) => {
      const endText = queryText(request, 'endTs');
      const lookbackText = queryText(request, 'lookback');
      const endMs = endText ? parseMillis('endTs', endText) : Date.now();
      const lookbackMs = lookbackText
        ? parseMillis('lookback', lookbackText)
        : DEFAULT_DEPENDENCY_LOOKBACK_MS;
      const range = checkRange({ startMs: endMs - lookbackMs, endMs }, limits);
      const edges = await readDependencies(storage, range);
      const data = edges.map((edge) => ({
        parent: edge.caller,
        child: edge.callee,
        callCount: edge.calls,
      }));
      response.json(envelope(data, data.length));
    }),
  );
}

/** Renders an error in Jaeger's envelope, with the Faultline code in front of the message. */
function jaegerError(logger: Logger) {
  return (error: unknown, request: Request, response: Response, next: NextFunction) => {
    void next;
    const known = error instanceof FaultlineError;
    if (!known) logger.error({ err: error, path: request.originalUrl }, 'jaeger query failed');
    const status = known ? error.httpStatus : 500;
    const message = known
      ? `${error.code}: ${error.message}`
      : `FL_INTERNAL: query failed: ${error instanceof Error ? error.message : String(error)}`;
    response.status(status).json({
      data: null,
      total: 0,
      limit: 0,
      offset: 0,
      errors: [{ code: status, msg: message }],
    });
  };
}

/**
 * The Jaeger query service's HTTP API, to mount under `/jaeger`: the JSON API that the
 * Jaeger UI and Grafana's Jaeger data source call, and the OTLP-based `/api/v3`.
 */
export function jaegerRouter(
  storage: Storage,
  logger: Logger,
  options: { limits: QueryLimits; guard: RequestHandler },
): Router {
  const { limits, guard } = options;
  const router = express.Router();
  router.use('/api/v3', jaegerV3Router(storage, logger, options));
  router.use('/api', guard);
  addV1Routes(router, storage, limits);
  router.use('/api', (request: Request) => {
    throw new FaultlineError(
      'FL_NOT_FOUND',
      `no Jaeger API route ${request.method} ${request.originalUrl}`,
    );
  });
  router.use(jaegerError(logger));
  return router;
}
