import { randomUUID } from 'node:crypto';
import type { RequestListener } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import express, { type ErrorRequestHandler } from 'express';
import {
  chance,
  databaseFailureMessage,
  FRAUD_SLOW_MS,
  NORMAL_LATENCY_MS,
  PAYMENT_FAILURE_MESSAGE,
  pickStockDelayMs,
  randomBetween,
  shouldFailPayment,
  type FaultSettings,
  type Random,
} from './faults';
import { sendRequest } from './http-client';
import type { LogLevel, ReplicaUrls, ServiceName, ServiceUrls } from './messages';

/** State that a service's handlers read on every request. The parent changes it over IPC. */
export interface ServiceContext {
  downstream: ServiceUrls;
  /** Instances of a downstream service to call round robin, in place of its one URL. */
  replicas: ReplicaUrls;
  faults: FaultSettings;
  random: Random;
  tracer: Tracer;
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void;
}

/** Timeouts of the calls between services, in milliseconds. */
const CALL_TIMEOUT_MS = {
  checkout: 5000,
  payment: 3000,
  fraud: 2500,
  inventory: 4000,
  stockApi: 3000,
};

const PRICE_CENTS = 2599;

export function createRequestListener(
  service: ServiceName,
  context: ServiceContext,
): RequestListener {
  switch (service) {
    case 'frontend':
      return createFrontend(context);
    case 'checkout':
      return createCheckout(context);
    case 'payment':
      return createPayment(context);
    case 'fraud':
      return createFraud(context);
    case 'inventory':
      return createInventory(context);
    case 'stock-api':
      return createStockApi(context);
  }
}

/** GET /checkout?sku=... places an order through checkout. */
function createFrontend(context: ServiceContext): express.Express {
  const app = express();

  app.get('/checkout', async (request, response) => {
    const sku = readSku(request.query.sku);
    if (typeof request.query.user === 'string') {
      trace.getActiveSpan()?.setAttribute('enduser.id', request.query.user);
    }
    const order = await callService(context, 'checkout', '/checkout', {
      method: 'POST',
      body: { sku, quantity: 1 },
      timeoutMs: CALL_TIMEOUT_MS.checkout,
    });

    if (!order.ok) {
      response.status(502).json({ error: `checkout failed: ${order.reason}` });
      return;
    }
    response.json({ status: 'ordered', order: order.body });
  });
  return finishApp(app, context);
}

/** POST /checkout charges the card through payment, then reserves the item through inventory. */
function createCheckout(context: ServiceContext): express.Express {
  const app = express();

  app.post('/checkout', express.json(), async (request, response) => {
    const sku = readSku(request.body?.sku);
    const quantity = Number(request.body?.quantity) || 1;

    // The fault stands for a checkout release that stopped sending the currency.
    const currency = chance(context.random, context.faults.badRequestRate) ? undefined : 'EUR';
    const charge = await callService(context, 'payment', '/charge', {
      method: 'POST',
      body: { amountCents: PRICE_CENTS * quantity, currency },
      timeoutMs: CALL_TIMEOUT_MS.payment,
    });
    if (!charge.ok) {
      response.status(502).json({ error: `payment failed: ${charge.reason}` });
      return;
    }

    const path = `/reserve?sku=${encodeURIComponent(sku)}&quantity=${quantity}`;
    const reservation = await callService(context, 'inventory', path, {
      timeoutMs: CALL_TIMEOUT_MS.inventory,
    });
    if (!reservation.ok) {
      response.status(502).json({ error: `inventory failed: ${reservation.reason}` });
      return;
    }

    response.json({ orderId: randomUUID(), charge: charge.body, reservation: reservation.body });
  });
  return finishApp(app, context);
}

/**
 * POST /charge charges a card. Under faults a share of charges fail: the "charge card" span records
 * the exception and the ERROR status, and the response is HTTP 500.
 */
function createPayment(context: ServiceContext): express.Express {
  const app = express();

  app.post('/charge', express.json(), async (request, response) => {
    if (typeof request.body?.currency !== 'string') {
      response.status(400).json({ error: 'invalid charge: currency is required' });
      return;
    }
    // A failed fraud check is tolerated: the charge goes on without it.
    await callService(context, 'fraud', '/score', {
      method: 'POST',
      body: { amountCents: request.body?.amountCents },
      timeoutMs: CALL_TIMEOUT_MS.fraud,
    });
    await chargeCard(context, request, response);
  });
  return finishApp(app, context);
}

function chargeCard(
  context: ServiceContext,
  request: express.Request,
  response: express.Response,
): Promise<void> {
  return context.tracer.startActiveSpan('charge card', async (span) => {
    try {
      const { min, max } = NORMAL_LATENCY_MS.payment;
      await sleep(randomBetween(context.random, min, max));

      if (shouldFailPayment(context.faults, context.random)) {
        const error = new Error(PAYMENT_FAILURE_MESSAGE);
        error.name = 'CardProcessorError';
        span.recordException(error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
        response.status(500).json({ error: error.message });
        return;
      }

      span.setAttribute('payment.amount_cents', Number(request.body?.amountCents) || 0);
      response.json({ chargeId: `ch_${randomUUID()}`, status: 'captured' });
    } finally {
      span.end();
    }
  });
}

/** POST /score scores a charge for fraud. Under faults it is slow or fails for a share of calls. */
function createFraud(context: ServiceContext): express.Express {
  const app = express();

  app.post('/score', express.json(), async (_request, response) => {
    const slow = chance(context.random, context.faults.fraudSlowRate);
    const { min, max } = slow ? FRAUD_SLOW_MS : NORMAL_LATENCY_MS.fraud;
    await sleep(randomBetween(context.random, min, max));
    if (chance(context.random, context.faults.fraudFailureRate)) {
      response.status(500).json({ error: 'fraud model unavailable' });
      return;
    }
    response.json({ score: Math.round(context.random() * 100) / 100 });
  });
  return finishApp(app, context);
}

/** GET /reserve?sku=... checks the stock level at stock-api, then reserves the item. */
function createInventory(context: ServiceContext): express.Express {
  const app = express();

  app.get('/reserve', async (request, response) => {
    const sku = readSku(request.query.sku);
    if (!(await queryDatabase(context, sku))) {
      response.status(500).json({ error: 'inventory database unavailable' });
      return;
    }
    const stock = await callService(context, 'stock-api', `/stock?sku=${encodeURIComponent(sku)}`, {
      timeoutMs: CALL_TIMEOUT_MS.stockApi,
    });

    if (!stock.ok) {
      response.status(502).json({ error: `stock-api failed: ${stock.reason}` });
      return;
    }
    response.json({ sku, reserved: true, stock: stock.body });
  });
  return finishApp(app, context);
}

/**
 * GET /stock?sku=... on a plain `http` server with no SDK, standing for a third-party API. Under
 * faults a share of responses are slow.
 */
function createStockApi(context: ServiceContext): RequestListener {
  return (request, response) => {
    const url = new URL(request.url ?? '/', 'http://stock-api');
    if (request.method !== 'GET' || url.pathname !== '/stock') {
      sendJson(response, 404, { error: `no route for ${request.method} ${url.pathname}` });
      return;
    }

    const delayMs = pickStockDelayMs(context.faults, context.random);
    const sku = readSku(url.searchParams.get('sku'));
    setTimeout(() => sendJson(response, 200, { sku, available: 40 }), delayMs);
  };
}

/**
 * Reads the reserved count of a SKU from inventory's PostgreSQL database, which sends no spans:
 * the client span carries db.system and db.namespace, so the dependency graph gets a virtual
 * node. The query is simulated; under faults a share of them fail with a connection error.
 */
function queryDatabase(context: ServiceContext, sku: string): Promise<boolean> {
  const attributes = {
    'db.system': 'postgresql',
    'db.namespace': 'inventory',
    'db.operation.name': 'SELECT',
    'db.query.text': 'SELECT reserved FROM stock WHERE sku = $1',
    'server.address': '10.0.3.7',
    'server.port': 5432,
  };
  return context.tracer.startActiveSpan(
    'SELECT inventory.stock',
    { kind: SpanKind.CLIENT, attributes },
    async (span) => {
      try {
        const { min, max } = NORMAL_LATENCY_MS.database;
        await sleep(randomBetween(context.random, min, max));
        if (chance(context.random, context.faults.databaseFailureRate)) {
          const error = new Error(databaseFailureMessage(context.random));
          error.name = 'ConnectionResetError';
          span.recordException(error);
          span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
          return false;
        }
        span.setAttribute('db.response.returned_rows', sku ? 1 : 0);
        return true;
      } finally {
        span.end();
      }
    },
  );
}

type CallResult = { ok: true; body: unknown } | { ok: false; reason: string };

/** Calls another demo service. Resolves with ok false on a network error or a non-2xx status. */
async function callService(
  context: ServiceContext,
  target: ServiceName,
  path: string,
  options: { method?: string; body?: unknown; timeoutMs: number },
): Promise<CallResult> {
  const baseUrl = pickInstance(context, target);
  if (!baseUrl) {
    return { ok: false, reason: `the URL of ${target} is not configured` };
  }

  try {
    const response = await sendRequest(baseUrl + path, options);
    if (response.status >= 200 && response.status < 300) {
      return { ok: true, body: response.body };
    }
    return { ok: false, reason: `${target} returned HTTP ${response.status}` };
  } catch (error) {
    return { ok: false, reason: error instanceof Error ? error.message : String(error) };
  }
}

const roundRobin = new Map<ServiceName, number>();

function pickInstance(context: ServiceContext, target: ServiceName): string | undefined {
  const instances = context.replicas[target];
  if (!instances || instances.length === 0) return context.downstream[target];
  const next = roundRobin.get(target) ?? 0;
  roundRobin.set(target, next + 1);
  return instances[next % instances.length];
}

/** Adds the handler for unexpected errors, which logs the error and responds with HTTP 500. */
function finishApp(app: express.Express, context: ServiceContext): express.Express {
  const handleError: ErrorRequestHandler = (error, request, response, _next) => {
    context.log('error', 'request failed', {
      method: request.method,
      path: request.path,
      error: error instanceof Error ? error.message : String(error),
    });
    if (!response.headersSent) {
      response.status(500).json({ error: 'internal error' });
    }
  };
  app.use(handleError);
  return app;
}

function readSku(value: unknown): string {
  return typeof value === 'string' && value !== '' ? value : 'sku-1';
}

function sendJson(
  response: Parameters<RequestListener>[1],
  status: number,
  body: Record<string, unknown>,
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}
