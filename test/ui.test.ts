import fs from 'node:fs';
import path from 'node:path';
import { context, SpanKind, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Page } from 'playwright-core';
import { UI_DIST_DIR } from '../analyzer/ui/serve';
import { launchBrowser, SCREENSHOT_DIR, type TestBrowser } from './helpers/browser';
import { startTestFaultline, type TestFaultline } from './helpers/faultline';
import { sendCheckoutTrace, type CheckoutTrace } from './helpers/trace-fixture';

const FAILING_TRACES = 25;
const WIDE_TRACE_CHILDREN = 3;
const WIDE_TRACE_GRANDCHILDREN = 80;
/** Items a stage of the trace that, expanded, has more rows than the waterfall renders. */
const HUGE_TRACE_ITEMS = 400;

let browser: TestBrowser;

beforeAll(async () => {
  if (!fs.existsSync(path.join(UI_DIST_DIR, 'index.html'))) {
    throw new Error(`the web UI is not built in ${UI_DIST_DIR}: run npm run build:ui first`);
  }
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
});

/**
 * Sends a trace whose `late` SERVER span starts 5ms before the CLIENT span that called
 * it, and an `orphan` span whose parent was never sent.
 */
async function sendOddTrace(otlpUrl: string, startMs: number): Promise<string> {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'ledger' }),
    spanProcessors: [
      new BatchSpanProcessor(new OTLPTraceExporter({ url: `${otlpUrl}/v1/traces` })),
    ],
  });
  const tracer = provider.getTracer('odd');
  const at = (offsetMs: number) => new Date(startMs + offsetMs);
  const root = tracer.startSpan('book entry', { kind: SpanKind.SERVER, startTime: at(0) });
  const rootContext = trace.setSpan(context.active(), root);
  const call = tracer.startSpan('call', { kind: SpanKind.CLIENT, startTime: at(10) }, rootContext);
  const late = tracer.startSpan(
    'skewed handler',
    { kind: SpanKind.SERVER, startTime: at(5) },
    trace.setSpan(context.active(), call),
  );
  late.end(at(18));
  call.end(at(20));
  root.end(at(30));
  const lostParent = trace.wrapSpanContext({
    traceId: root.spanContext().traceId,
    spanId: '00000000000000aa',
    traceFlags: 1,
  });
  const orphan = tracer.startSpan(
    'orphan',
    { startTime: at(12) },
    trace.setSpan(context.active(), lostParent),
  );
  orphan.end(at(16));
  await provider.forceFlush();
  await provider.shutdown();
  return root.spanContext().traceId;
}

/**
 * Sends a trace of a root, 3 stages and `items` spans under each stage: with the default
 * of 80, 244 spans, over the size at which the waterfall folds.
 */
async function sendWideTrace(
  otlpUrl: string,
  startMs: number,
  items = WIDE_TRACE_GRANDCHILDREN,
): Promise<string> {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'batch' }),
    spanProcessors: [
      new BatchSpanProcessor(new OTLPTraceExporter({ url: `${otlpUrl}/v1/traces` })),
    ],
  });
  const tracer = provider.getTracer('wide');
  const at = (offsetMs: number) => new Date(startMs + offsetMs);
  const root = tracer.startSpan('nightly batch', { kind: SpanKind.SERVER, startTime: at(0) });
  for (let child = 0; child < WIDE_TRACE_CHILDREN; child += 1) {
    const stage = tracer.startSpan(
      `stage ${child}`,
      { startTime: at(child * 100) },
      trace.setSpan(context.active(), root),
    );
    for (let leaf = 0; leaf < items; leaf += 1) {
      tracer
        .startSpan(
          `item ${leaf}`,
          { startTime: at(child * 100 + leaf) },
          trace.setSpan(context.active(), stage),
        )
        .end(at(child * 100 + leaf + 1));
    }
    stage.end(at(child * 100 + 90));
  }
  root.end(at(300));
  await provider.forceFlush();
  await provider.shutdown();
  return root.spanContext().traceId;
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
}

describe('web UI', () => {
  let faultline: TestFaultline;
  let page: Page;
  let failing: CheckoutTrace[];
  let oddTraceId: string;
  let wideTraceId: string;
  let hugeTraceId: string;
  const errors: string[] = [];

  beforeAll(async () => {
    faultline = await startTestFaultline();
    const now = Date.now();
    failing = [];
    for (let index = 0; index < FAILING_TRACES; index += 1) {
      failing.push(await sendCheckoutTrace(faultline.otlpUrl, now - 120_000 + index * 1000));
    }
    oddTraceId = await sendOddTrace(faultline.otlpUrl, now - 30_000);
    wideTraceId = await sendWideTrace(faultline.otlpUrl, now - 20_000);
    hugeTraceId = await sendWideTrace(faultline.otlpUrl, now - 10_000, HUGE_TRACE_ITEMS);
    await faultline.flush();
    page = await browser.context.newPage();
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (error) => errors.push(error.message));
  }, 90_000);

  afterAll(async () => {
    await page?.close();
    await faultline?.stop();
  });

  afterEach(() => {
    expect(errors).toEqual([]);
  });

  it('searches and lists traces', async () => {
    await page.goto(`${faultline.queryUrl}/search`);
    await page.waitForSelector('[data-testid=trace-row]');
    await page.selectOption('select[name=service]', 'payment');
    await page
      .locator('select[name=operation] option', { hasText: 'POST /charge' })
      .waitFor({ state: 'attached' });
    await page.selectOption('select[name=operation]', 'POST /charge');
    await page.fill('input[name=tags]', 'payment.amount=1999 error=true');
    await page.fill('input[name=minDuration]', '50ms');
    await page.fill('input[name=limit]', '50');
    await page.check('input[name=errors]');
    await page.click('button:has-text("Find traces")');
    await page.waitForURL(/service=payment/);
    await page.waitForSelector(`text=${FAILING_TRACES} traces`);
    expect(await page.locator('[data-testid=trace-row]').count()).toBe(FAILING_TRACES);
    expect(page.url()).toContain('operation=POST+%2Fcharge');
    expect(page.url()).toContain('errors=true');
    expect(await page.locator('.limit-reached').count()).toBe(0);
    await screenshot(page, 'search');
  });

  it('says when the limit cut the list', async () => {
    await page.goto(`${faultline.queryUrl}/search?service=payment&errors=true&limit=10`);
    await page.waitForSelector('text=10 traces');
    expect(await page.locator('.limit-reached').textContent()).toContain(
      'more traces may match. Raise Limit to see them.',
    );
  });

  it('reports an invalid search', async () => {
    await page.goto(`${faultline.queryUrl}/search?minDuration=soon`);
    const alert = page.locator('[role=alert]');
    await alert.waitFor();
    expect(await alert.textContent()).toContain('FL_INVALID_PARAMETER');
    expect(await alert.textContent()).toContain('invalid minDuration "soon"');
  });

  it('opens a trace and shows its spans', async () => {
    const newest = failing[failing.length - 1];
    await page.goto(`${faultline.queryUrl}/search?service=frontend&limit=1`);
    await page.click('[data-testid=trace-row] a.trace-link');
    await page.waitForURL(new RegExp(`/trace/${newest.traceId}$`));
    await page.waitForSelector('[data-testid=span-row]');
    const names = await page.locator('[data-testid=span-row] .span-name').allTextContents();
    expect(names).toEqual([
      'frontend GET /checkout',
      'frontend POST',
      'payment POST /charge',
      'frontend audit',
    ]);
    expect(await page.locator('[data-testid=span-row].error').count()).toBe(2);
    expect(await page.locator('[data-testid=span-row].critical').count()).toBeGreaterThan(1);

    await page.click('text=payment POST /charge');
    const details = page.locator('[data-testid=span-details]');
    await details.waitFor();
    const text = await details.textContent();
    expect(text).toContain('ERROR: card declined');
    expect(text).toContain('payment.amount');
    expect(text).toContain('exception');
    expect(text).toContain('CardDeclined');
    expect(text).toContain('payment-host');
    // A stack trace keeps its lines: the rendered text of a cell loses them otherwise.
    const stack = await details.locator('td', { hasText: 'at charge' }).innerText();
    expect(stack.split('\n')).toHaveLength(3);
    await screenshot(page, 'trace');

    await page.click('[data-testid=span-row] >> nth=0 >> button.toggle');
    expect(await page.locator('[data-testid=span-row]').count()).toBe(1);
    await page.click('text=Expand all');
    expect(await page.locator('[data-testid=span-row]').count()).toBe(4);
  });

  it('marks missing parents and clock skew', async () => {
    await page.goto(`${faultline.queryUrl}/trace/${oddTraceId}`);
    await page.waitForSelector('[data-testid=span-row]');
    const orphan = page.locator('[data-testid=span-row]', { hasText: 'orphan' });
    expect(await orphan.locator('.badge', { hasText: 'missing parent' }).count()).toBe(1);
    const skewed = page.locator('[data-testid=span-row]', { hasText: 'skewed handler' });
    expect(await skewed.locator('.badge', { hasText: 'clock skew' }).count()).toBe(1);
    expect(await page.textContent('.trace-facts')).toContain('1 span with a missing parent');
    await skewed.locator('.span-name').click();
    expect(await page.textContent('[data-testid=span-details]')).toContain('Clock skew');
    await screenshot(page, 'trace-marks');
  });

  it('folds a large trace', async () => {
    const total = 1 + WIDE_TRACE_CHILDREN * (1 + WIDE_TRACE_GRANDCHILDREN);
    await page.goto(`${faultline.queryUrl}/trace/${wideTraceId}`);
    await page.waitForSelector('[data-testid=span-row]');
    expect(await page.locator('[data-testid=span-row]').count()).toBe(1 + WIDE_TRACE_CHILDREN);
    expect(await page.textContent('.waterfall-tools')).toContain(
      `${1 + WIDE_TRACE_CHILDREN} of ${total} spans shown`,
    );
    await page.click('[data-testid=span-row] >> nth=1 >> button.toggle');
    expect(await page.locator('[data-testid=span-row]').count()).toBe(
      1 + WIDE_TRACE_CHILDREN + WIDE_TRACE_GRANDCHILDREN,
    );
  });

  it('renders only the rows in view', async () => {
    const total = 1 + WIDE_TRACE_CHILDREN * (1 + HUGE_TRACE_ITEMS);
    await page.goto(`${faultline.queryUrl}/trace/${hugeTraceId}`);
    await page.waitForSelector('[data-testid=span-row]');
    await page.click('text=Expand all');
    await page.waitForSelector(`text=${total} of ${total} spans shown`);
    const rendered = await page.locator('[data-testid=span-row]').count();
    expect(rendered).toBeLessThan(200);

    const rowsBox = page.locator('.waterfall-rows');
    await rowsBox.evaluate((element) => element.scrollTo(0, element.scrollHeight));
    const lastItem = page.locator('[data-testid=span-row]', {
      hasText: `item ${HUGE_TRACE_ITEMS - 1}`,
    });
    await lastItem.last().waitFor();
    await lastItem.last().locator('.span-name').click();
    const details = page.locator('[data-testid=span-details]');
    expect(await details.textContent()).toContain(`item ${HUGE_TRACE_ITEMS - 1}`);
    expect(await rowsBox.evaluate((element) => element.scrollTop)).toBeGreaterThan(0);
    expect(await lastItem.last().isVisible()).toBe(true);
    await screenshot(page, 'trace-windowed');
  });

  it('draws the service map with the failing edge', async () => {
    await page.goto(`${faultline.queryUrl}/map`);
    const edge = page.locator('[data-testid=map-edge][data-edge="frontend->payment"]');
    await edge.waitFor();
    expect(await edge.getAttribute('class')).toContain('failing');
    const payment = page.locator('[data-testid=map-node][data-node=payment]');
    expect(await payment.getAttribute('class')).toContain('culprit');
    await edge.click();
    const panel = page.locator('[data-testid=edge-panel]');
    await panel.waitFor();
    const text = await panel.textContent();
    expect(text).toContain('frontend → payment');
    expect(text).toContain(`Calls${FAILING_TRACES}`);
    expect(text).toContain(`Errors${FAILING_TRACES} (100%)`);
    await screenshot(page, 'service-map');

    await page.locator('[data-testid=map-node][data-node=frontend]').click();
    const calls = page.locator('[data-testid=node-calls]');
    await calls.waitFor();
    expect(await calls.textContent()).toMatch(
      /^An entry point: no traced service calls it; makes \d+ calls\.$/,
    );
    await payment.click();
    expect(await calls.textContent()).toMatch(/^Called \d+ times by frontend; makes \d+ calls\.$/);
  });

  it('follows a report finding to its trace', async () => {
    await page.goto(`${faultline.queryUrl}/report`);
    const finding = page.locator('[data-testid=finding]', { hasText: 'Failing dependency' });
    await finding.first().waitFor();
    expect(await finding.first().textContent()).toContain('payment');
    const scope = await page.locator('[data-testid=scope]').textContent();
    expect(scope).toMatch(/Scope: \d+ requests at \d+ entry points, \d+ failed/);
    expect(scope).toContain('frontend GET /checkout');
    const impact = await finding.first().locator('[data-testid=user-impact]').textContent();
    expect(impact).toMatch(/User impact: \d+ requests \([\d.]+% of traffic\), \d+ failed/);
    expect(await finding.first().locator('[data-testid=exceptions]').textContent()).toContain(
      'Exception in payment',
    );
    expect(
      await finding.first().locator('[data-testid=suggested-actions] li').count(),
    ).toBeGreaterThan(0);
    await screenshot(page, 'report');
    const example = finding.first().locator('[data-testid=example-trace]').first();
    const href = await example.getAttribute('href');
    const traceId = href!.split('/').pop()!;
    expect(failing.map((sent) => sent.traceId)).toContain(traceId);
    await example.click();
    await page.waitForURL(new RegExp(`/trace/${traceId}$`));
    await page.waitForSelector('[data-testid=span-row]');
    expect(await page.locator('[data-testid=span-row]').count()).toBe(4);
    expect(await page.textContent('h1')).toContain(traceId);
  });
});

describe('web UI with a query token', () => {
  const token = 'ui-token-0123456789abcdef';
  let faultline: TestFaultline;

  beforeAll(async () => {
    faultline = await startTestFaultline({ queryTokens: token });
    await sendCheckoutTrace(faultline.otlpUrl, Date.now() - 10_000);
    await faultline.flush();
  });

  afterAll(async () => {
    await faultline?.stop();
  });

  it('asks for the token, then shows traces', async () => {
    const page = await browser.context.newPage();
    try {
      await page.goto(`${faultline.queryUrl}/search`);
      const form = page.locator('form[aria-label="Query token"]');
      await form.first().waitFor();
      await form.first().locator('input[name=token]').fill(token);
      await form.first().locator('button').click();
      await page.waitForSelector('[data-testid=trace-row]');
      expect(await page.locator('[data-testid=trace-row]').count()).toBe(1);
      await screenshot(page, 'search-with-token');
    } finally {
      await page.evaluate('localStorage.clear()');
      await page.close();
    }
  });
});
