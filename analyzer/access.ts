import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { FaultlineConfig } from '../lib/config';
import { FaultlineError } from '../lib/errors';
import type { TimeRange } from '../lib/storage/span-reader';

/** Settings of the analyzer that control who may query and how much one query may read. */
export type AccessConfig = Pick<
  FaultlineConfig,
  'queryTokens' | 'corsOrigins' | 'queryMaxRangeHours' | 'queryMaxResults'
> &
  Partial<Pick<FaultlineConfig, 'zipkinAutocompleteKeys'>>;

/** Bounds of one query, derived from `AccessConfig`. */
export interface QueryLimits {
  maxRangeMs: number;
  maxResults: number;
}

export function queryLimits(config: AccessConfig): QueryLimits {
  return { maxRangeMs: config.queryMaxRangeHours * 3_600_000, maxResults: config.queryMaxResults };
}

/** Rejects a time range longer than the limit, naming both and the setting that raises it. */
export function checkRange(range: TimeRange, limits: QueryLimits): TimeRange {
  const spanMs = range.endMs - range.startMs;
  if (spanMs > limits.maxRangeMs) {
    const hours = (spanMs / 3_600_000).toFixed(1);
    throw new FaultlineError(
      'FL_QUERY_LIMIT',
      `time range of ${hours}h is over the limit of ${limits.maxRangeMs / 3_600_000}h: narrow start and end, or raise FAULTLINE_QUERY_MAX_RANGE_HOURS`,
    );
  }
  return range;
}

/** Rejects a result limit over the maximum, naming the parameter, the value and the maximum. */
export function checkResultLimit(name: string, limit: number, limits: QueryLimits): number {
  if (limit > limits.maxResults) {
    throw new FaultlineError(
      'FL_QUERY_LIMIT',
      `${name} ${limit} is over the limit of ${limits.maxResults} traces: ask for fewer, or raise FAULTLINE_QUERY_MAX_RESULTS`,
    );
  }
  return limit;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Returns a matcher that compares a presented token against each accepted one in constant time. */
function tokenMatcher(tokens: string[]): (presented: string) => boolean {
  const digests = tokens.map(digest);
  return (presented) => {
    const candidate = digest(presented);
    let matched = false;
    for (const accepted of digests) matched = timingSafeEqual(candidate, accepted) || matched;
    return matched;
  };
}

function bearerToken(request: Request): string | undefined {
  const header = request.get('authorization');
  const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return match?.[1];
}

/**
 * Requires `Authorization: Bearer <token>` with one of `tokens` on every request it guards.
 * With no tokens configured it lets every request through. Failures go to `next` as
 * `FL_UNAUTHORIZED`, so that each API renders the error in its own format.
 */
export function requireToken(tokens: string[]): RequestHandler {
  if (tokens.length === 0) return (_request, _response, next) => next();
  const matches = tokenMatcher(tokens);
  return (request: Request, response: Response, next: NextFunction) => {
    if (request.method === 'OPTIONS') return next();
    const token = bearerToken(request);
    if (token !== undefined && matches(token)) return next();
    response.set('WWW-Authenticate', 'Bearer realm="faultline"');
    next(
      new FaultlineError(
        'FL_UNAUTHORIZED',
        token === undefined
          ? 'missing query token: send the header Authorization: Bearer <token> with a token from FAULTLINE_QUERY_TOKENS'
          : 'invalid query token: it is not one of FAULTLINE_QUERY_TOKENS',
      ),
    );
  };
}

/**
 * Applies CORS for the allowed origins: it echoes an allowed `Origin`, or `*` when any
 * origin is allowed, and ends preflight requests with 204. With no origins configured it
 * adds nothing, so browsers keep their same-origin rule.
 */
export function cors(origins: string[]): RequestHandler {
  const anyOrigin = origins.includes('*');
  const allowed = new Set(origins);
  return (request, response, next) => {
    const origin = request.get('origin');
    if (origins.length === 0 || !origin || !(anyOrigin || allowed.has(origin))) return next();
    response.set('Access-Control-Allow-Origin', anyOrigin ? '*' : origin);
    response.vary('Origin');
    if (request.method !== 'OPTIONS' || !request.get('access-control-request-method')) {
      return next();
    }
    response.set('Access-Control-Allow-Methods', 'GET, HEAD, OPTIONS');
    response.set(
      'Access-Control-Allow-Headers',
      request.get('access-control-request-headers') ?? 'Authorization, Content-Type',
    );
    response.set('Access-Control-Max-Age', '600');
    response.status(204).end();
  };
}
