import { SpanKind, SpanStatusCode, type Attributes, type HrTime } from '@opentelemetry/api';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base';

/**
 * Realistic synthetic traces for benchmarks and storage tests: 10 to 30 spans a trace
 * across five services, about 15 attributes a span, a few events, client/server pairs
 * for service calls and client spans to a database that sends no spans. The spans are
 * the SDK's `ReadableSpan`s, so the OpenTelemetry exporters' serializers encode them
 * exactly as a real service would.
 */

/** Deterministic pseudo-random numbers (mulberry32), so every run sends the same data. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SERVICES = ['frontend', 'checkout', 'payment', 'inventory', 'shipping'];
const CALLEES: Record<string, string[]> = {
  frontend: ['checkout', 'inventory', 'shipping'],
  checkout: ['payment', 'inventory', 'shipping'],
  payment: [],
  inventory: [],
  shipping: [],
};
const ROUTES = ['/api/cart', '/api/orders/:id', '/api/charge', '/api/stock/:sku', '/api/quote'];
const USER_AGENTS = ['Mozilla/5.0 (X11; Linux x86_64)', 'okhttp/4.12.0', 'python-requests/2.32'];

const resources = new Map<string, Resource>();
function serviceResource(service: string): Resource {
  let resource = resources.get(service);
  if (!resource) {
    resource = resourceFromAttributes({
      'service.name': service,
      'service.version': '1.4.2',
      'deployment.environment.name': 'production',
      'host.name': `${service}-7c9d8f6b5-x2k4q`,
      'telemetry.sdk.language': 'nodejs',
      'telemetry.sdk.name': 'opentelemetry',
      'telemetry.sdk.version': '2.12.0',
    });
    resources.set(service, resource);
  }
  return resource;
}

function hexId(random: () => number, bytes: number): string {
  let text = '';
  for (let index = 0; index < bytes; index += 1) {
    text += Math.floor(random() * 256)
      .toString(16)
      .padStart(2, '0');
  }
  return /^0+$/.test(text) ? `${text.slice(0, -1)}1` : text;
}

function hrTime(ns: bigint): HrTime {
  return [Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)];
}

interface SpanDraft {
  service: string;
  name: string;
  kind: SpanKind;
  spanId: string;
  parentSpanId?: string;
  startNs: bigint;
  durationNs: bigint;
  attributes: Attributes;
  isError: boolean;
}

function httpAttributes(random: () => number, server: boolean, status: number): Attributes {
  const route = ROUTES[Math.floor(random() * ROUTES.length)];
  return {
    'http.request.method': random() < 0.7 ? 'GET' : 'POST',
    'http.route': route,
    'url.path': route.replace(':id', String(Math.floor(random() * 100000))),
    'url.scheme': 'http',
    'server.address': server ? 'localhost' : 'checkout.internal',
    'server.port': 8080,
    'http.response.status_code': status,
    'network.protocol.version': '1.1',
    'user_agent.original': USER_AGENTS[Math.floor(random() * USER_AGENTS.length)],
    'client.address': `10.0.${Math.floor(random() * 4)}.${Math.floor(random() * 250)}`,
    'thread.id': Math.floor(random() * 16),
    'code.function': server ? 'handleRequest' : 'fetchUpstream',
    'app.user_id': `user-${Math.floor(random() * 5000)}`,
    'app.cache_hit': random() < 0.3,
    'app.request_bytes': Math.floor(random() * 4096),
  };
}

function databaseAttributes(random: () => number): Attributes {
  return {
    'db.system.name': 'postgresql',
    'db.namespace': 'orders',
    'db.operation.name': random() < 0.8 ? 'SELECT' : 'UPDATE',
    'db.query.text': 'SELECT id, total FROM orders WHERE customer_id = $1 LIMIT 20',
    'server.address': 'postgres.internal',
    'server.port': 5432,
    'network.peer.address': '10.0.9.12',
    'db.response.returned_rows': Math.floor(random() * 20),
    'thread.id': Math.floor(random() * 16),
    'code.function': 'queryOrders',
    'app.pool_wait_ms': random() * 3,
    'app.retry': false,
    'app.shard': Math.floor(random() * 8),
    'app.statement_cache': 'hit',
    'app.tenant': `tenant-${Math.floor(random() * 40)}`,
  };
}

/** Generates the spans of one trace: a frontend request and the calls under it. */
function traceDrafts(random: () => number, startNs: bigint): SpanDraft[] {
  const target = 10 + Math.floor(random() * 21);
  const failing = random() < 0.05;
  const root: SpanDraft = {
    service: 'frontend',
    name: 'GET /api/cart',
    kind: SpanKind.SERVER,
    spanId: hexId(random, 8),
    startNs,
    durationNs: BigInt(20_000_000 + Math.floor(random() * 80_000_000)),
    attributes: httpAttributes(random, true, failing ? 500 : 200),
    isError: failing,
  };
  const drafts = [root];
  const servers = [root];
  while (drafts.length < target) {
    const parent = servers[Math.floor(random() * servers.length)];
    const offset = BigInt(Math.floor(random() * Number(parent.durationNs / 2n)));
    const durationNs = parent.durationNs / 3n + BigInt(Math.floor(random() * 1_000_000));
    const client: SpanDraft = {
      service: parent.service,
      name: 'GET',
      kind: SpanKind.CLIENT,
      spanId: hexId(random, 8),
      parentSpanId: parent.spanId,
      startNs: parent.startNs + offset,
      durationNs,
      attributes: {},
      isError: false,
    };
    const callees = CALLEES[parent.service];
    if (callees.length === 0 || random() < 0.25) {
      client.name = 'SELECT orders';
      client.attributes = databaseAttributes(random);
      drafts.push(client);
      continue;
    }
    const callee = callees[Math.floor(random() * callees.length)];
    const status = failing && callee === 'payment' ? 503 : 200;
    client.attributes = httpAttributes(random, false, status);
    client.isError = status >= 500;
    const server: SpanDraft = {
      service: callee,
      name: `${client.attributes['http.request.method']} ${client.attributes['http.route']}`,
      kind: SpanKind.SERVER,
      spanId: hexId(random, 8),
      parentSpanId: client.spanId,
      startNs: client.startNs + 200_000n,
      durationNs: durationNs - 400_000n,
      attributes: httpAttributes(random, true, status),
      isError: status >= 500,
    };
    drafts.push(client, server);
    servers.push(server);
  }
  return drafts;
}

function draftEvents(random: () => number, draft: SpanDraft): TimedEvent[] {
  const events: TimedEvent[] = [];
  const count = Math.floor(random() * 3);
  for (let index = 0; index < count; index += 1) {
    events.push({
      name: index === 0 ? 'cache.lookup' : 'retry.scheduled',
      time: hrTime(draft.startNs + BigInt(index * 100_000)),
      attributes: { 'cache.key': `cart:${Math.floor(random() * 1000)}`, 'retry.attempt': index },
    });
  }
  if (draft.isError) {
    events.push({
      name: 'exception',
      time: hrTime(draft.startNs + draft.durationNs),
      attributes: {
        'exception.type': 'UpstreamUnavailable',
        'exception.message': 'payment provider returned 503',
      },
    });
  }
  return events;
}

function toReadableSpan(random: () => number, traceId: string, draft: SpanDraft): ReadableSpan {
  const endNs = draft.startNs + draft.durationNs;
  return {
    name: draft.name,
    kind: draft.kind,
    spanContext: () => ({ traceId, spanId: draft.spanId, traceFlags: 1 }),
    parentSpanContext: draft.parentSpanId
      ? { traceId, spanId: draft.parentSpanId, traceFlags: 1 }
      : undefined,
    startTime: hrTime(draft.startNs),
    endTime: hrTime(endNs),
    duration: hrTime(draft.durationNs),
    status: draft.isError
      ? { code: SpanStatusCode.ERROR, message: 'upstream unavailable' }
      : { code: SpanStatusCode.UNSET },
    attributes: draft.attributes,
    links: [],
    events: draftEvents(random, draft),
    ended: true,
    resource: serviceResource(draft.service),
    instrumentationScope: { name: '@opentelemetry/instrumentation-http', version: '0.223.0' },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

export interface SyntheticOptions {
  seed: number;
  /** Start of the first trace, in ms since the epoch. */
  startMs: number;
  /** Milliseconds between the starts of consecutive traces. */
  traceIntervalMs: number;
}

/** Generates traces one at a time, each as its list of spans. */
export function* syntheticTraces(options: SyntheticOptions): Generator<ReadableSpan[]> {
  const random = seededRandom(options.seed);
  let startNs = BigInt(Math.trunc(options.startMs)) * 1_000_000n;
  const stepNs = BigInt(Math.max(1, Math.round(options.traceIntervalMs * 1e6)));
  for (;;) {
    const traceId = hexId(random, 16);
    yield traceDrafts(random, startNs).map((draft) => toReadableSpan(random, traceId, draft));
    startNs += stepNs;
  }
}

/** Collects whole traces until at least `minSpans` spans. */
export function takeSpans(traces: Generator<ReadableSpan[]>, minSpans: number): ReadableSpan[] {
  const spans: ReadableSpan[] = [];
  while (spans.length < minSpans) spans.push(...traces.next().value!);
  return spans;
}

export { SERVICES };
