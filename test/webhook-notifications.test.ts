import { writeSpans } from '../lib/storage/span-writer';
import { getJson, startTestFaultline, type TestFaultline } from './helpers/faultline';
import { syntheticRequest } from './helpers/traffic';
import { startWebhookReceiver, waitFor } from './helpers/webhook-receiver';

const MINUTE = 60_000;

/** Writes one request every 5 s over [startMs, endMs); `fails(index)` picks the failing ones. */
async function writeTraffic(
  faultline: TestFaultline,
  startMs: number,
  endMs: number,
  fails: (index: number) => boolean,
  firstIndex: number,
) {
  const spans = [];
  let index = firstIndex;
  for (let t = startMs; t < endMs; t += 5000, index += 1) {
    spans.push(...syntheticRequest({ index, startMs: t, paymentFails: fails(index) }));
  }
  await writeSpans(faultline.app.storage, spans);
  return index;
}

describe('webhook notifications', () => {
  it('stays silent for a steadily noisy service over three hours', async () => {
    const receiver = await startWebhookReceiver();
    const faultline = await startTestFaultline({
      webhookUrls: receiver.url,
      analysisIntervalMs: 0,
      incidentOpenAfterMs: 10 * MINUTE,
      incidentMinSamples: 20,
    });
    try {
      const start = Date.now() - 4 * 60 * MINUTE;
      // payment fails every 20th charge, all the time: a steady 5% error rate.
      await writeTraffic(faultline, start, Date.now(), (index) => index % 20 === 7, 0);
      const scheduler = faultline.app.analyzer!.scheduler;
      let findings = 0;
      for (let t = start + 75 * MINUTE; t <= Date.now(); t += 5 * MINUTE) {
        const run = await scheduler.runOnce(t);
        findings += run.report.findings.length;
        expect(run.events).toEqual([]);
      }
      expect(findings).toBe(0);
      const reports = await getJson(faultline.queryUrl, '/api/reports?limit=100');
      expect(reports.body.data.length).toBeGreaterThanOrEqual(30);
      const incidents = await getJson(faultline.queryUrl, '/api/incidents');
      expect(incidents.body.data).toEqual([]);
      expect(receiver.calls).toEqual([]);
    } finally {
      await faultline.stop();
      await receiver.close();
    }
  }, 120_000);

  it('retries a failing endpoint without losing or duplicating', async () => {
    const receiver = await startWebhookReceiver(2);
    const slack = await startWebhookReceiver();
    const faultline = await startTestFaultline({
      webhookUrls: `${receiver.url}/hook?token=secret`,
      slackWebhookUrls: `${slack.url}/services/T0/B0/secret`,
      analysisIntervalMs: 0,
      analysisWindowMs: 15 * MINUTE,
      incidentOpenAfterMs: 0,
      incidentResolveAfterMs: 10 * MINUTE,
      incidentMinSamples: 20,
    });
    try {
      const windowStart = Date.now() - 40 * MINUTE;
      const next = await writeTraffic(
        faultline,
        windowStart - 60 * MINUTE,
        windowStart,
        () => false,
        100_000,
      );
      await writeTraffic(
        faultline,
        windowStart,
        windowStart + 15 * MINUTE,
        (i) => i % 3 === 0,
        next,
      );
      const scheduler = faultline.app.analyzer!.scheduler;
      const opened = await scheduler.runOnce(windowStart + 15 * MINUTE);
      expect(opened.events.map((item) => item.event)).toEqual(['opened']);
      const incidentId = opened.events[0].incident.id;

      // The first two attempts get 503; the retries back off 1 s, then 2 s.
      await waitFor(() => receiver.delivered().length === 1);
      expect(receiver.calls.map((call) => call.status)).toEqual([503, 503, 200]);
      expect(new Set(receiver.calls.map((call) => call.idempotencyKey)).size).toBe(1);
      const body = receiver.delivered()[0].body;
      expect(body.event).toBe('opened');
      expect(body.incident.id).toBe(incidentId);
      expect(body.incident.culprit.service).toBe('payment');
      expect(receiver.delivered()[0].path).toBe('/hook?token=secret');

      await waitFor(() => slack.delivered().length === 1);
      expect(slack.delivered()[0].body.text).toContain(
        'Incident opened: Failing dependency payment',
      );
      expect(slack.delivered()[0].body.blocks[0].type).toBe('section');

      // Nothing more is sent: no duplicate after more retry checks.
      await new Promise((resolve) => setTimeout(resolve, 2500));
      expect(receiver.delivered()).toHaveLength(1);
      expect(slack.calls).toHaveLength(1);

      const incident = await getJson(faultline.queryUrl, `/api/incidents/${incidentId}`);
      const deliveries = incident.body.notifications;
      expect(deliveries.map((row: any) => [row.target, row.delivered, row.attempts])).toEqual([
        ['slackWebhookUrls[0]', true, 1],
        ['webhookUrls[0]', true, 3],
      ]);
      expect(JSON.stringify(deliveries)).not.toContain('secret');

      // Quiet again: the incident resolves once the finding has been gone for 10 minutes.
      const quietStart = windowStart + 15 * MINUTE;
      await writeTraffic(faultline, quietStart, quietStart + 25 * MINUTE, () => false, 300_000);
      const later = await scheduler.runOnce(quietStart + 5 * MINUTE);
      expect(later.events).toEqual([]);
      const resolved = await scheduler.runOnce(quietStart + 25 * MINUTE);
      expect(resolved.events.map((item) => item.event)).toEqual(['resolved']);
      await waitFor(() => receiver.delivered().length === 2);
      expect(receiver.delivered()[1].body.event).toBe('resolved');

      const markdown = await fetch(`${faultline.queryUrl}/api/incidents/${incidentId}?format=md`);
      const text = await markdown.text();
      for (const heading of [
        '## Summary',
        '## Scope and user impact',
        '## Timeline',
        '## Suspected cause and evidence',
        '## Impacted services',
        '## Suggested first actions',
      ]) {
        expect(text).toContain(heading);
      }
      expect(text).toMatch(/opened/);
      expect(text).toMatch(/resolved/);
    } finally {
      await faultline.stop();
      await receiver.close();
      await slack.close();
    }
  }, 120_000);

  it('acknowledges and silences through the API', async () => {
    const faultline = await startTestFaultline({
      analysisIntervalMs: 0,
      incidentOpenAfterMs: 0,
      incidentMinSamples: 20,
    });
    try {
      const windowStart = Date.now() - 20 * MINUTE;
      await writeTraffic(faultline, windowStart - 60 * MINUTE, windowStart, () => false, 500_000);
      await writeTraffic(
        faultline,
        windowStart,
        windowStart + 15 * MINUTE,
        (i) => i % 2 === 0,
        600_000,
      );
      const run = await faultline.app.analyzer!.scheduler.runOnce(windowStart + 15 * MINUTE);
      const id = run.events[0].incident.id;
      const ack = await fetch(`${faultline.queryUrl}/api/incidents/${id}/ack`, { method: 'POST' });
      expect(((await ack.json()) as any).acknowledgedAt).toBeDefined();
      const silence = await fetch(`${faultline.queryUrl}/api/incidents/${id}/silence?for=30m`, {
        method: 'POST',
      });
      const silenced = (await silence.json()) as any;
      expect(Date.parse(silenced.silencedUntil) - Date.now()).toBeGreaterThan(29 * MINUTE);
      const listed = await getJson(faultline.queryUrl, '/api/incidents?status=open');
      expect(listed.body.data[0].timeline.map((entry: any) => entry.event)).toEqual([
        'first_seen',
        'opened',
        'acknowledged',
        'silenced',
      ]);
      const missing = await getJson(faultline.queryUrl, '/api/incidents/nope');
      expect(missing.status).toBe(404);
      expect(missing.body.error.code).toBe('FL_INCIDENT_NOT_FOUND');
      const html = await fetch(`${faultline.queryUrl}/api/reports/${run.reportId}?format=html`);
      expect(await html.text()).toContain('<h1>Faultline dependency-failure report</h1>');
    } finally {
      await faultline.stop();
    }
  }, 60_000);
});
