import { context, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { OTLPTraceExporter as OtlpHttpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpHttpProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  SimpleSpanProcessor,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { getJson, startTestFaultline, type TestFaultline } from './helpers/faultline';

let faultline: TestFaultline;

beforeAll(async () => {
  faultline = await startTestFaultline();
});

afterAll(async () => {
  await faultline.stop();
});

interface SentTrace {
  traceId: string;
  root: Span;
  child: Span;
  linked: Span;
}

/** Sends one three-span trace through a real exporter and waits for the export to finish. */
async function sendTrace(exporter: SpanExporter, serviceName: string): Promise<SentTrace> {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': serviceName,
      'service.version': '2.3.4',
      'deployment.environment.name': 'staging',
      'host.name': 'test-host',
    }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('roundtrip-scope', '1.0.1');

  const root = tracer.startSpan('GET /orders/:id', {
    kind: SpanKind.SERVER,
    attributes: {
      'http.request.method': 'GET',
      'http.response.status_code': 200,
      'retry.ratio': 0.25,
      'cache.hit': true,
      'order.tags': ['a', 'b'],
    },
  });
  const rootContext = trace.setSpan(context.active(), root);
  const child = tracer.startSpan(
    'SELECT orders',
    { kind: SpanKind.CLIENT, attributes: { 'db.system': 'postgresql', 'db.namespace': 'shop' } },
    rootContext,
  );
  child.addEvent('exception', {
    'exception.type': 'TimeoutError',
    'exception.message': 'query took 5000ms',
  });
  child.setStatus({ code: SpanStatusCode.ERROR, message: 'query timed out' });
  child.end();

  const linked = tracer.startSpan(
    'process batch',
    {
      kind: SpanKind.CONSUMER,
      links: [{ context: child.spanContext(), attributes: { 'link.reason': 'batch' } }],
    },
    rootContext,
  );
  linked.end();
  root.end();

  await provider.forceFlush();
  await provider.shutdown();
  return { traceId: root.spanContext().traceId, root, child, linked };
}

function findSpan(view: any, spanId: string): any {
  const stack = [...view.roots];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node.spanId === spanId) return node;
    stack.push(...node.children);
  }
  return undefined;
}

describe.each([
  ['OTLP/HTTP JSON', (url: string) => new OtlpHttpJsonExporter({ url: `${url}/v1/traces` })],
  ['OTLP/HTTP protobuf', (url: string) => new OtlpHttpProtoExporter({ url: `${url}/v1/traces` })],
])('roundtrip through %s exporter', (_name, makeExporter) => {
  let sent: SentTrace;
  let view: any;
  const serviceName = `orders-${_name.includes('JSON') ? 'json' : 'proto'}`;

  beforeAll(async () => {
    sent = await sendTrace(makeExporter(faultline.otlpUrl), serviceName);
    await faultline.app.collector!.flush();
    const { status, body } = await getJson(faultline.queryUrl, `/api/traces/${sent.traceId}`);
    expect(status).toBe(200);
    view = body;
  });

  it('stores every span of the trace', () => {
    expect(view.traceId).toBe(sent.traceId);
    expect(view.spanCount).toBe(3);
    expect(view.services).toEqual([serviceName]);
  });

  it('keeps root span fields', () => {
    const root = findSpan(view, sent.root.spanContext().spanId);
    expect(root.name).toBe('GET /orders/:id');
    expect(root.kind).toBe('SERVER');
    expect(root.parentSpanId).toBe('');
    expect(root.isError).toBe(false);
    expect(root.serviceVersion).toBe('2.3.4');
    expect(root.scope).toEqual({ name: 'roundtrip-scope', version: '1.0.1', attributes: {} });
  });

  it('keeps typed attributes', () => {
    const root = findSpan(view, sent.root.spanContext().spanId);
    expect(root.attributes['http.request.method']).toBe('GET');
    expect(root.attributes['http.response.status_code']).toBe(200);
    expect(root.attributes['retry.ratio']).toBe(0.25);
    expect(root.attributes['cache.hit']).toBe(true);
    expect(root.attributes['order.tags']).toEqual(['a', 'b']);
  });

  it('keeps resource attributes', () => {
    const root = findSpan(view, sent.root.spanContext().spanId);
    expect(root.resource['service.name']).toBe(serviceName);
    expect(root.resource['service.version']).toBe('2.3.4');
    expect(root.resource['deployment.environment.name']).toBe('staging');
    expect(root.resource['host.name']).toBe('test-host');
  });

  it('nests the child with status and events', () => {
    const root = findSpan(view, sent.root.spanContext().spanId);
    const child = root.children.find(
      (node: any) => node.spanId === sent.child.spanContext().spanId,
    );
    expect(child).toBeDefined();
    expect(child.parentSpanId).toBe(sent.root.spanContext().spanId);
    expect(child.kind).toBe('CLIENT');
    expect(child.status).toEqual({ code: 'ERROR', message: 'query timed out' });
    expect(child.isError).toBe(true);
    expect(child.events).toHaveLength(1);
    expect(child.events[0].name).toBe('exception');
    expect(child.events[0].attributes).toEqual({
      'exception.type': 'TimeoutError',
      'exception.message': 'query took 5000ms',
    });
    expect(BigInt(child.endTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(child.startTimeUnixNano));
  });

  it('keeps links', () => {
    const linked = findSpan(view, sent.linked.spanContext().spanId);
    expect(linked.kind).toBe('CONSUMER');
    expect(linked.links).toEqual([
      {
        traceId: sent.traceId,
        spanId: sent.child.spanContext().spanId,
        traceState: '',
        attributes: { 'link.reason': 'batch' },
      },
    ]);
  });

  it('lists the service and its operations', async () => {
    const services = await getJson(faultline.queryUrl, '/api/services');
    expect(services.body.data).toContain(serviceName);
    const operations = await getJson(faultline.queryUrl, `/api/services/${serviceName}/operations`);
    expect(operations.body.data).toEqual(
      expect.arrayContaining([
        { name: 'GET /orders/:id', spanKind: 'SERVER' },
        { name: 'SELECT orders', spanKind: 'CLIENT' },
        { name: 'process batch', spanKind: 'CONSUMER' },
      ]),
    );
  });

  it('finds the trace by service and duration', async () => {
    const { body } = await getJson(
      faultline.queryUrl,
      `/api/traces?service=${serviceName}&operation=${encodeURIComponent('SELECT orders')}&minDuration=0ms`,
    );
    expect(body.data.map((item: any) => item.traceId)).toEqual([sent.traceId]);
    expect(body.data[0].rootName).toBe('GET /orders/:id');
    expect(body.data[0].spanCount).toBe(3);
    expect(body.data[0].errorCount).toBe(1);
  });

  it('makes a virtual dependency edge for the database', async () => {
    const { body } = await getJson(faultline.queryUrl, '/api/dependencies');
    const edge = body.data.find((item: any) => item.caller === serviceName);
    expect(edge).toMatchObject({
      callee: 'postgresql/shop',
      virtualCallee: true,
      calls: 1,
      errors: 1,
    });
  });
});
