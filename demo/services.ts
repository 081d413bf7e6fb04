import { randomUUID } from 'node:crypto';
import type { RequestListener } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { SpanStatusCode, type Tracer } from '@opentelemetry/api';
import express, { type ErrorRequestHandler } from 'express';
import {
  NORMAL_LATENCY_MS,
  PAYMENT_FAILURE_MESSAGE,
  pickStockDelayMs,
  randomBetween,
  shouldFailPayment,
  type FaultSettings,
  type Random,
} from './faults';
import { sendRequest } from './http-client';
import type { LogLevel, ServiceName, ServiceUrls } from './messages';

/** State that a service's handlers read on every request. The parent changes it over IPC. */
export interface ServiceContext {
  downstream: ServiceUrls;
  faults: FaultSettings;
  random: Random;
  tracer: Tracer;
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void;
}

/** Timeouts of the calls between services, in milliseconds. */
const CALL_TIMEOUT_MS = {
  checkout: 5000,
  payment: 2000,
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

    const charge = await callService(context, 'payment', '/charge', {
      method: 'POST',
      body: { amountCents: PRICE_CENTS * quantity, currency: 'EUR' },
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

  app.post('/charge', express.json(), (request, response) =>
    context.tracer.startActiveSpan('charge card', async (span) => {
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
    }),
  );
  return finishApp(app, context);
}

/** GET /reserve?sku=... checks the stock level at stock-api, then reserves the item. */
function createInventory(context: ServiceContext): express.Express {
  const app = express();

  app.get('/reserve', async (request, response) => {
    const sku = readSku(request.query.sku);
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

type CallResult = { ok: true; body: unknown } | { ok: false; reason: string };

/** Calls another demo service. Resolves with ok false on a network error or a non-2xx status. */
async function callService(
  context: ServiceContext,
  target: ServiceName,
  path: string,
  options: { method?: string; body?: unknown; timeoutMs: number },
): Promise<CallResult> {
  const baseUrl = context.downstream[target];
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
