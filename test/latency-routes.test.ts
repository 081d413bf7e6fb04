import { findLatencyOutliers } from '../analyzer/latency-outliers';
import type { SpanRecord } from '../lib/model/span';
import { writeSpans } from '../lib/storage/span-writer';
import { useFilledStorage } from './helpers/faultline';
import { makeSpan } from './helpers/spans';
import { ANALYSIS_BASELINE, ANALYSIS_WINDOW } from './helpers/traffic';

let nextTrace = 1;

/**
 * Builds one express request as OpenTelemetry names it: a server span named by the method
 * alone and a "request handler" span under it, whose `http.route` alone identifies it.
 */
function expressRequest(startMs: number, route: string, handlerMs: number): SpanRecord[] {
  const traceId = `f${(nextTrace++).toString(16).padStart(31, '0')}`;
  const common = { traceId, serviceName: 'api' };
  return [
    makeSpan(1, '', startMs, startMs + handlerMs + 2, { ...common, name: 'GET', kind: 'SERVER' }),
    makeSpan(2, 1, startMs + 1, startMs + 1 + handlerMs, {
      ...common,
      name: 'request handler',
      attributes: [{ key: 'http.route', value: { stringValue: route } }],
    }),
  ];
}

// Two routes of one handler name: /cart stays fast, and /search is slow in the window.
const storage = useFilledStorage('latency-routes', async (target) => {
  const spans: SpanRecord[] = [];
  for (let index = 0; index < 200; index += 1) {
    const at = ANALYSIS_BASELINE.startMs + index * 2000;
    spans.push(...expressRequest(at, '/cart', 4 + (index % 3)));
    spans.push(...expressRequest(at + 500, '/search', 5 + (index % 4)));
  }
  for (let index = 0; index < 120; index += 1) {
    const at = ANALYSIS_WINDOW.startMs + index * 2000;
    spans.push(...expressRequest(at, '/cart', 4 + (index % 3)));
    spans.push(...expressRequest(at + 500, '/search', 300 + (index % 7)));
    // An endpoint first called in the window, slow in one request of ten.
    const traceId = `e${(nextTrace++).toString(16).padStart(31, '0')}`;
    const ms = index % 10 === 0 ? 400 : 5 + (index % 3);
    spans.push(
      makeSpan(1, '', at + 900, at + 900 + ms, {
        traceId,
        serviceName: 'fresh',
        name: 'GET /new',
        kind: 'SERVER',
      }),
    );
  }
  await writeSpans(target, spans);
});

/** Returns the latency finding of a service over the analysis window. */
async function findingOf(service: string) {
  const findings = await findLatencyOutliers(storage(), {
    window: ANALYSIS_WINDOW,
    baseline: ANALYSIS_BASELINE,
  });
  return findings.find((finding) => finding.culprit.service === service);
}

describe('latency outliers of express handlers', () => {
  it('names the route of the slow handler', async () => {
    const handler = await findingOf('api');
    expect(handler?.culprit.operation).toBe('request handler /search');
    expect(handler?.summary).toContain('api "request handler /search" was slow');
    expect(handler?.fingerprintOperation).toBe('request handler');
  });

  it('marks an operation without baseline', async () => {
    const fresh = await findingOf('fresh');
    expect(fresh?.evidence.baselineMedianMs).toBe('none');
    expect(fresh?.evidence.outliers).toBe(12);
    expect(fresh?.summary).toContain('in the window (too few spans before it to compare with)');
    const handler = await findingOf('api');
    expect(typeof handler?.evidence.baselineMedianMs).toBe('number');
  });
});
