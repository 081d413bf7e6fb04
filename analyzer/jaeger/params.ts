import type { Request } from 'express';
import { FaultlineError } from '../../lib/errors';
import { SPAN_KINDS, type SpanKind } from '../../lib/model/span';
import { parseDurationNs } from '../../lib/time';

/** Returns a query parameter given once, or undefined when absent or empty. */
export function queryText(request: Request, name: string): string | undefined {
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

/** Returns every value of a query parameter that may repeat, such as `traceID` or `tag`. */
export function queryTexts(request: Request, name: string): string[] {
  const value = request.query[name];
  if (value === undefined) return [];
  const values = Array.isArray(value) ? value : [value];
  return values.filter((item): item is string => typeof item === 'string' && item !== '');
}

const GO_DURATION_PART = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/y;

/**
 * Parses a duration in Go's `time.ParseDuration` form, which Jaeger clients send:
 * `1.2s`, `100ms`, `1m30s`, `500us`, and the Jaeger UI's lookbacks such as `2d`.
 * Returns nanoseconds.
 */
export function parseGoDuration(name: string, value: string): bigint {
  // Go reads a bare 0 as zero and requires a unit on every other number.
  if (value === '0') return 0n;
  let total = 0n;
  GO_DURATION_PART.lastIndex = 0;
  let match: RegExpExecArray | null;
  while ((match = GO_DURATION_PART.exec(value)) !== null) {
    total += parseDurationNs(name, `${match[1]}${match[2]}`);
    if (GO_DURATION_PART.lastIndex === value.length) return total;
  }
  throw new FaultlineError(
    'FL_INVALID_PARAMETER',
    `invalid ${name} ${JSON.stringify(value)}: expected a duration such as 100ms, 1.2s or 1m30s`,
  );
}

function parseInteger(name: string, value: string, expected: string): number {
  if (!/^\d{1,19}$/.test(value)) {
    throw new FaultlineError(
      'FL_INVALID_PARAMETER',
      `invalid ${name} ${JSON.stringify(value)}: expected ${expected}`,
    );
  }
  return Number(value);
}

/** Parses microseconds since the epoch and returns milliseconds. */
export function parseMicros(name: string, value: string): number {
  return parseInteger(name, value, 'microseconds since the epoch, such as 1717000000000000') / 1000;
}

/** Parses milliseconds since the epoch, or a millisecond count such as a lookback. */
export function parseMillis(name: string, value: string): number {
  return parseInteger(name, value, 'milliseconds, such as 1717000000000');
}

// Epoch microseconds pass 1e14 in 1973 and epoch milliseconds reach it only in 5138, so
// the size of a timestamp determines its unit.
const MICROS_THRESHOLD = 1e14;

/** Parses a timestamp that clients send in microseconds or in milliseconds; returns milliseconds. */
export function parseMicrosOrMillis(name: string, value: string): number {
  const number = parseInteger(
    name,
    value,
    'microseconds or milliseconds since the epoch, such as 1717000000000000',
  );
  return number >= MICROS_THRESHOLD ? number / 1000 : number;
}

/** Parses a positive integer such as a result limit. */
export function parsePositiveInt(name: string, value: string): number {
  const number = parseInteger(name, value, 'a positive integer');
  if (number < 1) {
    throw new FaultlineError(
      'FL_INVALID_PARAMETER',
      `invalid ${name} ${JSON.stringify(value)}: expected a positive integer`,
    );
  }
  return number;
}

type Handler = (request: Request, response: import('express').Response) => Promise<void>;

/** Wraps an async handler so that its errors reach the router's error middleware. */
export function handle(handler: Handler): import('express').RequestHandler {
  return (request, response, next) => {
    handler(request, response).catch(next);
  };
}

/** Reads a span kind as Jaeger names it (`server`, `client`, ...). */
export function parseSpanKind(name: string, value: string | undefined): SpanKind | undefined {
  if (value === undefined) return undefined;
  const kind = value.toUpperCase() as SpanKind;
  if (!SPAN_KINDS.includes(kind)) {
    throw new FaultlineError(
      'FL_INVALID_PARAMETER',
      `invalid ${name} ${JSON.stringify(value)}: expected server, client, producer, consumer, internal or unspecified`,
    );
  }
  return kind;
}
