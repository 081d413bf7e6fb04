import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findDeployRegressions } from '../analyzer/deploy-regressions';
import { findFailingDependencies } from '../analyzer/failing-dependencies';
import { readEntryPoints } from '../analyzer/impact';
import { findLatencyOutliers } from '../analyzer/latency-outliers';
import { buildReport } from '../analyzer/report';
import type { ReportRequest } from '../analyzer/report-types';
import { openStorage, type Storage } from '../lib/storage/clickhouse';
import { readRangeGroups } from '../lib/storage/latency-minutes';
import { writeSpans } from '../lib/storage/span-writer';
import { syntheticRequest } from '../test/helpers/traffic';

/**
 * Times the report over an hour of synthetic checkout traffic against the hour before it, on
 * embedded storage in a temp folder. Options: --rate N requests a second (default 10).
 * The second hour has payment 2.0.0 on half the traffic, failing 40% of its charges.
 */
async function main(): Promise<void> {
  const rateIndex = process.argv.indexOf('--rate');
  const rate = rateIndex >= 0 ? Number(process.argv[rateIndex + 1]) : 10;
  if (!(rate > 0 && rate <= 50)) throw new Error(`invalid --rate ${rate}: expected 1 to 50`);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'faultline-bench-'));
  const storage = await openStorage({ dataDir, url: '', database: 'faultline', retentionDays: 7 });
  try {
    const hourMs = 3_600_000;
    // On a whole minute, as the report's default windows are.
    const windowStart = Math.floor((Date.now() - hourMs) / 60_000) * 60_000;
    const stepMs = 1000 / rate;
    let written = 0;
    let batch = [];
    for (
      let index = 0, t = windowStart - hourMs;
      t < windowStart + hourMs;
      index += 1, t += stepMs
    ) {
      const inWindow = t >= windowStart;
      const v2 = inWindow && index % 2 === 0;
      batch.push(
        ...syntheticRequest({
          index,
          startMs: t,
          paymentVersion: v2 ? '2.0.0' : '1.0.0',
          paymentFails: v2 && index % 5 < 2,
          user: `u${index % 500}`,
          // Scattered like real trace ids, so that trace id order is not time order.
          traceId: createHash('md5').update(`trace-${index}`).digest('hex'),
        }),
      );
      if (batch.length >= 60_000) {
        await writeSpans(storage, batch);
        written += batch.length;
        batch = [];
      }
    }
    await writeSpans(storage, batch);
    written += batch.length;
    const settleMs = await waitForMerges(storage);

    const request = {
      window: { startMs: windowStart, endMs: windowStart + hourMs - 1 },
      baseline: { startMs: windowStart - hourMs, endMs: windowStart - 1 },
    };
    // The same hour 12.345 s earlier, so both ends fall inside minutes, as in a request
    // with explicit times. The baseline still ends before payment 2.0.0 appears.
    const shift = -12_345;
    const shifted = {
      window: { startMs: windowStart + shift, endMs: windowStart + hourMs + shift },
      baseline: { startMs: windowStart - hourMs + shift, endMs: windowStart + shift - 1 },
    };
    const whole = await timeReports(storage, request);
    const partial = await timeReports(storage, shifted);
    process.stdout.write(
      `spans stored: ${written} (two hours at ${rate} requests/s, 6 spans each); merges settled after ${settleMs} ms\n` +
        `report over one hour of whole minutes: ${whole.timings.join(' ms, ')} ms (3 runs), ${whole.findings} findings\n` +
        `report over one hour with partial minutes at both ends: ${partial.timings.join(' ms, ')} ms (3 runs), ${partial.findings} findings\n` +
        `parts of the whole-minute report, each timed alone: ${await timeParts(storage, request)}\n`,
    );
  } finally {
    await storage.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * Waits up to two minutes for the merges that the bulk load started, and returns how long
 * it waited. Two hours written in a minute leave a backlog of merges that traffic at this
 * rate would not, and they would compete with the report for the two cores.
 */
async function waitForMerges(storage: Storage): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < 120_000) {
    const result = await storage.client.query({
      query: 'SELECT count() AS merges FROM system.merges',
      format: 'JSONEachRow',
    });
    const [row] = await result.json<{ merges: string }>();
    if (Number(row.merges) === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return Math.round(performance.now() - started);
}

/** Builds the report three times and returns each duration. */
async function timeReports(
  storage: Storage,
  request: ReportRequest,
): Promise<{ timings: number[]; findings: number }> {
  const timings: number[] = [];
  let findings = 0;
  for (let run = 0; run < 3; run += 1) {
    const report = await buildReport(storage, request);
    timings.push(report.durationMs);
    findings = report.findings.length;
  }
  return { timings, findings };
}

/** Times each part of the report once, on its own, to show where the report's time goes. */
async function timeParts(storage: Storage, request: ReportRequest): Promise<string> {
  const groups = await readRangeGroups(storage, request);
  const parts: [string, () => Promise<unknown>][] = [
    ['duration histograms', () => readRangeGroups(storage, request)],
    ['deploy regressions', () => findDeployRegressions(storage, request, groups)],
    ['failing dependencies', () => findFailingDependencies(storage, request)],
    ['latency outliers', () => findLatencyOutliers(storage, request, groups)],
    ['entry points', () => readEntryPoints(storage, request.window, request.baseline, groups)],
  ];
  const timed: string[] = [];
  for (const [name, run] of parts) {
    const started = performance.now();
    await run();
    timed.push(`${name} ${Math.round(performance.now() - started)} ms`);
  }
  return timed.join(', ');
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
