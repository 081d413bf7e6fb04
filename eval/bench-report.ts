import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildReport } from '../analyzer/report';
import { openStorage } from '../lib/storage/clickhouse';
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
    const windowStart = Date.now() - hourMs;
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

    const request = {
      window: { startMs: windowStart, endMs: windowStart + hourMs },
      baseline: { startMs: windowStart - hourMs, endMs: windowStart },
    };
    const timings: number[] = [];
    let findings = 0;
    for (let run = 0; run < 3; run += 1) {
      const report = await buildReport(storage, request);
      timings.push(report.durationMs);
      findings = report.findings.length;
    }
    process.stdout.write(
      `spans stored: ${written} (two hours at ${rate} requests/s, 6 spans each)\n` +
        `report over one hour: ${timings.join(' ms, ')} ms (3 runs), ${findings} findings\n`,
    );
  } finally {
    await storage.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
