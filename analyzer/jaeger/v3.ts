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
import { listOperations, listServices, readTraces } from '../../lib/storage/span-reader';
import { checkRange, checkResultLimit, type QueryLimits } from '../access';
import { toOtlpJson } from '../otlp-json';
import { handle, parseGoDuration, parsePositiveInt, parseSpanKind, queryText } from './params';
import { findTraceIds, normaliseTraceId, type TagFilter } from './span-search';

const DEFAULT_NUM_TRACES = 20;
const DEFAULT_LOOKBACK_MS = 3_600_000;

function parseRfc3339(name: string, value: string): number {
  const parsed = /^\d{4}-\d{2}-\d{2}T/.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(parsed)) {
    throw new FaultlineError(
      'FL_INVALID_PARAMETER',
      `invalid ${name} ${JSON.stringify(value)}: expected an RFC 3339 timestamp such as 2024-05-29T16:26:40Z`,
    );
  }
  return parsed;
}

/**
 * Reads `query.attributes`: grpc-gateway sends a map field as repeated
 * `query.attributes[key]=value`; a JSON object in `query.attributes` is accepted too.
 */
function readAttributes(request: Request): TagFilter[] {
  const tags: TagFilter[] = [];
  for (const [name, value] of Object.entries(request.query)) {
    const match = /^query\.attributes\[(.+)\]$/.exec(name);
    if (match && typeof value === 'string') tags.push({ key: match[1], value });
  }
  const json = queryText(request, 'query.attributes');
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
        `invalid query.attributes ${JSON.stringify(json)}: expected query.attributes[key]=value or a JSON object`,
      );
    }
    for (const [key, value] of Object.entries(parsed)) tags.push({ key, value: String(value) });
  }
  return tags;
}

function optionalDuration(request: Request, name: string): bigint | undefined {
  const text = queryText(request, name);
  return text === undefined ? undefined : parseGoDuration(name, text);
}

async function findTraces(storage: Storage, request: Request, limits: QueryLimits) {
  const service = queryText(request, 'query.service_name');
  if (!service) {
    throw new FaultlineError(
      'FL_INVALID_PARAMETER',
      'missing query.service_name: give ?query.service_name=NAME',
    );
  }
  const maxText = queryText(request, 'query.start_time_max');
  const minText = queryText(request, 'query.start_time_min');
  const endMs = maxText ? parseRfc3339('query.start_time_max', maxText) : Date.now();
  const startMs = minText
    ? parseRfc3339('query.start_time_min', minText)
    : endMs - DEFAULT_LOOKBACK_MS;
  const countText =
    queryText(request, 'query.search_depth') ?? queryText(request, 'query.num_traces');
  const limit = countText ? parsePositiveInt('query.search_depth', countText) : DEFAULT_NUM_TRACES;
  const ids = await findTraceIds(storage, {
    range: checkRange({ startMs, endMs }, limits),
    service,
    operation: queryText(request, 'query.operation_name'),
    tags: readAttributes(request),
    minDurationNs: optionalDuration(request, 'query.duration_min'),
    maxDurationNs: optionalDuration(request, 'query.duration_max'),
    limit: checkResultLimit('query.search_depth', limit, limits),
  });
  return readTraces(storage, ids);
}

/** Renders an error as grpc-gateway does for Jaeger's `/api/v3`. */
function v3Error(logger: Logger) {
  return (error: unknown, request: Request, response: Response, next: NextFunction) => {
    void next;
    const known = error instanceof FaultlineError;
    if (!known) logger.error({ err: error, path: request.originalUrl }, 'jaeger v3 query failed');
    const status = known ? error.httpStatus : 500;
    const message = known
      ? `${error.code}: ${error.message}`
      : `FL_INTERNAL: query failed: ${error instanceof Error ? error.message : String(error)}`;
    response.status(status).json({ error: { httpCode: status, message } });
  };
}

/** Jaeger's `/api/v3` routes, which return traces as OTLP JSON under `result`. */
export function jaegerV3Router(
  storage: Storage,
  logger: Logger,
  options: { limits: QueryLimits; guard: RequestHandler },
): Router {
  const { limits } = options;
  const router = express.Router();
  router.use(options.guard);
  router.get(
    '/services',
    handle(async (_request, response) => {
      response.json({ services: await listServices(storage) });
    }),
  );
  router.get(
    '/operations',
    handle(async (request, response) => {
      const service = queryText(request, 'service');
      if (!service) {
        throw new FaultlineError('FL_INVALID_PARAMETER', 'missing service: give ?service=NAME');
      }
      const kind = parseSpanKind('span_kind', queryText(request, 'span_kind'));
      const operations = (await listOperations(storage, service))
        .filter((operation) => !kind || operation.spanKind === kind)
        .map((operation) => ({ name: operation.name, spanKind: operation.spanKind.toLowerCase() }));
      response.json({ operations });
    }),
  );
  router.get(
    '/traces/:traceId',
    handle(async (request, response) => {
      const traceId = normaliseTraceId(String(request.params.traceId));
      const spans = traceId ? (await readTraces(storage, [traceId])).get(traceId) : undefined;
      if (!traceId || !spans) {
        throw new FaultlineError(
          'FL_TRACE_NOT_FOUND',
          `trace ${String(request.params.traceId)} not found`,
        );
      }
      response.json({ result: toOtlpJson(spans) });
    }),
  );
  router.get(
    '/traces',
    handle(async (request, response) => {
      const traces = await findTraces(storage, request, limits);
      response.json({ result: toOtlpJson([...traces.values()].flat()) });
    }),
  );
  router.use((request: Request) => {
    throw new FaultlineError(
      'FL_NOT_FOUND',
      `no Jaeger v3 route ${request.method} ${request.originalUrl}`,
    );
  });
  router.use(v3Error(logger));
  return router;
}
