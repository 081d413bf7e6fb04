import { writeSpans } from '../lib/storage/span-writer';
import { getJson, startTestFaultline, type TestFaultline } from './helpers/faultline';
import { makeSpan, spanId } from './helpers/spans';
import { syntheticRequest } from './helpers/traffic';

let faultline: TestFaultline;
const now = Date.now();
const baselineStart = now - 20 * 60_000;
const windowStart = now - 10 * 60_000;
let slowTraceId = '';

beforeAll(async () => {
  faultline = await startTestFaultline({ maxTraceSpans: 100 });
  const spans = [];
  for (let index = 0; index < 200; index += 1) {
    spans.push(
      ...syntheticRequest({ index, startMs: baselineStart + index * 2000, user: `u${index % 9}` }),
    );
  }
  // In the window, payment 2.0.0 takes half the traffic and fails 40% of its charges.
  for (let index = 200; index < 400; index += 1) {
    const v2 = index % 2 === 0;
    const request = syntheticRequest({
      index,
      startMs: windowStart + (index - 200) * 2000,
      paymentVersion: v2 ? '2.0.0' : '1.0.0',
      paymentFails: v2 && index % 5 < 2,
      slowDatabaseMs: index === 399 ? 900 : 0,
      user: `u${index % 13}`,
      tenant: `t${index % 7}`,
    });
    if (index === 399) slowTraceId = request[0].traceId;
    spans.push(...request);
  }
  await writeSpans(faultline.app.storage, spans);
});

afterAll(async () => {
  await faultline.stop();
});

function reportQuery(): string {
  return `start=${windowStart}&end=${now}&baselineStart=${baselineStart}&baselineEnd=${windowStart}`;
}

/** Distinct values of `valueOf` over the requests whose payment charge failed. */
function failingIndexes(valueOf: (index: number) => string): number {
  const values = new Set<string>();
  for (let index = 200; index < 400; index += 1) {
    if (index % 2 === 0 && index % 5 < 2) values.add(valueOf(index));
  }
  return values.size;
}

describe('report API', () => {
  it('ranks the deploy regression first and blames payment', async () => {
    const { status, body } = await getJson(faultline.queryUrl, `/api/report?${reportQuery()}`);
    expect(status).toBe(200);
    const [first, second] = body.findings;
    expect(first.kind).toBe('deploy_regression');
    expect(first.culprit).toEqual({ service: 'payment', version: '2.0.0' });
    expect(first.suggestedActions[0]).toBe('Roll back payment from 2.0.0 to 1.0.0');
    expect(first.evidence.previousVersion).toBe('1.0.0');
    // Both findings are measured in one pass, and each keeps its own traces.
    expect(first.impact.failedRequests).toBe(40);
    expect(first.impact.entryPoints).toEqual([
      { service: 'frontend', operation: 'GET /checkout', requests: 40, failed: 40 },
    ]);
    expect(second.kind).toBe('failing_dependency');
    expect(second.culprit.service).toBe('payment');
    expect(second.culprit.version).toBe('2.0.0');
    expect(second.impactedServices).toEqual(['checkout', 'frontend']);
  });

  it('counts scope, impact and distinct users', async () => {
    const { body } = await getJson(faultline.queryUrl, `/api/report?${reportQuery()}`);
    expect(body.scope.requests).toBe(200);
    expect(body.scope.failedRequests).toBe(40);
    expect(body.scope.entryPoints[0]).toMatchObject({
      service: 'frontend',
      operation: 'GET /checkout',
      requests: 200,
      failed: 40,
    });
    const failing = body.findings.find((item: any) => item.kind === 'failing_dependency');
    expect(failing.impact.failedRequests).toBe(40);
    expect(failing.impact.requestShare).toBe(0.2);
    expect(failing.impact.userAttribute).toBe('enduser.id');
    expect(failing.impact.distinctUsers).toBe(failingIndexes((index) => `u${index % 13}`));
    expect(failing.severity).toBe('critical');
    expect(typeof failing.fingerprint).toBe('string');
  });

  it('counts a chosen user attribute', async () => {
    const { body } = await getJson(
      faultline.queryUrl,
      `/api/report?${reportQuery()}&userAttribute=tenant.id`,
    );
    const failing = body.findings.find((item: any) => item.kind === 'failing_dependency');
    expect(failing.impact.userAttribute).toBe('tenant.id');
    expect(failing.impact.distinctUsers).toBe(failingIndexes((index) => `t${index % 7}`));
  });

  it('keeps the requested window', async () => {
    const { body } = await getJson(faultline.queryUrl, `/api/report?${reportQuery()}`);
    expect(Date.parse(body.window.start)).toBe(windowStart);
    expect(Date.parse(body.window.end)).toBe(now);
  });

  it('defaults to whole minutes', async () => {
    const { body } = await getJson(faultline.queryUrl, '/api/report');
    const minute = 60_000;
    expect(Date.parse(body.window.start) % minute).toBe(0);
    expect((Date.parse(body.window.end) + 1) % minute).toBe(0);
    expect(Date.parse(body.baseline.end)).toBe(Date.parse(body.window.start) - 1);
  });

  it('groups exceptions by normalized message', async () => {
    const { body } = await getJson(faultline.queryUrl, `/api/report?${reportQuery()}`);
    const failing = body.findings.find((item: any) => item.kind === 'failing_dependency');
    expect(failing.exceptions).toHaveLength(1);
    expect(failing.exceptions[0]).toMatchObject({
      service: 'payment',
      type: 'CardDeclined',
      message: 'card <n> declined after <n>ms',
      count: 40,
    });
  });

  it('renders Markdown with impact and actions', async () => {
    const response = await fetch(`${faultline.queryUrl}/api/report?${reportQuery()}&format=md`);
    const text = await response.text();
    expect(text).toContain('## 1. Deploy regression: payment 2.0.0');
    expect(text).toContain('- User impact: 40 requests');
    expect(text).toContain('Suggested action: Roll back payment');
    expect(text).toMatch(/failed, \d+ slower than 1\.5 times their baseline p99/);
  });

  it('links example traces in HTML', async () => {
    const response = await fetch(`${faultline.queryUrl}/api/report?${reportQuery()}&format=html`);
    const html = await response.text();
    const { body } = await getJson(faultline.queryUrl, `/api/report?${reportQuery()}`);
    const traceId = body.findings[0].exampleTraceIds[0];
    expect(html).toContain(`<a href="/trace/${traceId}">${traceId}</a>`);
  });

  it('notes a missing user attribute', async () => {
    const query = `${reportQuery()}&userAttribute=account.id&format=md`;
    const text = await (await fetch(`${faultline.queryUrl}/api/report?${query}`)).text();
    expect(text).toContain('no account.id on these requests');
    expect(text).not.toContain('0 distinct');
  });

  it('says slow requests are not counted without a baseline', async () => {
    const query = `start=${windowStart}&end=${now}&baselineStart=${now - 3 * 3_600_000}&baselineEnd=${now - 2 * 3_600_000}`;
    const text = await (await fetch(`${faultline.queryUrl}/api/report?${query}&format=md`)).text();
    expect(text).toContain('slow requests not counted (no baseline requests to compare with)');
  });

  it('reports nothing for a quiet window', async () => {
    const query = `start=${baselineStart + 60_000}&end=${windowStart}&baselineStart=${baselineStart}&baselineEnd=${baselineStart + 60_000}`;
    const { body } = await getJson(faultline.queryUrl, `/api/report?${query}`);
    expect(body.findings).toEqual([]);
  });
});

describe('trace API', () => {
  it('returns the critical path with baseline growth', async () => {
    const { status, body } = await getJson(
      faultline.queryUrl,
      `/api/traces/${slowTraceId}/critical-path`,
    );
    expect(status).toBe(200);
    expect(body.spans[0].operation).toBe('SELECT cards');
    expect(body.spans[0].dependency).toBe('postgresql/cards');
    expect(body.spans[0].selfTimeGrowthMs).toBeGreaterThan(800);
    expect(body.explanation).toContain('payment\'s call "SELECT cards" to postgresql/cards');
    const total = body.segments.reduce((sum: number, item: any) => sum + item.durationMs, 0);
    expect(total).toBeCloseTo(body.durationMs, 3);
  });

  it.each([
    ['errors=yes', 'invalid errors "yes": expected true or false'],
    ['minDuration=2s&maxDuration=1s', 'minDuration "2s" is above maxDuration "1s"'],
  ])('rejects the search %s', async (query, message) => {
    const { status, body } = await getJson(faultline.queryUrl, `/api/traces?${query}`);
    expect(status).toBe(400);
    expect(body.error.message).toContain(message);
  });

  it.each(['/metrics', '/v1/traces'])(
    'points %s on the query port to the collector',
    async (path) => {
      const { status, body } = await getJson(faultline.queryUrl, path);
      expect(status).toBe(404);
      expect(body.error.message).toContain('served by the collector on its own port');
    },
  );

  it('summarises a trace over the span limit', async () => {
    const traceId = 'cafe0000000000000000000000000001';
    const t0 = windowStart;
    const spans = [makeSpan(1, '', t0, t0 + 1000, { traceId, serviceName: 'batch', name: 'job' })];
    for (let id = 2; id <= 150; id += 1) {
      spans.push(
        makeSpan(id, 1, t0 + id, t0 + id + 5, {
          traceId,
          serviceName: 'batch',
          name: 'step',
          isError: id === 77,
          statusMessage: id === 77 ? 'step failed' : '',
        }),
      );
    }
    await writeSpans(faultline.app.storage, spans);
    const { body } = await getJson(faultline.queryUrl, `/api/traces/${traceId}`);
    expect(body.summary).toBe(true);
    expect(body.spanCount).toBe(150);
    expect(body.errorCount).toBe(1);
    expect(body.root).toMatchObject({ spanId: spanId(1), operation: 'job' });
    expect(body.operations).toContainEqual(
      expect.objectContaining({ operation: 'step', spans: 149, errors: 1 }),
    );
    expect(body.errorSpans[0].statusMessage).toBe('step failed');
    const path = await getJson(faultline.queryUrl, `/api/traces/${traceId}/critical-path`);
    expect(path.status).toBe(422);
    expect(path.body.error.code).toBe('FL_TRACE_TOO_LARGE');
  });

  it('rebuilds a trace whose spans arrived apart', async () => {
    const traceId = 'cafe0000000000000000000000000002';
    const t0 = windowStart;
    const child = makeSpan(2, 1, t0 + 10, t0 + 20, { traceId, serviceName: 'late' });
    await writeSpans(faultline.app.storage, [child]);
    const early = await getJson(faultline.queryUrl, `/api/traces/${traceId}`);
    expect(early.body.missingRoot).toBe(true);
    expect(early.body.roots[0].children[0].missingParent).toBe(true);

    const root = makeSpan(1, '', t0, t0 + 100, { traceId, serviceName: 'early' });
    await writeSpans(faultline.app.storage, [root, child]);
    const { body } = await getJson(faultline.queryUrl, `/api/traces/${traceId}`);
    expect(body.spanCount).toBe(2);
    expect(body.missingRoot).toBe(false);
    expect(body.roots).toHaveLength(1);
    expect(body.roots[0].children.map((span: any) => span.spanId)).toEqual([spanId(2)]);
  });

  it('returns the full tree of a small trace', async () => {
    const { body } = await getJson(faultline.queryUrl, `/api/traces/${slowTraceId}?view=full`);
    expect(body.spanCount).toBe(6);
    expect(body.missingRoot).toBe(false);
    const bad = await getJson(faultline.queryUrl, `/api/traces/${slowTraceId}?view=tiny`);
    expect(bad.status).toBe(400);
  });

  it('returns dependency edges per minute', async () => {
    const { body } = await getJson(
      faultline.queryUrl,
      `/api/dependencies?start=${windowStart}&end=${now}&perMinute=true`,
    );
    const edge = body.data.find((item: any) => item.caller === 'checkout');
    expect(edge.callee).toBe('payment');
    expect(edge.minutes.length).toBeGreaterThanOrEqual(6);
    const calls = edge.minutes.reduce((sum: number, item: any) => sum + item.calls, 0);
    expect(calls).toBe(edge.calls);
  });
});
