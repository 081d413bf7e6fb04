import { context, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

/** Stack trace of the exception event on the payment span, three lines. */
export const STACKTRACE =
  'CardDeclined: card declined\n    at charge (payment.js:10:5)\n    at handle (payment.js:20:3)';

/** A checkout trace sent through a real OTLP/HTTP exporter, with the values the APIs must return. */
export interface CheckoutTrace {
  traceId: string;
  /** Epoch milliseconds of the root span's start. */
  startMs: number;
  root: Span;
  call: Span;
  charge: Span;
  audit: Span;
}

function provider(otlpUrl: string, serviceName: string, version: string) {
  return new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': serviceName,
      'service.version': version,
      'host.name': `${serviceName}-host`,
    }),
    spanProcessors: [
      new SimpleSpanProcessor(new OTLPTraceExporter({ url: `${otlpUrl}/v1/traces` })),
    ],
  });
}

/**
 * Sends one trace in which `frontend` serves GET /checkout (120ms) and calls `payment`
 * (POST, 503, 80ms). The server span POST /charge fails with an exception event, and
 * `frontend` also records an INTERNAL audit span that links to the charge. Times are
 * whole milliseconds from `startMs`, so every converted time can be checked exactly.
 */
export async function sendCheckoutTrace(
  otlpUrl: string,
  startMs: number,
  rootName = 'GET /checkout',
): Promise<CheckoutTrace> {
  const frontend = provider(otlpUrl, 'frontend', '1.4.2');
  const payment = provider(otlpUrl, 'payment', '2.0.1');
  const at = (offsetMs: number) => new Date(startMs + offsetMs);
  const frontendTracer = frontend.getTracer('checkout-scope', '0.9.0');

  const root = frontendTracer.startSpan(rootName, {
    kind: SpanKind.SERVER,
    startTime: at(0),
    attributes: {
      'http.request.method': 'GET',
      'http.response.status_code': 200,
      'sample.ratio': 0.25,
      'cache.hit': true,
      'order.items': ['book', 'pen'],
    },
  });
  const rootContext = trace.setSpan(context.active(), root);
  const call = frontendTracer.startSpan(
    'POST',
    {
      kind: SpanKind.CLIENT,
      startTime: at(10),
      attributes: { 'peer.service': 'payment', 'http.response.status_code': 503 },
    },
    rootContext,
  );
  call.addEvent('retry', { attempt: 2 }, at(50));
  call.setStatus({ code: SpanStatusCode.ERROR, message: 'payment answered 503' });

  const charge = payment
    .getTracer('payment-scope')
    .startSpan(
      'POST /charge',
      { kind: SpanKind.SERVER, startTime: at(15), attributes: { 'payment.amount': 1999 } },
      trace.setSpan(context.active(), call),
    );
  charge.addEvent(
    'exception',
    { 'exception.type': 'CardDeclined', 'exception.stacktrace': STACKTRACE },
    at(60),
  );
  charge.setStatus({ code: SpanStatusCode.ERROR, message: 'card declined' });
  charge.end(at(85));
  call.end(at(90));

  const audit = frontendTracer.startSpan(
    'audit',
    { kind: SpanKind.INTERNAL, startTime: at(95), links: [{ context: charge.spanContext() }] },
    rootContext,
  );
  audit.end(at(100));
  root.end(at(120));

  await Promise.all([frontend.forceFlush(), payment.forceFlush()]);
  await Promise.all([frontend.shutdown(), payment.shutdown()]);
  return { traceId: root.spanContext().traceId, startMs, root, call, charge, audit };
}

/** Polls until `check` returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs}ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
