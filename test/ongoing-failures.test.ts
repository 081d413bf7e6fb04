import fs from 'node:fs';
import { findFailingDependencies } from '../analyzer/failing-dependencies';
import { openStorage, type Storage } from '../lib/storage/clickhouse';
import { writeSpans } from '../lib/storage/span-writer';
import { makeTempDir } from './helpers/faultline';
import { syntheticRequest } from './helpers/traffic';

const MINUTE = 60_000;
const BLOCK_START = Math.floor((Date.now() - 2 * 3_600_000) / (10 * MINUTE)) * 10 * MINUTE;
const WINDOW = { startMs: BLOCK_START + MINUTE, endMs: BLOCK_START + 6 * MINUTE };
const BASELINE = { startMs: BLOCK_START - 50 * MINUTE, endMs: BLOCK_START - 40 * MINUTE };

let storage: Storage;
let dataDir: string;

beforeAll(async () => {
  dataDir = makeTempDir('ongoing');
  storage = await openStorage({ dataDir, url: '', database: 'faultline', retentionDays: 7 });
  // payment fails a third of its calls in the baseline and in the window alike.
  const spans = [];
  for (let index = 0; index < 150; index += 1) {
    const paymentFails = index % 3 === 1;
    spans.push(
      ...syntheticRequest({ index, startMs: BASELINE.startMs + index * 2000, paymentFails }),
      ...syntheticRequest({
        index: 1000 + index,
        startMs: WINDOW.startMs + index * 1500,
        paymentFails,
      }),
    );
  }
  await writeSpans(storage, spans);
}, 60_000);

afterAll(async () => {
  await storage.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('failure that began before the baseline', () => {
  it('is not a rise', async () => {
    const findings = await findFailingDependencies(storage, {
      window: WINDOW,
      baseline: BASELINE,
    });
    expect(findings).toEqual([]);
  });

  it('is reported with includeOngoing', async () => {
    const [finding] = await findFailingDependencies(storage, {
      window: WINDOW,
      baseline: BASELINE,
      includeOngoing: true,
    });
    expect(finding.culprit.service).toBe('payment');
    expect(finding.summary).toContain('it failed as often in the baseline');
    expect(finding.evidence.ongoingSinceBeforeBaseline).toBe('yes');
    expect(finding.evidence.baselineErrors).toBe(50);
  });
});
