import type { FaultlineConfig } from '../lib/config';
import { FaultlineError } from '../lib/errors';
import { openStorage } from '../lib/storage/clickhouse';
import { parseDurationNs, parseTimeParam } from '../lib/time';
import { markdownToHtml } from '../analyzer/incidents/incident-report';
import {
  buildReport,
  defaultBaseline,
  lastWholeMinutes,
  renderReportMarkdown,
} from '../analyzer/report';

interface ReportOptions {
  since?: string;
  from?: string;
  to?: string;
  format?: string;
  queryUrl?: string;
}

/** Prints the report from a running analyzer, or reads storage directly when none responds. */
export async function runReportCommand(
  raw: Record<string, unknown>,
  config: FaultlineConfig,
): Promise<void> {
  const options = raw as ReportOptions;
  const format = options.format ?? 'md';
  if (format !== 'md' && format !== 'json' && format !== 'html') {
    throw new FaultlineError(
      'FL_INVALID_PARAMETER',
      `invalid --format ${JSON.stringify(format)}: expected md, html or json`,
    );
  }
  const sinceMs = Number(parseDurationNs('--since', options.since ?? '15m') / 1_000_000n);
  // Without --from and --to, the last whole minutes, which the rollups cover without reading spans.
  const recent = !options.from && !options.to ? lastWholeMinutes(Date.now(), sinceMs) : undefined;
  const endMs = recent?.endMs ?? (options.to ? parseTimeParam('--to', options.to) : Date.now());
  const startMs =
    recent?.startMs ?? (options.from ? parseTimeParam('--from', options.from) : endMs - sinceMs);
  if (startMs > endMs) {
    throw new FaultlineError('FL_INVALID_PARAMETER', `invalid time range: --from is after --to`);
  }

  const fromServer = options.queryUrl
    ? await fetchReport(options.queryUrl, startMs, endMs, format)
    : undefined;
  if (fromServer !== undefined) {
    process.stdout.write(fromServer.endsWith('\n') ? fromServer : `${fromServer}\n`);
    return;
  }

  const storage = await openStorage({
    dataDir: config.dataDir,
    url: config.clickhouseUrl,
    database: config.database,
    retentionDays: config.retentionDays,
    clusterName: config.clusterName,
  });
  try {
    const window = { startMs, endMs };
    const report = await buildReport(storage, {
      window,
      baseline: defaultBaseline(window, config.baselineMs),
      userAttribute: config.userAttribute,
      includeOngoing: true,
    });
    const markdown = renderReportMarkdown(report);
    process.stdout.write(
      format === 'json'
        ? `${JSON.stringify(report, null, 2)}\n`
        : format === 'html'
          ? markdownToHtml(markdown, 'Faultline report')
          : markdown,
    );
  } finally {
    await storage.close();
  }
}

/** Returns the report text from a running analyzer, or undefined when none is listening there. */
async function fetchReport(
  queryUrl: string,
  startMs: number,
  endMs: number,
  format: string,
): Promise<string | undefined> {
  const url = new URL('/api/report', queryUrl);
  url.searchParams.set('start', String(startMs));
  url.searchParams.set('end', String(endMs));
  url.searchParams.set('format', format);
  let response: Response;
  try {
    response = await fetch(url);
  } catch {
    return undefined;
  }
  const text = await response.text();
  if (!response.ok) {
    throw new FaultlineError(
      'FL_STORAGE_UNAVAILABLE',
      `analyzer at ${queryUrl} failed the report: HTTP ${response.status} ${text}`,
    );
  }
  if (format === 'json') return JSON.stringify(JSON.parse(text), null, 2);
  return text;
}
