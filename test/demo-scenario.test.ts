import fs from 'node:fs';
import { demoDataDir, runDemoScenario } from '../demo/run';
import { loadConfig } from '../lib/config';
import { silentLogger } from '../lib/logger';
import { makeTempDir } from './helpers/faultline';

describe('demo scenario', () => {
  const dataDir = makeTempDir('demo');

  afterAll(() => {
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('reports the failing payment service and the slow stock-api', async () => {
    const config = loadConfig({ dataDir, queryPort: 0, logLevel: 'silent' }, {});
    const run = await runDemoScenario({
      config,
      logger: silentLogger,
      durationMs: 16_000,
      ratePerSecond: 20,
      seed: 7,
    });

    expect(run.demo.phases.map((phase) => phase.phase)).toEqual(['baseline', 'incident']);
    expect(run.report.spansAnalyzed).toBeGreaterThan(500);

    const failing = run.report.findings.filter((finding) => finding.kind === 'failing_dependency');
    expect(failing.map((finding) => finding.culprit.service)).toEqual(['payment']);
    expect(failing[0].impactedServices).toEqual(['checkout', 'frontend']);
    expect(failing[0].exampleTraceIds.length).toBeGreaterThan(0);

    const slow = run.report.findings.filter((finding) => finding.kind === 'latency_outlier');
    expect(slow.map((finding) => finding.culprit.dependency)).toEqual(['stock-api']);
    expect(slow[0].culprit.service).toBe('inventory');

    expect(run.markdown).toContain('Failing dependency: payment');
    expect(run.markdown).toContain('Latency outlier: inventory → stock-api');
    expect(fs.existsSync(demoDataDir(config))).toBe(true);
  }, 90_000);
});
