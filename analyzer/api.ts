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
  readTraces,
} from '../lib/storage/span-reader';
import { parseDurationNs, parseTimeParam } from '../lib/time';
import { checkRange, checkResultLimit, type QueryLimits } from './access';
import { buildCriticalPathView } from './critical-path-view';
import { readDependencies, readDependencyMinutes } from './dependencies';
import { markdownToHtml } from './incidents/incident-report';
import { readTags } from './jaeger/routes';
import { findTraceIds, summariseTrace, type SpanSearch } from './jaeger/span-search';
import { toOtlpJson } from './otlp-json';
import {
  buildReport,
  DEFAULT_USER_ATTRIBUTE,
  defaultBaseline,
  lastWholeMinutes,
  renderReportMarkdown,
} from './report';
import { countTraceSpans, readTraceSummary } from './trace-summary';
import { toTraceView } from './trace-view';
import { buildTraceTree } from './tree';

/** Analysis settings of the query API; each has the default of its setting in lib/config.ts. */
export interface AnalysisApiOptions {
  userAttribute: string;
  maxTraceSpans: number;
  baselineMs: number;
  /** Routes of stored reports and incidents, mounted before the 404 fallback. */
  incidents?: Router;
}

const DEFAULT_ANALYSIS_OPTIONS: AnalysisApiOptions = {
  userAttribute: DEFAULT_USER_ATTRIBUTE,
  maxTraceSpans: 10_000,
  baselineMs: 3_600_000,
};

const TRACE_ID_PATTERN = /^[0-9a-fA-F]{1,32}$/;
const DEFAULT_LOOKBACK_MS = 3_600_000;
const DEFAULT_REPORT_WINDOW_MS = 15 * 60_000;

type Handler = (request: Request, response: Response) => Promise<void>;

/** Reads a true/false query parameter: true, 1, false, 0 or absent (false). */
function readFlag(request: Request, name: string): boolean {
  const text = queryText(request, name);
  if (text === undefined || text === 'false' || text === '0') return false;
  if (text === 'true' || text === '1') return true;
  throw new FaultlineError(
    'FL_INVALID_PARAMETER',
    `invalid ${name} ${JSON.stringify(text)}: expected true or false`,
  );
}

/** Reads minDuration and maxDuration, and rejects a minimum above the maximum. */
function readDurations(request: Request): { minDurationNs?: bigint; maxDurationNs?: bigint } {
  const minText = queryText(request, 'minDuration');
  const maxText = queryText(request, 'maxDuration');
  const minDurationNs = minText ? parseDurationNs('minDuration', minText) : undefined;
  const maxDurationNs = maxText ? parseDurationNs('maxDuration', maxText) : undefined;
  if (minDurationNs !== undefined && maxDurationNs !== undefined && minDurationNs > maxDurationNs) {
    throw new FaultlineError(
      'FL_INVALID_PARAMETER',
      `minDuration ${JSON.stringify(minText)} is above maxDuration ${JSON.stringify(maxText)}: swap them or drop one`,
    );
  }
  return { minDurationNs, maxDurationNs };
}

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

function readTraceId(request: Request): string {
  const raw = String(request.params.traceId);
  if (!TRACE_ID_PATTERN.test(raw)) {
    throw new FaultlineError(
      'FL_TRACE_NOT_FOUND',
      `trace ${JSON.stringify(raw)} not found: a trace id is 32 hex digits, such as 4bf92f3577b34da6a3ce929d0e0e4736`,
    );
  }
  return raw.toLowerCase().padStart(32, '0');
}

function traceNotFound(traceId: string): FaultlineError {
  return new FaultlineError(
    'FL_TRACE_NOT_FOUND',
    `trace ${traceId} not found: no span of it is stored; it may be older than the retention period or not yet sent`,
  );
}

/** The JSON query API under `/api`. */
export function queryApiRouter(
  storage: Storage,
  logger: Logger,
  apiOptions: QueryApiOptions & Partial<AnalysisApiOptions>,
): Router {
  const { limits } = apiOptions;
  const router = express.Router();
  router.use('/api', apiOptions.guard);
  const setOptions = Object.entries(apiOptions).filter(([, value]) => value !== undefined);
  const options: AnalysisApiOptions = {
    ...DEFAULT_ANALYSIS_OPTIONS,
    ...Object.fromEntries(setOptions),
  };

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
      const limit = readLimit(request, limits);
      const search = {
        range: checkRange(readRange(request), limits),
        service: queryText(request, 'service'),
        operation: queryText(request, 'operation'),
        ...readDurations(request),
        errorsOnly: readFlag(request, 'errors'),
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
    '/api/traces/:traceId/critical-path',
    handle(async (request, response) => {
      const traceId = readTraceId(request);
      const spanCount = await countTraceSpans(storage, traceId);
      if (spanCount === 0) throw traceNotFound(traceId);
      if (spanCount > options.maxTraceSpans) {
        throw new FaultlineError(
          'FL_TRACE_TOO_LARGE',
          `trace ${traceId} has ${spanCount} spans, over the limit of ${options.maxTraceSpans} for a critical path: raise FAULTLINE_MAX_TRACE_SPANS or read the summary at /api/traces/${traceId}`,
        );
      }
      const tree = buildTraceTree(traceId, await readTraceSpans(storage, traceId));
      const startMs = Number(BigInt(tree.nodes[0]?.span.startTimeUnixNano ?? '0') / 1_000_000n);
      const baseline =
        queryText(request, 'baselineStart') || queryText(request, 'baselineEnd')
          ? readRange(request, { start: 'baselineStart', end: 'baselineEnd' }, options.baselineMs)
          : { startMs: startMs - options.baselineMs, endMs: startMs };
      response.json(await buildCriticalPathView(storage, tree, baseline));
    }),
  );

  router.get(
    '/api/traces/:traceId',
    handle(async (request, response) => {
      const traceId = readTraceId(request);
      const view = queryText(request, 'view') ?? 'auto';
      if (view !== 'auto' && view !== 'full' && view !== 'summary') {
        throw new FaultlineError(
          'FL_INVALID_PARAMETER',
          `invalid view ${JSON.stringify(view)}: expected auto, full or summary`,
        );
      }
      const format = readTraceFormat(request);
      const spanCount = await countTraceSpans(storage, traceId);
      if (spanCount === 0) throw traceNotFound(traceId);
      // A large trace is summarised in ClickHouse so that the analyzer's memory stays bounded.
      if (format === 'json' && (view === 'summary' || spanCount > options.maxTraceSpans)) {
        response.json(await readTraceSummary(storage, traceId, 100));
        return;
      }
      const spans = await readTraceSpans(storage, traceId);
      if (format === 'otlp') response.json(toOtlpJson(spans));
      else response.json(toTraceView(buildTraceTree(traceId, spans)));
    }),
  );

  router.get(
    '/api/dependencies',
    handle(async (request, response) => {
      const range = checkRange(readRange(request), limits);
      const perMinute = queryText(request, 'perMinute');
      const [edges, minutes] = await Promise.all([
        readDependencies(storage, range),
        perMinute === 'true' || perMinute === '1'
          ? readDependencyMinutes(storage, range)
          : Promise.resolve(undefined),
      ]);
      const data = edges.map((edge) => ({
        ...edge,
        ...(minutes && {
          minutes: minutes
            .filter((item) => item.caller === edge.caller && item.callee === edge.callee)
            .map(({ caller, callee, ...rest }) => (void caller, void callee, rest)),
        }),
      }));
      response.json({ data });
    }),
  );

  router.get(
    '/api/report',
    handle(async (request, response) => {
      const format = queryText(request, 'format') ?? 'json';
      if (format !== 'json' && format !== 'md' && format !== 'html') {
        throw new FaultlineError(
          'FL_INVALID_PARAMETER',
          `invalid format ${JSON.stringify(format)}: expected json, md or html`,
        );
      }
      const defaultWindow = !queryText(request, 'start') && !queryText(request, 'end');
      const window = checkRange(
        defaultWindow
          ? lastWholeMinutes(Date.now(), DEFAULT_REPORT_WINDOW_MS)
          : readRange(request, { start: 'start', end: 'end' }, DEFAULT_REPORT_WINDOW_MS),
        limits,
      );
      const baseline =
        queryText(request, 'baselineStart') || queryText(request, 'baselineEnd')
          ? readRange(
              request,
              { start: 'baselineStart', end: 'baselineEnd' },
              window.endMs - window.startMs,
            )
          : defaultBaseline(window, options.baselineMs);
      const userAttribute = queryText(request, 'userAttribute') ?? options.userAttribute;
      const report = await buildReport(storage, {
        window,
        baseline: checkRange(baseline, limits),
        userAttribute,
        includeOngoing: true,
      });
      if (format === 'md') response.type('text/markdown').send(renderReportMarkdown(report));
      else if (format === 'html') {
        response.type('text/html').send(
          markdownToHtml(renderReportMarkdown(report), 'Faultline report', {
            traceUrl: '/trace/',
          }),
        );
      } else response.json(report);
    }),
  );

  if (options.incidents) router.use(options.incidents);

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
