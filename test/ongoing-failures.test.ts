import { findFailingDependencies } from '../analyzer/failing-dependencies';
import { writeSpans } from '../lib/storage/span-writer';
import { useFilledStorage } from './helpers/faultline';
import { ANALYSIS_BASELINE, ANALYSIS_WINDOW, syntheticRequest } from './helpers/traffic';

// payment fails a third of its calls in the baseline and in the window alike.
const storage = useFilledStorage('ongoing', async (target) => {
  const spans = [];
  for (let index = 0; index < 150; index += 1) {
    const paymentFails = index % 3 === 1;
    spans.push(
      ...syntheticRequest({
        index,
        startMs: ANALYSIS_BASELINE.startMs + index * 2000,
        paymentFails,
      }),
      ...syntheticRequest({
        index: 1000 + index,
        startMs: ANALYSIS_WINDOW.startMs + index * 1500,
        paymentFails,
      }),
    );
  }
  await writeSpans(target, spans);
});

describe('failure that began before the baseline', () => {
  it('is not a rise', async () => {
    const findings = await findFailingDependencies(storage(), {
      window: ANALYSIS_WINDOW,
      baseline: ANALYSIS_BASELINE,
    });
    expect(findings).toEqual([]);
  });

  it('is reported with includeOngoing', async () => {
    const [finding] = await findFailingDependencies(storage(), {
      window: ANALYSIS_WINDOW,
      baseline: ANALYSIS_BASELINE,
      includeOngoing: true,
    });
    expect(finding.culprit.service).toBe('payment');
    expect(finding.summary).toContain('it failed as often in the baseline');
    expect(finding.evidence.ongoingSinceBeforeBaseline).toBe('yes');
    expect(finding.evidence.baselineErrors).toBe(50);
  });
});
