import type { SpanRecord } from '../../lib/model/span';
import { makeSpan } from './spans';

/** Options of one synthetic checkout request: frontend → checkout → payment. */
export interface SyntheticRequest {
  index: number;
  startMs: number;
  paymentFails?: boolean;
  paymentVersion?: string;
  /** Extra milliseconds that payment's database call takes. */
  slowDatabaseMs?: number;
  user?: string;
  /** Value of a `tenant.id` attribute on the entry span. */
  tenant?: string;
  /** Trace id in hex; by default a counter, unique across the test run. */
  traceId?: string;
}

const MINUTE = 60_000;
// A ten-minute block two hours ago: analyses of a window inside one block, with a baseline
// before it, all within the retention.
const BLOCK_START = Math.floor((Date.now() - 2 * 3_600_000) / (10 * MINUTE)) * 10 * MINUTE;

/** A five-minute window inside one ten-minute block of storage. */
export const ANALYSIS_WINDOW = { startMs: BLOCK_START + MINUTE, endMs: BLOCK_START + 6 * MINUTE };

/** A ten-minute baseline that ends 40 minutes before the window's block. */
export const ANALYSIS_BASELINE = {
  startMs: BLOCK_START - 50 * MINUTE,
  endMs: BLOCK_START - 40 * MINUTE,
};

let traceCounter = 1;

/** Builds the spans of one request with ids unique across the test run. */
export function syntheticRequest(request: SyntheticRequest): SpanRecord[] {
  const traceId = request.traceId ?? (traceCounter++).toString(16).padStart(32, '0');
  const base = request.index * 10;
  const t = request.startMs;
  const db = 5 + (request.index % 5) + (request.slowDatabaseMs ?? 0);
  const fails = request.paymentFails === true;
  const common = { traceId };
  const error = { isError: true, statusCode: 'ERROR' as const };
  const exception = {
    events: [
      {
        timeUnixNano: `${BigInt(Math.round((t + 5) * 1e6))}`,
        name: 'exception',
        attributes: [
          { key: 'exception.type', value: { stringValue: 'CardDeclined' } },
          {
            key: 'exception.message',
            value: { stringValue: `card ${request.index} declined after ${200 + request.index}ms` },
          },
        ],
        droppedAttributesCount: 0,
      },
    ],
  };
  const userAttributes = [
    ...(request.user ? [{ key: 'enduser.id', value: { stringValue: request.user } }] : []),
    ...(request.tenant ? [{ key: 'tenant.id', value: { stringValue: request.tenant } }] : []),
  ];
  const user = userAttributes.length > 0 ? { attributes: userAttributes } : {};
  return [
    makeSpan(base + 1, '', t, t + 30 + db, {
      ...common,
      ...user,
      name: 'GET /checkout',
      kind: 'SERVER',
      serviceName: 'frontend',
      ...(fails ? { ...error, httpStatusCode: 502 } : {}),
    }),
    makeSpan(base + 2, base + 1, t + 1, t + 29 + db, {
      ...common,
      name: 'POST',
      kind: 'CLIENT',
      serviceName: 'frontend',
      remoteService: 'checkout',
      ...(fails ? { ...error, httpStatusCode: 502 } : {}),
    }),
    makeSpan(base + 3, base + 2, t + 2, t + 28 + db, {
      ...common,
      name: 'POST /checkout',
      kind: 'SERVER',
      serviceName: 'checkout',
      ...(fails ? { ...error, httpStatusCode: 502 } : {}),
    }),
    makeSpan(base + 4, base + 3, t + 3, t + 27 + db, {
      ...common,
      name: 'POST',
      kind: 'CLIENT',
      serviceName: 'checkout',
      remoteService: 'payment',
      ...(fails ? { ...error, httpStatusCode: 500 } : {}),
    }),
    makeSpan(base + 5, base + 4, t + 4, t + 26 + db, {
      ...common,
      name: 'POST /charge',
      kind: 'SERVER',
      serviceName: 'payment',
      serviceVersion: request.paymentVersion ?? '1.0.0',
      ...(fails ? { ...error, httpStatusCode: 500, ...exception } : {}),
    }),
    makeSpan(base + 6, base + 5, t + 6, t + 6 + db, {
      ...common,
      name: 'SELECT cards',
      kind: 'CLIENT',
      serviceName: 'payment',
      serviceVersion: request.paymentVersion ?? '1.0.0',
      remoteService: 'postgresql/cards',
    }),
  ];
}
