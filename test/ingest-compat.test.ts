import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { HrTime } from '@opentelemetry/api';
import { OTLPTraceExporter as OtlpGrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as OtlpHttpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpHttpProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { ZipkinExporter } from '@opentelemetry/exporter-zipkin';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { getJson, startTestFaultline, type TestFaultline } from './helpers/faultline';

const run = promisify(execFile);
let faultline: TestFaultline;

beforeAll(async () => {
  faultline = await startTestFaultline();
});

afterAll(async () => {
  await faultline.stop();
});

/** Sends a four-span trace with every kind of field through a real exporter. */
async function sendTrace(exporter: SpanExporter, serviceName: string): Promise<ReadableSpan[]> {
  const recorded = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName, 'service.version': '9.1.0' }),
    spanProcessors: [new SimpleSpanProcessor(exporter), new SimpleSpanProcessor(recorded)],
  });
  const tracer = provider.getTracer('compat-scope', '3.2.1');
  const root = tracer.startSpan('POST /pay', {
    kind: SpanKind.SERVER,
    attributes: { 'http.request.method': 'POST', 'http.response.status_code': 502, ok: false },
  });
  const inRoot = trace.setSpan(context.active(), root);
  const client = tracer.startSpan(
    'charge',
    { kind: SpanKind.CLIENT, attributes: { 'peer.service': 'bank', 'retry.count': 3 } },
    inRoot,
  );
  client.addEvent('retry', { attempt: 2, 'backoff.ms': 12.5 });
  client.setStatus({ code: SpanStatusCode.ERROR, message: 'bank timed out' });
  client.end();
  const producer = tracer.startSpan('publish', { kind: SpanKind.PRODUCER }, inRoot);
  producer.end();
  const consumer = tracer.startSpan(
    'consume',
    {
      kind: SpanKind.CONSUMER,
      links: [{ context: producer.spanContext(), attributes: { 'link.kind': 'follows' } }],
    },
    inRoot,
  );
  consumer.end();
  root.setStatus({ code: SpanStatusCode.ERROR });
  root.end();
  await provider.forceFlush();
  // Shutting the provider down empties the in-memory exporter, so read it first.
  const finished = recorded.getFinishedSpans();
  await provider.shutdown();
  return finished;
}

async function storedSpans(traceId: string): Promise<Map<string, any>> {
  await faultline.app.collector!.flush();
  const { status, body } = await getJson(faultline.queryUrl, `/api/traces/${traceId}`);
  expect(status).toBe(200);
  const spans = new Map<string, any>();
  const stack = [...body.roots];
  while (stack.length > 0) {
    const node = stack.pop();
    spans.set(`${node.spanId}/${node.kind}`, node);
    stack.push(...node.children);
  }
  return spans;
}

/** Exact nanoseconds of an HrTime; the SDK's own helper rounds through a double. */
function nanos(time: HrTime): bigint {
  return BigInt(time[0]) * 1_000_000_000n + BigInt(time[1]);
}

const KINDS = ['INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];
const STATUS = ['UNSET', 'OK', 'ERROR'];

function expectOtlpFieldsIntact(sent: ReadableSpan, stored: any, serviceName: string): void {
  expect(stored).toBeDefined();
  expect(stored.name).toBe(sent.name);
  expect(stored.parentSpanId).toBe(sent.parentSpanContext?.spanId ?? '');
  expect(stored.serviceName ?? stored.resource['service.name']).toBe(serviceName);
  expect(stored.resource['service.version']).toBe('9.1.0');
  expect(stored.scope).toEqual({ name: 'compat-scope', version: '3.2.1', attributes: {} });
  expect(BigInt(stored.startTimeUnixNano)).toBe(nanos(sent.startTime));
  expect(BigInt(stored.endTimeUnixNano)).toBe(nanos(sent.endTime));
  expect(stored.status).toEqual({
    code: STATUS[sent.status.code],
    message: sent.status.message ?? '',
  });
  expect(stored.attributes).toEqual(sent.attributes);
  expect(stored.events).toEqual(
    sent.events.map((event) => ({
      name: event.name,
      timeUnixNano: String(nanos(event.time)),
      attributes: event.attributes ?? {},
    })),
  );
  expect(stored.links).toEqual(
    sent.links.map((link) => ({
      traceId: link.context.traceId,
      spanId: link.context.spanId,
      traceState: '',
      attributes: link.attributes ?? {},
    })),
  );
}

describe.each([
  [
    'OTLP/HTTP JSON',
    (f: TestFaultline) => new OtlpHttpJsonExporter({ url: `${f.otlpUrl}/v1/traces` }),
  ],
  [
    'OTLP/HTTP protobuf, gzip',
    (f: TestFaultline) =>
      new OtlpHttpProtoExporter({ url: `${f.otlpUrl}/v1/traces`, compression: 'gzip' as any }),
  ],
  [
    'OTLP/gRPC',
    (f: TestFaultline) =>
      new OtlpGrpcExporter({ url: `http://127.0.0.1:${f.app.collector!.grpcPort}` }),
  ],
  [
    'OTLP/gRPC, gzip',
    (f: TestFaultline) =>
      new OtlpGrpcExporter({
        url: `http://127.0.0.1:${f.app.collector!.grpcPort}`,
        compression: 'gzip' as any,
      }),
  ],
])('%s exporter', (name, makeExporter) => {
  const serviceName = `compat-${name.replace(/[^a-z]+/gi, '-').toLowerCase()}`;
  let sent: ReadableSpan[];
  let stored: Map<string, any>;

  beforeAll(async () => {
    sent = await sendTrace(makeExporter(faultline), serviceName);
    stored = await storedSpans(sent[0].spanContext().traceId);
  });

  it('stores every span once', () => {
    expect(stored.size).toBe(4);
  });

  it('keeps every field of every span', () => {
    for (const span of sent) {
      const key = `${span.spanContext().spanId}/${KINDS[span.kind]}`;
      expectOtlpFieldsIntact(span, stored.get(key), serviceName);
    }
  });
});

describe('Zipkin exporter of OpenTelemetry', () => {
  let sent: ReadableSpan[];
  let stored: Map<string, any>;

  beforeAll(async () => {
    const url = `${faultline.otlpUrl}/api/v2/spans`;
    sent = await sendTrace(
      new ZipkinExporter({ url, serviceName: 'compat-zipkin' }),
      'compat-zipkin',
    );
    stored = await storedSpans(sent[0].spanContext().traceId);
  });

  it('stores every span with its ids, kind, name and service', () => {
    expect(stored.size).toBe(4);
    for (const span of sent) {
      const node = stored.get(`${span.spanContext().spanId}/${KINDS[span.kind]}`);
      expect(node.name).toBe(span.name);
      expect(node.parentSpanId).toBe(span.parentSpanContext?.spanId ?? '');
      expect(node.resource['service.name']).toBe('compat-zipkin');
    }
  });

  it('keeps times to the microsecond Zipkin carries', () => {
    for (const span of sent) {
      const node = stored.get(`${span.spanContext().spanId}/${KINDS[span.kind]}`);
      const start = BigInt(node.startTimeUnixNano);
      const duration = BigInt(node.endTimeUnixNano) - start;
      const sentDuration = nanos(span.endTime) - nanos(span.startTime);
      expect(Math.abs(Number(start - nanos(span.startTime)))).toBeLessThanOrEqual(1000);
      expect(Math.abs(Number(duration - sentDuration))).toBeLessThanOrEqual(1000);
    }
  });

  it('maps the error tag to an error status with its message', () => {
    const client = sent.find((span) => span.name === 'charge')!;
    const node = stored.get(`${client.spanContext().spanId}/CLIENT`);
    expect(node.status).toEqual({ code: 'ERROR', message: 'bank timed out' });
    expect(node.isError).toBe(true);
    expect(node.attributes['retry.count']).toBe('3');
    expect(node.events.map((event: any) => event.name)).toEqual(['retry']);
  });
});

describe('py_zipkin, a Zipkin client from Debian', () => {
  let ids: { traceId: string; rootId: string; childId: string };
  let stored: Map<string, any>;

  beforeAll(async () => {
    const script = path.join(__dirname, 'fixtures', 'py_zipkin_client.py');
    const { stdout } = await run('/usr/bin/python3', [script, `${faultline.otlpUrl}/api/v2/spans`]);
    ids = JSON.parse(stdout);
    stored = await storedSpans(ids.traceId.padStart(32, '0'));
  });

  it('sends a 64-bit trace id that is stored left-padded', () => {
    expect(ids.traceId).toHaveLength(16);
    expect(stored.size).toBe(2);
  });

  it('keeps the service, kinds, parent and tags', () => {
    const root = stored.get(`${ids.rootId}/SERVER`);
    const child = stored.get(`${ids.childId}/CLIENT`);
    expect(root.resource['service.name']).toBe('py-frontend');
    expect(root.attributes).toEqual({ 'http.method': 'GET', 'http.status_code': '200' });
    expect(child.parentSpanId).toBe(ids.rootId);
    expect(child.status).toEqual({ code: 'ERROR', message: 'card declined' });
  });

  it('maps the remote endpoint to peer attributes and the called service', () => {
    const child = stored.get(`${ids.childId}/CLIENT`);
    expect(child.attributes).toEqual({
      'peer.service': 'payments',
      'network.peer.address': '10.0.0.7',
      'network.peer.port': 8080,
    });
    expect(child.remoteService ?? 'payments').toBe('payments');
  });
});
