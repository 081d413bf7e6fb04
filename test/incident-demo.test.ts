import { NO_FAULTS } from '../demo/faults';
import { startDemoServices } from '../demo/supervisor';
import { driveTraffic } from '../demo/traffic';
import { startTestFaultline } from './helpers/faultline';
import { startWebhookReceiver, waitFor } from './helpers/webhook-receiver';

describe('incidents from real traffic', () => {
  it('sends one open and one resolve for a fault that starts and stops', async () => {
    const receiver = await startWebhookReceiver();
    const faultline = await startTestFaultline({
      webhookUrls: receiver.url,
      analysisIntervalMs: 0,
      analysisWindowMs: 4000,
      baselineMs: 8000,
      incidentOpenAfterMs: 2000,
      incidentResolveAfterMs: 3000,
      incidentMinSamples: 10,
    });
    const services = await startDemoServices({
      otlpEndpoint: faultline.otlpUrl,
      batchDelayMs: 200,
      seed: 3,
    });
    const traffic = { url: `${services.urls.frontend}/checkout`, ratePerSecond: 20 };
    let startedAt = 0;
    try {
      startedAt = Date.now();
      await driveTraffic({ ...traffic, phase: 'before', durationMs: 6000 });
      await services.setFaults({ ...NO_FAULTS, paymentFailureRate: 0.5 });
      await driveTraffic({ ...traffic, phase: 'fault', durationMs: 6000 });
      await services.setFaults({ ...NO_FAULTS });
      await driveTraffic({ ...traffic, phase: 'after', durationMs: 8000 });
    } finally {
      await services.stop();
    }
    try {
      await faultline.app.collector!.flush();
      // Replays the schedule once a second over the recorded traffic.
      const scheduler = faultline.app.analyzer!.scheduler;
      const events: string[] = [];
      for (let t = startedAt + 10_000; t <= Date.now(); t += 1000) {
        const run = await scheduler.runOnce(t);
        for (const change of run.events)
          events.push(`${change.incident.fingerprint} ${change.event}`);
      }
      const payment = events.filter((event) => event.startsWith('failing_dependency|payment|'));
      expect(payment.map((event) => event.split(' ')[1])).toEqual(['opened', 'resolved']);

      await waitFor(() => receiver.delivered().length >= events.length);
      const sent = receiver
        .delivered()
        .filter((call) => call.body.incident.fingerprint.startsWith('failing_dependency|payment|'));
      expect(sent.map((call) => call.body.event)).toEqual(['opened', 'resolved']);
      expect(sent[0].body.incident.culprit.service).toBe('payment');
      expect(sent[1].body.incident.status).toBe('resolved');
    } finally {
      await faultline.stop();
      await receiver.close();
    }
  }, 120_000);
});
