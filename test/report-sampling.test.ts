import fs from 'node:fs';
import {
  findFailingDependencies,
  FAILING_DEPENDENCY_LIMITS,
} from '../analyzer/failing-dependencies';
import { openStorage, type Storage } from '../lib/storage/clickhouse';
import { writeSpans } from '../lib/storage/span-writer';
import { makeTempDir } from './helpers/faultline';
import { syntheticRequest } from './helpers/traffic';

const MINUTE = 60_000;
// A window of a few minutes inside one ten-minute block, with more failing traces than
// the sample takes.
const BLOCK_START = Math.floor((Date.now() - 2 * 3_600_000) / (10 * MINUTE)) * 10 * MINUTE;
const WINDOW = { startMs: BLOCK_START + MINUTE, endMs: BLOCK_START + 6 * MINUTE };
const BASELINE = { startMs: BLOCK_START - 50 * MINUTE, endMs: BLOCK_START - 40 * MINUTE };
const FAILING_REQUESTS = 400;

let storage: Storage;
let dataDir: string;

beforeAll(async () => {
  dataDir = makeTempDir('sampling');
  storage = await openStorage({ dataDir, url: '', database: 'faultline', retentionDays: 7 });
  const spans = [];
  for (let index = 0; index < 200; index += 1) {
    spans.push(...syntheticRequest({ index, startMs: BASELINE.startMs + index * 1000 }));
  }
  for (let index = 0; index < FAILING_REQUESTS; index += 1) {
    spans.push(
      ...syntheticRequest({
        index: 1000 + index,
        startMs: WINDOW.startMs + index * 500,
        paymentFails: true,
      }),
    );
  }
  await writeSpans(storage, spans);
}, 60_000);

afterAll(async () => {
  await storage.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('failing trace sample', () => {
  it('takes the full sample from one block', async () => {
    const [finding] = await findFailingDependencies(storage, {
      window: WINDOW,
      baseline: BASELINE,
    });
    expect(finding.culprit.service).toBe('payment');
    expect(finding.evidence.sampledFailingTraces).toBe(FAILING_DEPENDENCY_LIMITS.sampledTraces);
    expect(finding.evidence.failingTraces).toBe(FAILING_DEPENDENCY_LIMITS.sampledTraces);
  });
});
