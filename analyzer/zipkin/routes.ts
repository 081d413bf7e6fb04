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
  RANGE_CONDITION,
  rangeParams,
  type TimeRange,
  readTraces,
} from '../../lib/storage/span-reader';
import { checkRange, checkResultLimit, type QueryLimits } from '../access';
import { readDependencies } from '../dependencies';
import { handle, parseMillis, parsePositiveInt, queryText } from '../jaeger/params';
import { findTraceIds, floatText, normaliseTraceId, type TagFilter } from '../jaeger/span-search';
import { toZipkinSpan } from './model';

const DEFAULT_LIMIT = 10;
const DEFAULT_LOOKBACK_MS = 86_400_000;

function requiredService(request: Request): string {
  const service = queryText(request, 'serviceName');
  if (!service) {
    throw new FaultlineError('FL_INVALID_PARAMETER', 'missing serviceName: give ?serviceName=NAME');
  }
  return service;
}

/** Reads `endTs` and `lookback`, both in milliseconds. */
function readWindow(request: Request, limits: QueryLimits): TimeRange {
  const endText = queryText(request, 'endTs');
  const lookbackText = queryText(request, 'lookback');
  const endMs = endText ? parseMillis('endTs', endText) : Date.now();
  const lookbackMs = lookbackText ? parseMillis('lookback', lookbackText) : DEFAULT_LOOKBACK_MS;
  return checkRange({ startMs: Math.max(0, endMs - lookbackMs), endMs }, limits);
}

/**
 * Parses Zipkin's `annotationQuery`: terms joined by ` and `, each `key` (present) or
 * `key=value`.
 */
export function parseAnnotationQuery(query: string | undefined): TagFilter[] {
  if (!query) return [];
  return query
    .split(/\s+and\s+/i)
    .map((term) => term.trim())
    .filter(Boolean)
    .map((term) => {
      const equals = term.indexOf('=');
      return equals < 0
        ? { key: term }
        : { key: term.slice(0, equals), value: term.slice(equals + 1) };
    });
}

function micros(request: Request, name: string): bigint | undefined {
  const text = queryText(request, name);
  if (text === undefined) return undefined;
  if (!/^\d{1,15}$/.test(text)) {
    throw new FaultlineError(
      'FL_INVALID_PARAMETER',
      `invalid ${name} ${JSON.stringify(text)}: expected microseconds, such as 150000 for 150ms`,
    );
  }
  return BigInt(text) * 1000n;
}

function toTraceId(raw: string): string {
  const id = normaliseTraceId(raw.trim());
  if (!id) {
    throw new FaultlineError(
      'FL_INVALID_PARAMETER',
      `invalid trace id ${JSON.stringify(raw)}: expected 16 or 32 hex digits`,
    );
  }
  return id;
}

async function searchTraces(storage: Storage, request: Request, limits: QueryLimits) {
  const limitText = queryText(request, 'limit');
  const limit = limitText ? parsePositiveInt('limit', limitText) : DEFAULT_LIMIT;
  const ids = await findTraceIds(storage, {
    range: readWindow(request, limits),
    service: queryText(request, 'serviceName'),
    remoteService: queryText(request, 'remoteServiceName'),
    operation: queryText(request, 'spanName'),
    tags: parseAnnotationQuery(queryText(request, 'annotationQuery')),
    minDurationNs: micros(request, 'minDuration'),
    maxDurationNs: micros(request, 'maxDuration'),
    limit: checkResultLimit('limit', limit, limits),
  });
  return readTraces(storage, ids);
}

/**
 * Lists the services that `service` called in a window, as `/api/v2/dependencies` names
 * them: the service of the server span a call reached, or the called name (peer.service,
 * the address) when no server span is found. The name recorded on the client span alone is
 * often an address such as 127.0.0.1:8081, which would not match the dependency graph.
 */
async function remoteServices(
  storage: Storage,
  service: string,
  window: TimeRange,
): Promise<string[]> {
  const edges = await readDependencies(storage, window);
  const callees = edges.filter((edge) => edge.caller === service).map((edge) => edge.callee);
  return [...new Set(callees)].sort();
}

/** Largest number of values `autocompleteValues` returns for one key. */
const AUTOCOMPLETE_VALUES_LIMIT = 500;

/**
 * Reads the distinct values of one span or resource attribute over a range, each as text
 * (`true`, `0.5`), as tag search compares them. Resource lists repeat across spans, so
 * each distinct list is parsed once.
 */
async function attributeValues(storage: Storage, key: string, range: TimeRange) {
  const db = storage.database;
  const result = await storage.client.query({
    query: `SELECT DISTINCT value FROM (
  SELECT arrayJoin([
    if(mapContains(attributes_string, {key:String}), toString(attributes_string[{key:String}]), ''),
    if(mapContains(attributes_int, {key:String}), toString(attributes_int[{key:String}]), ''),
    if(mapContains(attributes_float, {key:String}), ${floatText('attributes_float[{key:String}]')}, ''),
    if(mapContains(attributes_bool, {key:String}), if(attributes_bool[{key:String}], 'true', 'false'), '')
  ]) AS value
  FROM ${db}.spans
  WHERE ${RANGE_CONDITION}
  UNION ALL
  SELECT multiIf(
    JSONHas(pair, 'value', 'stringValue'), JSONExtractString(pair, 'value', 'stringValue'),
    JSONHas(pair, 'value', 'intValue'), JSONExtractString(pair, 'value', 'intValue'),
    JSONHas(pair, 'value', 'doubleValue'), toString(JSONExtractFloat(pair, 'value', 'doubleValue')),
    JSONExtractRaw(pair, 'value', 'boolValue')) AS value
  FROM (
    SELECT arrayFirst(item -> JSONExtractString(item, 'key') = {key:String},
      JSONExtractArrayRaw(toString(resource_attributes))) AS pair
    FROM (
      SELECT DISTINCT resource_attributes FROM ${db}.spans
      WHERE ${RANGE_CONDITION} AND position(toString(resource_attributes), {quotedKey:String}) > 0
    )
  )
  WHERE pair != ''
)
WHERE value != ''
ORDER BY value
LIMIT {limit:UInt32}`,
    query_params: {
      ...rangeParams(range),
      key,
      quotedKey: JSON.stringify(key),
      limit: AUTOCOMPLETE_VALUES_LIMIT,
    },
    format: 'JSONEachRow',
  });
  return (await result.json<{ value: string }>()).map((row) => row.value);
}

function addAutocompleteRoutes(
  router: Router,
  storage: Storage,
  limits: QueryLimits,
  keys: string[],
): void {
  router.get(
    '/api/v2/autocompleteKeys',
    handle(async (_request, response) => {
      response.json(keys);
    }),
  );
  router.get(
    '/api/v2/autocompleteValues',
    handle(async (request, response) => {
      const key = queryText(request, 'key');
      if (!key) {
        throw new FaultlineError('FL_INVALID_PARAMETER', 'missing key: give ?key=ATTRIBUTE');
      }
      // Values are offered for the configured keys only; another key gets an empty list.
      response.json(
        keys.includes(key) ? await attributeValues(storage, key, readWindow(request, limits)) : [],
      );
    }),
  );
}

function addRoutes(router: Router, storage: Storage, limits: QueryLimits): void {
  router.get(
    '/api/v2/services',
    handle(async (_request, response) => {
      response.json(await listServices(storage));
    }),
  );
  router.get(
    '/api/v2/spans',
    handle(async (request, response) => {
      const operations = await listOperations(storage, requiredService(request));
      response.json([...new Set(operations.map((operation) => operation.name))]);
    }),
  );
  router.get(
    '/api/v2/remoteServices',
    handle(async (request, response) => {
      const service = requiredService(request);
      response.json(await remoteServices(storage, service, readWindow(request, limits)));
    }),
  );
  router.get(
    '/api/v2/traces',
    handle(async (request, response) => {
      const traces = await searchTraces(storage, request, limits);
      response.json([...traces.values()].map((spans) => spans.map(toZipkinSpan)));
    }),
  );
  router.get(
    '/api/v2/trace/:traceId',
    handle(async (request, response) => {
      const traceId = toTraceId(String(request.params.traceId));
      const spans = (await readTraces(storage, [traceId])).get(traceId);
      if (!spans) throw new FaultlineError('FL_TRACE_NOT_FOUND', `trace ${traceId} not found`);
      response.json(spans.map(toZipkinSpan));
    }),
  );
  router.get(
    '/api/v2/traceMany',
    handle(async (request, response) => {
      const list = queryText(request, 'traceIds');
      if (!list) {
        throw new FaultlineError(
          'FL_INVALID_PARAMETER',
          'missing traceIds: give ?traceIds=ID1,ID2',
        );
      }
      const ids = [...new Set(list.split(',').map(toTraceId))];
      checkResultLimit('traceIds count', ids.length, limits);
      const traces = await readTraces(storage, ids);
      response.json([...traces.values()].map((spans) => spans.map(toZipkinSpan)));
    }),
  );
  router.get(
    '/api/v2/dependencies',
    handle(async (request, response) => {
      const edges = await readDependencies(storage, readWindow(request, limits));
      response.json(
        edges.map((edge) => ({
          parent: edge.caller,
          child: edge.callee,
          callCount: edge.calls,
          errorCount: edge.errors,
        })),
      );
    }),
  );
}

/** Renders an error as Zipkin does: the status with a plain-text message. */
function zipkinError(logger: Logger) {
  return (error: unknown, request: Request, response: Response, next: NextFunction) => {
    void next;
    const known = error instanceof FaultlineError;
    if (!known) logger.error({ err: error, path: request.originalUrl }, 'zipkin query failed');
    const message = known
      ? `${error.code}: ${error.message}`
      : `FL_INTERNAL: query failed: ${error instanceof Error ? error.message : String(error)}`;
    response
      .status(known ? error.httpStatus : 500)
      .type('text/plain')
      .send(message);
  };
}

/** Zipkin's v2 read API, to mount under `/zipkin`. */
export function zipkinRouter(
  storage: Storage,
  logger: Logger,
  options: { limits: QueryLimits; guard: RequestHandler; autocompleteKeys?: string[] },
): Router {
  const { limits } = options;
  const router = express.Router();
  router.use('/api', options.guard);
  addRoutes(router, storage, limits);
  addAutocompleteRoutes(router, storage, limits, options.autocompleteKeys ?? []);
  router.use('/api', (request: Request) => {
    throw new FaultlineError(
      'FL_NOT_FOUND',
      `no Zipkin API route ${request.method} ${request.originalUrl}`,
    );
  });
  router.use(zipkinError(logger));
  return router;
}
