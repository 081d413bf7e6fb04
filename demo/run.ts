import fs from 'node:fs';
import path from 'node:path';
import { buildReport, renderReportMarkdown } from '../analyzer/report';
import type { Report } from '../analyzer/report-types';
import { startApp, type FaultlineApp } from '../cli/app';
import type { FaultlineConfig } from '../lib/config';
import type { Logger } from '../lib/logger';
import { runDemo, type DemoResult } from './traffic';

export interface DemoRunOptions {
  config: FaultlineConfig;
  logger: Logger;
  durationMs: number;
  ratePerSecond: number;
  /** Milliseconds of fault-free traffic first; default half of durationMs. */
  baselineMs?: number;
  seed?: number;
  signal?: AbortSignal;
}

export interface DemoRun {
  demo: DemoResult;
  report: Report;
  markdown: string;
  queryUrl: string;
}

/** Folder of the demo's own data, wiped at each run so that the report covers this run only. */
export function demoDataDir(config: FaultlineConfig): string {
  return path.join(path.resolve(config.dataDir), 'demo');
}

/**
 * Runs Faultline on fresh embedded storage, drives the demo services through a fault-free
 * baseline and then an incident (payment fails a share of its calls, stock-api turns
 * slow for some), and builds the report of the incident against the baseline.
 */
export async function runDemoScenario(options: DemoRunOptions): Promise<DemoRun> {
  const dataDir = demoDataDir(options.config);
  fs.rmSync(dataDir, { recursive: true, force: true });
  const config: FaultlineConfig = {
    ...options.config,
    dataDir,
    clickhouseUrl: '',
    otlpHttpPort: 0,
    otlpGrpcPort: 0,
  };
  const app: FaultlineApp = await startApp(config, ['collector', 'analyzer'], options.logger);
  try {
    const otlpEndpoint = `http://127.0.0.1:${app.collector!.httpPort}`;
    const startedAtMs = Date.now();
    const demo = await runDemo({
      otlpEndpoint,
      durationMs: options.durationMs,
      baselineMs: options.baselineMs,
      ratePerSecond: options.ratePerSecond,
      seed: options.seed,
      signal: options.signal,
      log: options.logger.child({ role: 'demo' }),
    });
    // The services flushed their spans when they stopped; the collector writes what it holds.
    await app.collector!.flush();

    const window = { startMs: demo.faultsStartedAtMs, endMs: Date.now() };
    const baseline = { startMs: startedAtMs, endMs: demo.faultsStartedAtMs };
    const report = await buildReport(app.storage, { window, baseline });
    return {
      demo,
      report,
      markdown: renderReportMarkdown(report),
      queryUrl: `http://${config.host}:${app.analyzer!.port}`,
    };
  } finally {
    await app.stop();
  }
}
