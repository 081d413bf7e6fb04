import { startTestFaultline, type TestFaultline } from './helpers/faultline';
import { sendCheckoutTrace, STACKTRACE, type CheckoutTrace } from './helpers/trace-fixture';

let faultline: TestFaultline;
let checkout: CheckoutTrace;
let now: number;
let shopCallMs: number;

beforeAll(async () => {
  faultline = await startTestFaultline({
    zipkinAutocompleteKeys: [
      'http.request.method',
      'http.response.status_code',
      'host.name',
      'cache.hit',
      'sample.ratio',
    ],
  });
  now = Date.now();
  checkout = await sendCheckoutTrace(faultline.otlpUrl, now - 60_000);
  shopCallMs = now - 2 * 3_600_000;
  await sendShopCall(shopCallMs);
  await faultline.flush();
});

afterAll(async () => {
  await faultline.stop();
});

/**
 * Sends a call from shop to billing in which the client span records only the address,
 * two hours back, outside the hour that the dependency test reads. It goes in before any
 * test reads edges, because a minute is resolved into edges once.
 */
async function sendShopCall(startMs: number): Promise<void> {
  const start = BigInt(startMs) * 1_000_000n;
  const span = (service: string, spanId: string, fields: Record<string, unknown>) => ({
    resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
    scopeSpans: [
      {
        spans: [
          {
            traceId: 'e1'.repeat(16),
            spanId,
            startTimeUnixNano: String(start),
            endTimeUnixNano: String(start + 5_000_000n),
            ...fields,
          },
        ],
      },
    ],
  });
  const client = span('shop', 'a1'.repeat(8), {
    name: 'POST',
    kind: 3,
    attributes: [{ key: 'server.address', value: { stringValue: '10.0.0.5' } }],
  });
  const server = span('billing', 'b1'.repeat(8), {
    name: 'POST /charge',
    kind: 2,
    parentSpanId: 'a1'.repeat(8),
  });
  const response = await fetch(`${faultline.otlpUrl}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ resourceSpans: [client, server] }),
  });
  if (response.status !== 200)
    throw new Error(`shop call rejected with ${response.status}: ${await response.text()}`);
}

async function zipkin(path: string): Promise<{ status: number; type: string; body: any }> {
  const response = await fetch(`${faultline.queryUrl}/zipkin${path}`);
  const type = response.headers.get('content-type') ?? '';
  const text = await response.text();
  return { status: response.status, type, body: type.includes('json') ? JSON.parse(text) : text };
}

const id = (span: { spanContext(): { spanId: string } }) => span.spanContext().spanId;

/** Builds the Zipkin v2 JSON of the trace, span by span. */
function expectedSpans(sent: CheckoutTrace) {
  const at = (offsetMs: number) => (sent.startMs + offsetMs) * 1000;
  const frontendTags = { 'service.version': '1.4.2', 'host.name': 'frontend-host' };
  const scope = { 'otel.scope.name': 'checkout-scope', 'otel.scope.version': '0.9.0' };
  return [
    {
      traceId: sent.traceId,
      id: id(sent.root),
      kind: 'SERVER',
      name: 'GET /checkout',
      timestamp: at(0),
      duration: 120_000,
      localEndpoint: { serviceName: 'frontend' },
      tags: {
        ...frontendTags,
        'cache.hit': 'true',
        'http.request.method': 'GET',
        'http.response.status_code': '200',
        'order.items': '["book","pen"]',
        'sample.ratio': '0.25',
        ...scope,
      },
    },
    {
      traceId: sent.traceId,
      parentId: id(sent.root),
      id: id(sent.call),
      kind: 'CLIENT',
      name: 'POST',
      timestamp: at(10),
      duration: 80_000,
      localEndpoint: { serviceName: 'frontend' },
      remoteEndpoint: { serviceName: 'payment' },
      annotations: [{ timestamp: at(50), value: '"retry": {"attempt":2}' }],
      tags: {
        ...frontendTags,
        'http.response.status_code': '503',
        'peer.service': 'payment',
        'otel.status_code': 'ERROR',
        error: 'payment answered 503',
        ...scope,
      },
    },
    {
      traceId: sent.traceId,
      parentId: id(sent.call),
      id: id(sent.charge),
      kind: 'SERVER',
      name: 'POST /charge',
      timestamp: at(15),
      duration: 70_000,
      localEndpoint: { serviceName: 'payment' },
      annotations: [
        {
          timestamp: at(60),
          value: `"exception": ${JSON.stringify({ 'exception.type': 'CardDeclined', 'exception.stacktrace': STACKTRACE })}`,
        },
      ],
      tags: {
        'service.version': '2.0.1',
        'host.name': 'payment-host',
        'payment.amount': '1999',
        'otel.status_code': 'ERROR',
        error: 'card declined',
        'otel.scope.name': 'payment-scope',
      },
    },
    {
      traceId: sent.traceId,
      parentId: id(sent.root),
      id: id(sent.audit),
      name: 'audit',
      timestamp: at(95),
      duration: 5_000,
      localEndpoint: { serviceName: 'frontend' },
      tags: { ...frontendTags, ...scope },
    },
  ];
}

describe('Zipkin v2 read API', () => {
  it('offers configured tag keys and their values', async () => {
    const keys = (await zipkin('/api/v2/autocompleteKeys')).body;
    expect(keys).toContain('http.response.status_code');
    expect(keys).toContain('http.request.method');
    const values = (key: string) => zipkin(`/api/v2/autocompleteValues?key=${key}`);
    expect((await values('http.response.status_code')).body).toEqual(['200', '503']);
    expect((await values('http.request.method')).body).toEqual(['GET']);
    expect((await values('payment.amount')).body).toEqual([]);
    expect((await values('host.name')).body).toEqual(['frontend-host', 'payment-host']);
    expect((await values('cache.hit')).body).toEqual(['true']);
    expect((await values('sample.ratio')).body).toEqual(['0.25']);
    const missing = await zipkin('/api/v2/autocompleteValues');
    expect(missing.status).toBe(400);
    expect(missing.body).toContain('missing key');
  });

  it('lists services, span names and remote services', async () => {
    expect((await zipkin('/api/v2/services')).body).toEqual([
      'billing',
      'frontend',
      'payment',
      'shop',
    ]);
    expect((await zipkin('/api/v2/spans?serviceName=frontend')).body).toEqual([
      'GET /checkout',
      'POST',
      'audit',
    ]);
    expect((await zipkin('/api/v2/remoteServices?serviceName=frontend')).body).toEqual(['payment']);
  });

  it('names remote services as dependencies do', async () => {
    // The client span alone records the address; the server span names the service.
    const window = `endTs=${shopCallMs + 60_000}&lookback=600000`;
    expect((await zipkin(`/api/v2/remoteServices?serviceName=shop&${window}`)).body).toEqual([
      'billing',
    ]);
  });

  it('gets a trace by id', async () => {
    const { status, body } = await zipkin(`/api/v2/trace/${checkout.traceId}`);
    expect(status).toBe(200);
    expect(body).toEqual(expectedSpans(checkout));
  });

  it('searches as the Zipkin UI does', async () => {
    const query = new URLSearchParams({
      serviceName: 'frontend',
      spanName: 'POST',
      remoteServiceName: 'payment',
      annotationQuery: 'error and peer.service=payment',
      minDuration: '50000',
      maxDuration: '100000',
      endTs: String(now),
      lookback: '3600000',
      limit: '10',
    });
    const { status, body } = await zipkin(`/api/v2/traces?${query}`);
    expect(status).toBe(200);
    expect(body).toEqual([expectedSpans(checkout)]);
  });

  it('excludes traces that miss a filter', async () => {
    for (const miss of [
      'minDuration=130000',
      'annotationQuery=peer.service%3Dinventory',
      'remoteServiceName=inventory',
      `endTs=${now - 120_000}&lookback=60000`,
    ]) {
      const { body } = await zipkin(`/api/v2/traces?serviceName=frontend&${miss}`);
      expect([miss, body]).toEqual([miss, []]);
    }
  });

  it('gets many traces and dependencies with errors', async () => {
    const many = await zipkin(`/api/v2/traceMany?traceIds=${checkout.traceId},${'c'.repeat(16)}`);
    expect(many.body).toEqual([expectedSpans(checkout)]);
    const links = await zipkin(`/api/v2/dependencies?endTs=${now}&lookback=3600000`);
    expect(links.body).toEqual([
      { parent: 'frontend', child: 'payment', callCount: 1, errorCount: 1 },
    ]);
  });

  it('answers errors as text', async () => {
    const missing = await zipkin(`/api/v2/trace/${'d'.repeat(32)}`);
    expect(missing.status).toBe(404);
    expect(missing.type).toContain('text/plain');
    expect(missing.body).toBe(`FL_TRACE_NOT_FOUND: trace ${'d'.repeat(32)} not found`);
    const noService = await zipkin('/api/v2/spans');
    expect(noService.status).toBe(400);
    expect(noService.body).toContain('missing serviceName');
    const badDuration = await zipkin('/api/v2/traces?minDuration=1s');
    expect(badDuration.status).toBe(400);
    expect(badDuration.body).toContain('invalid minDuration "1s"');
  });
});
