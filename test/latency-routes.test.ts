import fs from 'node:fs';
import { findLatencyOutliers } from '../analyzer/latency-outliers';
import type { SpanRecord } from '../lib/model/span';
import { openStorage, type Storage } from '../lib/storage/clickhouse';
import { writeSpans } from '../lib/storage/span-writer';
import { makeTempDir } from './helpers/faultline';
import { makeSpan } from './helpers/spans';

const MINUTE = 60_000;
const BLOCK_START = Math.floor((Date.now() - 2 * 3_600_000) / (10 * MINUTE)) * 10 * MINUTE;
const WINDOW = { startMs: BLOCK_START + MINUTE, endMs: BLOCK_START + 6 * MINUTE };
const BASELINE = { startMs: BLOCK_START - 50 * MINUTE, endMs: BLOCK_START - 40 * MINUTE };

let storage: Storage;
let dataDir: string;
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

beforeAll(async () => {
  dataDir = makeTempDir('latency-routes');
  storage = await openStorage({ dataDir, url: '', database: 'faultline', retentionDays: 7 });
  const spans: SpanRecord[] = [];
  for (let index = 0; index < 200; index += 1) {
    const at = BASELINE.startMs + index * 2000;
    spans.push(...expressRequest(at, '/cart', 4 + (index % 3)));
    spans.push(...expressRequest(at + 500, '/search', 5 + (index % 4)));
  }
  for (let index = 0; index < 120; index += 1) {
    const at = WINDOW.startMs + index * 2000;
    spans.push(...expressRequest(at, '/cart', 4 + (index % 3)));
    spans.push(...expressRequest(at + 500, '/search', 300 + (index % 7)));
  }
  await writeSpans(storage, spans);
}, 60_000);

afterAll(async () => {
  await storage.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('latency outliers of express handlers', () => {
  it('names the route of the slow handler', async () => {
    const findings = await findLatencyOutliers(storage, { window: WINDOW, baseline: BASELINE });
    const handler = findings.find((finding) => finding.culprit.service === 'api');
    expect(handler?.culprit.operation).toBe('request handler /search');
    expect(handler?.summary).toContain('api "request handler /search" was slow');
    expect(handler?.fingerprintOperation).toBe('request handler');
  });
});
