import express, {
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
  type Router,
} from 'express';
import { FaultlineError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Storage } from '../lib/storage/clickhouse';
import {
  listOperations,
  listServices,
  readTraceSpans,
  searchTraces,
  type TimeRange,
} from '../lib/storage/span-reader';
import { parseDurationNs, parseTimeParam } from '../lib/time';
import { checkRange, checkResultLimit, type QueryLimits } from './access';
import { readDependencies } from './dependencies';
import { readTags } from './jaeger/routes';
import { findTraceIds, readTraces, summariseTrace, type SpanSearch } from './jaeger/span-search';
import { toOtlpJson } from './otlp-json';
import { buildReport, defaultBaseline, renderReportMarkdown } from './report';
import { toTraceView } from './trace-view';
import { buildTraceTree } from './tree';

const TRACE_ID_PATTERN = /^[0-9a-fA-F]{1,32}$/;
const DEFAULT_LOOKBACK_MS = 3_600_000;

type Handler = (request: Request, response: Response) => Promise<void>;

/** Wraps an async handler so that its errors reach the error middleware. */
function handle(handler: Handler) {
  return (request: Request, response: Response, next: NextFunction) => {
    handler(request, response).catch(next);
  };
}

function queryText(request: Request, name: string): string | undefined {
  const value = request.query[name];
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') {
    throw new FaultlineError(
      'FL_INVALID_PARAMETER',
      `invalid ${name}: give it once, as a single value`,
    );
  }
  return value;
}

/** Reads `start` and `end` (or other names); a missing end is now, a missing start is `lookbackMs` before it. */
export function readRange(
  request: Request,
  names = { start: 'start', end: 'end' },
  lookbackMs = DEFAULT_LOOKBACK_MS,
): TimeRange {
  const endText = queryText(request, names.end);
  const startText = queryText(request, names.start);
  const endMs = endText ? parseTimeParam(names.end, endText) : Date.now();
  const startMs = startText ? parseTimeParam(names.start, startText) : endMs - lookbackMs;
  if (startMs > endMs) {
    throw new FaultlineError(
      'FL_INVALID_PARAMETER',
      `invalid time range: ${names.start} ${new Date(startMs).toISOString()} is after ${names.end} ${new Date(endMs).toISOString()}`,
    );
  }
  return { startMs, endMs };
}

function readLimit(request: Request, limits: QueryLimits): number {
  const text = queryText(request, 'limit');
  if (text === undefined) return 20;
  const limit = Number(text);
  if (!Number.isInteger(limit) || limit < 1) {
    throw new FaultlineError(
      'FL_INVALID_PARAMETER',
      `invalid limit ${JSON.stringify(text)}: expected an integer from 1 to ${limits.maxResults}`,
    );
  }
  return checkResultLimit('limit', limit, limits);
}

function readTraceFormat(request: Request): 'json' | 'otlp' {
  const format = queryText(request, 'format') ?? 'json';
  if (format !== 'json' && format !== 'otlp') {
    throw new FaultlineError(
      'FL_INVALID_PARAMETER',
      `invalid format ${JSON.stringify(format)}: expected json (the trace tree) or otlp (OTLP JSON)`,
    );
  }
  return format;
}

/**
 * Finds traces with a span that carries the tags and meets the other conditions, and
 * summarises each from all of its spans.
 */
async function searchTracesByTags(storage: Storage, search: SpanSearch & { errorsOnly: boolean }) {
  const tags = search.errorsOnly ? [...search.tags, { key: 'error', value: 'true' }] : search.tags;
  const ids = await findTraceIds(storage, { ...search, tags });
  const traces = await readTraces(storage, ids);
  return [...traces].map(([traceId, spans]) => summariseTrace(traceId, spans));
}

/** Options of the query API: the bounds of one query and the check that guards every route. */
export interface QueryApiOptions {
  limits: QueryLimits;
  guard: RequestHandler;
}

/** The JSON query API under `/api`. */
export function queryApiRouter(storage: Storage, logger: Logger, options: QueryApiOptions): Router {
  const { limits } = options;
  const router = express.Router();
  router.use('/api', options.guard);

  router.get(
    '/api/services',
    handle(async (_request, response) => {
      response.json({ data: await listServices(storage) });
    }),
  );

  router.get(
    '/api/services/:service/operations',
    handle(async (request, response) => {
      response.json({ data: await listOperations(storage, String(request.params.service)) });
    }),
  );

  router.get(
    '/api/traces',
    handle(async (request, response) => {
      const minDuration = queryText(request, 'minDuration');
      const maxDuration = queryText(request, 'maxDuration');
      const errorsOnly = queryText(request, 'errors');
      const limit = readLimit(request, limits);
      const search = {
        range: checkRange(readRange(request), limits),
        service: queryText(request, 'service'),
        operation: queryText(request, 'operation'),
        minDurationNs: minDuration ? parseDurationNs('minDuration', minDuration) : undefined,
        maxDurationNs: maxDuration ? parseDurationNs('maxDuration', maxDuration) : undefined,
        errorsOnly: errorsOnly === 'true' || errorsOnly === '1',
        limit,
      };
      const tags = readTags(request);
      const traces =
        tags.length > 0
          ? await searchTracesByTags(storage, { ...search, tags })
          : await searchTraces(storage, search);
      response.json({
        data: traces.map((trace) => ({
          ...trace,
          durationMs: Number(BigInt(trace.durationNs)) / 1e6,
        })),
        limit,
      });
    }),
  );

  router.get(
    '/api/traces/:traceId',
    handle(async (request, response) => {
      const raw = String(request.params.traceId);
      if (!TRACE_ID_PATTERN.test(raw)) {
        throw new FaultlineError(
          'FL_TRACE_NOT_FOUND',
          `trace ${JSON.stringify(raw)} not found: a trace id is 32 hex digits, such as 4bf92f3577b34da6a3ce929d0e0e4736`,
        );
      }
      const format = readTraceFormat(request);
      const traceId = raw.toLowerCase().padStart(32, '0');
      const spans = await readTraceSpans(storage, traceId);
      if (spans.length === 0) {
        throw new FaultlineError(
          'FL_TRACE_NOT_FOUND',
          `trace ${traceId} not found: no span of it is stored; it may be older than the retention period or not yet sent`,
        );
      }
      if (format === 'otlp') response.json(toOtlpJson(spans));
      else response.json(toTraceView(buildTraceTree(traceId, spans)));
    }),
  );

  router.get(
    '/api/dependencies',
    handle(async (request, response) => {
      const range = checkRange(readRange(request), limits);
      response.json({ data: await readDependencies(storage, range) });
    }),
  );

  router.get(
    '/api/report',
    handle(async (request, response) => {
      const format = queryText(request, 'format') ?? 'json';
      if (format !== 'json' && format !== 'md') {
        throw new FaultlineError(
          'FL_INVALID_PARAMETER',
          `invalid format ${JSON.stringify(format)}: expected json or md`,
        );
      }
      const window = checkRange(
        readRange(request, { start: 'start', end: 'end' }, 15 * 60_000),
        limits,
      );
      const baseline =
        queryText(request, 'baselineStart') || queryText(request, 'baselineEnd')
          ? readRange(
              request,
              { start: 'baselineStart', end: 'baselineEnd' },
              window.endMs - window.startMs,
            )
          : defaultBaseline(window);
      const report = await buildReport(storage, { window, baseline: checkRange(baseline, limits) });
      if (format === 'md') response.type('text/markdown').send(renderReportMarkdown(report));
      else response.json(report);
    }),
  );

  router.use('/api', (request: Request) => {
    throw new FaultlineError(
      'FL_NOT_FOUND',
      `no API route ${request.method} ${request.originalUrl}`,
    );
  });

  router.use((error: unknown, request: Request, response: Response, next: NextFunction) => {
    void next;
    if (error instanceof FaultlineError) {
      response
        .status(error.httpStatus)
        .json({ error: { code: error.code, message: error.message } });
      return;
    }
    logger.error({ err: error, path: request.path }, 'query failed');
    response.status(500).json({
      error: {
        code: 'FL_INTERNAL',
        message: `query failed: ${error instanceof Error ? error.message : String(error)}`,
      },
    });
  });
  return router;
}
