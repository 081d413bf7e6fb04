import { getJson, startTestFaultline, type TestFaultline } from './helpers/faultline';
import { sendCheckoutTrace, STACKTRACE, type CheckoutTrace } from './helpers/trace-fixture';

let faultline: TestFaultline;
let checkout: CheckoutTrace;
let cart: CheckoutTrace;
let now: number;

beforeAll(async () => {
  faultline = await startTestFaultline();
  now = Date.now();
  checkout = await sendCheckoutTrace(faultline.otlpUrl, now - 60_000);
  cart = await sendCheckoutTrace(faultline.otlpUrl, now - 300_000, 'GET /cart');
  await faultline.flush();
});

afterAll(async () => {
  await faultline.stop();
});

const jaeger = (path: string) => getJson(faultline.queryUrl, `/jaeger${path}`);
const micros = (ms: number) => String(ms * 1000);
const id = (span: { spanContext(): { spanId: string } }) => span.spanContext().spanId;

function envelope(data: unknown, total: number) {
  return { data, total, limit: 0, offset: 0, errors: null };
}

/** Builds the Jaeger JSON of a trace sent by `sendCheckoutTrace`, field by field. */
function expectedTrace(sent: CheckoutTrace, rootName = 'GET /checkout') {
  const traceID = sent.traceId;
  const scope = [
    { key: 'otel.scope.name', type: 'string', value: 'checkout-scope' },
    { key: 'otel.scope.version', type: 'string', value: '0.9.0' },
  ];
  const at = (offsetMs: number) => (sent.startMs + offsetMs) * 1000;
  return {
    traceID,
    spans: [
      {
        traceID,
        spanID: id(sent.root),
        flags: 1,
        operationName: rootName,
        references: [],
        startTime: at(0),
        duration: 120_000,
        tags: [
          { key: 'cache.hit', type: 'bool', value: true },
          { key: 'http.request.method', type: 'string', value: 'GET' },
          { key: 'http.response.status_code', type: 'int64', value: 200 },
          { key: 'order.items', type: 'string', value: '["book","pen"]' },
          { key: 'sample.ratio', type: 'float64', value: 0.25 },
          { key: 'span.kind', type: 'string', value: 'server' },
          ...scope,
        ],
        logs: [],
        processID: 'p1',
        warnings: null,
      },
      {
        traceID,
        spanID: id(sent.call),
        flags: 1,
        operationName: 'POST',
        references: [{ refType: 'CHILD_OF', traceID, spanID: id(sent.root) }],
        startTime: at(10),
        duration: 80_000,
        tags: [
          { key: 'http.response.status_code', type: 'int64', value: 503 },
          { key: 'peer.service', type: 'string', value: 'payment' },
          { key: 'span.kind', type: 'string', value: 'client' },
          { key: 'otel.status_code', type: 'string', value: 'ERROR' },
          { key: 'otel.status_description', type: 'string', value: 'payment answered 503' },
          { key: 'error', type: 'bool', value: true },
          ...scope,
        ],
        logs: [
          {
            timestamp: at(50),
            fields: [
              { key: 'event', type: 'string', value: 'retry' },
              { key: 'attempt', type: 'int64', value: 2 },
            ],
          },
        ],
        processID: 'p1',
        warnings: null,
      },
      {
        traceID,
        spanID: id(sent.charge),
        flags: 1,
        operationName: 'POST /charge',
        references: [{ refType: 'CHILD_OF', traceID, spanID: id(sent.call) }],
        startTime: at(15),
        duration: 70_000,
        tags: [
          { key: 'payment.amount', type: 'int64', value: 1999 },
          { key: 'span.kind', type: 'string', value: 'server' },
          { key: 'otel.status_code', type: 'string', value: 'ERROR' },
          { key: 'otel.status_description', type: 'string', value: 'card declined' },
          { key: 'error', type: 'bool', value: true },
          { key: 'otel.scope.name', type: 'string', value: 'payment-scope' },
        ],
        logs: [
          {
            timestamp: at(60),
            fields: [
              { key: 'event', type: 'string', value: 'exception' },
              { key: 'exception.type', type: 'string', value: 'CardDeclined' },
              { key: 'exception.stacktrace', type: 'string', value: STACKTRACE },
            ],
          },
        ],
        processID: 'p2',
        warnings: null,
      },
      {
        traceID,
        spanID: id(sent.audit),
        flags: 1,
        operationName: 'audit',
        references: [
          { refType: 'CHILD_OF', traceID, spanID: id(sent.root) },
          { refType: 'FOLLOWS_FROM', traceID, spanID: id(sent.charge) },
        ],
        startTime: at(95),
        duration: 5_000,
        tags: [{ key: 'span.kind', type: 'string', value: 'internal' }, ...scope],
        logs: [],
        processID: 'p1',
        warnings: null,
      },
    ],
    processes: {
      p1: {
        serviceName: 'frontend',
        tags: [
          { key: 'service.version', type: 'string', value: '1.4.2' },
          { key: 'host.name', type: 'string', value: 'frontend-host' },
        ],
      },
      p2: {
        serviceName: 'payment',
        tags: [
          { key: 'service.version', type: 'string', value: '2.0.1' },
          { key: 'host.name', type: 'string', value: 'payment-host' },
        ],
      },
    },
    warnings: null,
  };
}

describe('Jaeger API as Grafana calls it', () => {
  it('lists services', async () => {
    const { status, body } = await jaeger('/api/services');
    expect(status).toBe(200);
    expect(body).toEqual(envelope(['frontend', 'payment'], 2));
  });

  it('lists operations of a service', async () => {
    const { status, body } = await jaeger('/api/services/frontend/operations');
    expect(status).toBe(200);
    expect(body).toEqual(envelope(['GET /cart', 'GET /checkout', 'POST', 'audit'], 4));
  });

  it('searches with every filter Grafana sends', async () => {
    const query = new URLSearchParams({
      service: 'frontend',
      operation: 'GET /checkout',
      tags: JSON.stringify({ 'http.response.status_code': '200', 'cache.hit': 'true' }),
      minDuration: '100ms',
      maxDuration: '1.5s',
      limit: '20',
      start: micros(now - 3_600_000),
      end: micros(now),
      lookback: 'custom',
    });
    const { status, body } = await jaeger(`/api/traces?${query}`);
    expect(status).toBe(200);
    expect(body).toEqual(envelope([expectedTrace(checkout)], 1));
  });

  it('excludes traces that miss a filter', async () => {
    const base = { service: 'frontend', start: micros(now - 3_600_000), end: micros(now) };
    const misses: Record<string, string>[] = [
      { minDuration: '121ms' },
      { maxDuration: '50us' },
      { tags: JSON.stringify({ 'http.response.status_code': '500' }) },
      { operation: 'GET /nowhere' },
      { start: micros(now - 30_000) },
    ];
    for (const miss of misses) {
      const { status, body } = await jaeger(
        `/api/traces?${new URLSearchParams({ ...base, ...miss })}`,
      );
      expect([miss, status]).toEqual([miss, 200]);
      expect([miss, body.data]).toEqual([miss, []]);
    }
  });

  it('gets a trace by id', async () => {
    const { status, body } = await jaeger(`/api/traces/${checkout.traceId}`);
    expect(status).toBe(200);
    expect(body).toEqual(envelope([expectedTrace(checkout)], 1));
  });

  it('accepts trace time bounds in microseconds and milliseconds', async () => {
    const inMicros = await jaeger(
      `/api/traces/${checkout.traceId}?start=${micros(now - 120_000)}&end=${micros(now)}`,
    );
    const inMillis = await jaeger(
      `/api/traces/${checkout.traceId}?start=${now - 120_000}&end=${now}`,
    );
    expect(inMicros.status).toBe(200);
    expect(inMillis.status).toBe(200);
    expect(inMicros.body.data[0].traceID).toBe(checkout.traceId);
    expect(inMillis.body.data[0].traceID).toBe(checkout.traceId);
  });

  it('returns the dependency graph', async () => {
    const { status, body } = await jaeger(`/api/dependencies?endTs=${now}&lookback=3600000`);
    expect(status).toBe(200);
    expect(body).toEqual(envelope([{ parent: 'frontend', child: 'payment', callCount: 2 }], 1));
  });
});

describe('Jaeger API as the Jaeger UI calls it', () => {
  it('lists operations by span kind', async () => {
    const { status, body } = await jaeger('/api/operations?service=frontend&spanKind=server');
    expect(status).toBe(200);
    expect(body).toEqual(
      envelope(
        [
          { name: 'GET /cart', spanKind: 'server' },
          { name: 'GET /checkout', spanKind: 'server' },
        ],
        2,
      ),
    );
  });

  it('searches by lookback with empty fields', async () => {
    const { status, body } = await jaeger(
      `/api/traces?end=${micros(now)}&limit=20&lookback=1h&maxDuration&minDuration&service=payment&start=${micros(now - 3_600_000)}`,
    );
    expect(status).toBe(200);
    expect(body.data.map((item: any) => item.traceID)).toEqual([checkout.traceId, cart.traceId]);
    expect(body.total).toBe(2);
  });

  it('applies the limit newest first', async () => {
    const { body } = await jaeger(`/api/traces?service=payment&limit=1&lookback=2h`);
    expect(body.data.map((item: any) => item.traceID)).toEqual([checkout.traceId]);
  });

  it('filters by error tag and tag pairs', async () => {
    const errors = await jaeger(
      `/api/traces?service=payment&lookback=1h&tags=${encodeURIComponent('{"error":"true"}')}`,
    );
    expect(errors.body.data).toHaveLength(2);
    const pair = await jaeger(`/api/traces?service=frontend&lookback=1h&tag=span.kind:client`);
    expect(pair.body.data).toHaveLength(2);
    const amount = await jaeger(
      `/api/traces?service=payment&lookback=1h&tag=payment.amount:1999&tag=host.name:payment-host`,
    );
    expect(amount.body.data).toHaveLength(2);
    const wrongHost = await jaeger(`/api/traces?service=payment&lookback=1h&tag=host.name:other`);
    expect(wrongHost.body.data).toEqual([]);
  });

  it('gets several traces by traceID', async () => {
    const { status, body } = await jaeger(
      `/api/traces?traceID=${checkout.traceId}&traceID=${cart.traceId}&traceID=${'f'.repeat(32)}`,
    );
    expect(status).toBe(200);
    expect(body).toEqual(envelope([expectedTrace(checkout), expectedTrace(cart, 'GET /cart')], 2));
  });

  it('answers an unknown trace with 404', async () => {
    const { status, body } = await jaeger(`/api/traces/${'a'.repeat(32)}`);
    expect(status).toBe(404);
    expect(body).toEqual({
      data: null,
      total: 0,
      limit: 0,
      offset: 0,
      errors: [{ code: 404, msg: 'FL_TRACE_NOT_FOUND: trace not found' }],
    });
  });

  it.each([
    ['minDuration=soon', 'invalid minDuration "soon"'],
    ['start=yesterday', 'invalid start "yesterday"'],
    ['limit=0', 'invalid limit "0"'],
    ['tags=notjson', 'invalid tags "notjson"'],
    ['tag=nocolon', 'invalid tag "nocolon"'],
    ['spanKind=sideways', ''],
  ])('rejects %s', async (query, message) => {
    const path = query.startsWith('spanKind')
      ? `/api/operations?service=frontend&${query}`
      : `/api/traces?service=frontend&${query}`;
    const { status, body } = await jaeger(path);
    expect(status).toBe(400);
    expect(body.data).toBeNull();
    expect(body.errors[0].code).toBe(400);
    expect(body.errors[0].msg).toContain('FL_INVALID_PARAMETER');
    expect(body.errors[0].msg).toContain(message || 'invalid spanKind "sideways"');
  });
});

describe('Jaeger API v3', () => {
  it('lists services and operations', async () => {
    const services = await jaeger('/api/v3/services');
    expect(services.body).toEqual({ services: ['frontend', 'payment'] });
    const operations = await jaeger('/api/v3/operations?service=frontend&span_kind=client');
    expect(operations.body).toEqual({ operations: [{ name: 'POST', spanKind: 'client' }] });
  });

  it('gets a trace as OTLP JSON', async () => {
    const { status, body } = await jaeger(`/api/v3/traces/${checkout.traceId}`);
    expect(status).toBe(200);
    const [frontend, payment] = body.result.resourceSpans;
    expect(frontend.resource.attributes).toEqual([
      { key: 'service.name', value: { stringValue: 'frontend' } },
      { key: 'service.version', value: { stringValue: '1.4.2' } },
      { key: 'host.name', value: { stringValue: 'frontend-host' } },
    ]);
    expect(frontend.scopeSpans).toHaveLength(1);
    expect(frontend.scopeSpans[0].scope).toEqual({
      name: 'checkout-scope',
      version: '0.9.0',
      attributes: [],
    });
    expect(frontend.scopeSpans[0].spans.map((span: any) => span.name)).toEqual([
      'GET /checkout',
      'POST',
      'audit',
    ]);
    const charge = payment.scopeSpans[0].spans[0];
    expect(charge).toEqual({
      traceId: checkout.traceId,
      spanId: id(checkout.charge),
      traceState: '',
      parentSpanId: id(checkout.call),
      flags: expect.any(Number),
      name: 'POST /charge',
      kind: 2,
      startTimeUnixNano: String(BigInt(checkout.startMs + 15) * 1_000_000n),
      endTimeUnixNano: String(BigInt(checkout.startMs + 85) * 1_000_000n),
      attributes: [{ key: 'payment.amount', value: { intValue: '1999' } }],
      droppedAttributesCount: 0,
      events: [
        {
          timeUnixNano: String(BigInt(checkout.startMs + 60) * 1_000_000n),
          name: 'exception',
          attributes: [
            { key: 'exception.type', value: { stringValue: 'CardDeclined' } },
            { key: 'exception.stacktrace', value: { stringValue: STACKTRACE } },
          ],
          droppedAttributesCount: 0,
        },
      ],
      droppedEventsCount: 0,
      links: [],
      droppedLinksCount: 0,
      status: { code: 2, message: 'card declined' },
    });
    expect(charge.flags & 0xff).toBe(1);
    const audit = frontend.scopeSpans[0].spans[2];
    expect(audit.kind).toBe(1);
    expect(audit.links).toEqual([
      {
        traceId: checkout.traceId,
        spanId: id(checkout.charge),
        traceState: '',
        attributes: [],
        droppedAttributesCount: 0,
        flags: expect.any(Number),
      },
    ]);
  });

  it('searches traces with attributes', async () => {
    const range = {
      'query.start_time_min': new Date(now - 120_000).toISOString(),
      'query.start_time_max': new Date(now).toISOString(),
    };
    const hit = new URLSearchParams({
      'query.service_name': 'payment',
      'query.operation_name': 'POST /charge',
      'query.attributes[payment.amount]': '1999',
      'query.duration_min': '50ms',
      'query.search_depth': '5',
      ...range,
    });
    const found = await jaeger(`/api/v3/traces?${hit}`);
    expect(found.status).toBe(200);
    const traceIds = found.body.result.resourceSpans.flatMap((resource: any) =>
      resource.scopeSpans.flatMap((scope: any) => scope.spans.map((span: any) => span.traceId)),
    );
    expect(new Set(traceIds)).toEqual(new Set([checkout.traceId]));
    const miss = new URLSearchParams({
      'query.service_name': 'payment',
      'query.attributes[payment.amount]': '5',
      ...range,
    });
    expect((await jaeger(`/api/v3/traces?${miss}`)).body).toEqual({
      result: { resourceSpans: [] },
    });
  });

  it('answers errors in the gateway shape', async () => {
    const missing = await jaeger(`/api/v3/traces/${'b'.repeat(32)}`);
    expect(missing.status).toBe(404);
    expect(missing.body.error.httpCode).toBe(404);
    expect(missing.body.error.message).toContain('FL_TRACE_NOT_FOUND');
    const noService = await jaeger('/api/v3/traces');
    expect(noService.status).toBe(400);
    expect(noService.body.error.message).toContain('missing query.service_name');
  });
});

describe('trace as OTLP JSON', () => {
  it('matches the v3 result', async () => {
    const otlp = await getJson(faultline.queryUrl, `/api/traces/${checkout.traceId}?format=otlp`);
    const v3 = await jaeger(`/api/v3/traces/${checkout.traceId}`);
    expect(otlp.status).toBe(200);
    expect(otlp.body).toEqual(v3.body.result);
  });

  it('rejects an unknown format', async () => {
    const { status, body } = await getJson(
      faultline.queryUrl,
      `/api/traces/${checkout.traceId}?format=xml`,
    );
    expect(status).toBe(400);
    expect(body.error.code).toBe('FL_INVALID_PARAMETER');
    expect(body.error.message).toContain('invalid format "xml"');
  });
});

// Runs last: it stores a trace of another service, which the listings above would show.
describe('tag search on typed resource attributes', () => {
  it('matches float and bool resource attributes', async () => {
    const startNs = BigInt(now - 30_000) * 1_000_000n;
    const resource = {
      attributes: [
        { key: 'service.name', value: { stringValue: 'typed-resource' } },
        { key: 'node.weight', value: { doubleValue: 0.5 } },
        { key: 'node.canary', value: { boolValue: true } },
      ],
    };
    const span = {
      traceId: 'ab'.repeat(16),
      spanId: 'cd'.repeat(8),
      name: 'work',
      kind: 2,
      startTimeUnixNano: String(startNs),
      endTimeUnixNano: String(startNs + 1_000_000n),
    };
    const sent = await fetch(`${faultline.otlpUrl}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ resourceSpans: [{ resource, scopeSpans: [{ spans: [span] }] }] }),
    });
    expect(sent.status).toBe(200);
    await faultline.flush();
    const search = (tags: string) =>
      jaeger(`/api/traces?service=typed-resource&lookback=1h&${tags}`);
    expect((await search('tag=node.weight:0.5&tag=node.canary:true')).body.data).toHaveLength(1);
    expect((await search('tag=node.canary:false')).body.data).toEqual([]);
    expect((await search('tag=node.weight:0.75')).body.data).toEqual([]);
  });
});
