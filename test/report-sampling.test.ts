import {
  findFailingDependencies,
  FAILING_DEPENDENCY_LIMITS,
} from '../analyzer/failing-dependencies';
import { writeSpans } from '../lib/storage/span-writer';
import { useFilledStorage } from './helpers/faultline';
import { ANALYSIS_BASELINE, ANALYSIS_WINDOW, syntheticRequest } from './helpers/traffic';

// More failing traces in the window, inside one ten-minute block, than the sample takes.
const FAILING_REQUESTS = 400;

const storage = useFilledStorage('sampling', async (target) => {
  const spans = [];
  for (let index = 0; index < 200; index += 1) {
    spans.push(...syntheticRequest({ index, startMs: ANALYSIS_BASELINE.startMs + index * 1000 }));
  }
  for (let index = 0; index < FAILING_REQUESTS; index += 1) {
    spans.push(
      ...syntheticRequest({
        index: 1000 + index,
        startMs: ANALYSIS_WINDOW.startMs + index * 500,
        paymentFails: true,
      }),
    );
  }
  await writeSpans(target, spans);
});

describe('failing trace sample', () => {
  it('takes the full sample from one block', async () => {
    const [finding] = await findFailingDependencies(storage(), {
      window: ANALYSIS_WINDOW,
      baseline: ANALYSIS_BASELINE,
    });
    expect(finding.culprit.service).toBe('payment');
    expect(finding.evidence.sampledFailingTraces).toBe(FAILING_DEPENDENCY_LIMITS.sampledTraces);
    expect(finding.evidence.failingTraces).toBe(FAILING_DEPENDENCY_LIMITS.sampledTraces);
  });
});
