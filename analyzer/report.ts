import type { Storage } from '../lib/storage/clickhouse';
import { RANGE_CONDITION, rangeParams } from '../lib/storage/span-reader';
import { findFailingDependencies } from './failing-dependencies';
import { findLatencyOutliers } from './latency-outliers';
import type { Finding, Report, ReportRequest, Severity } from './report-types';

const SEVERITY_RANK: Record<Severity, number> = { critical: 0, high: 1, medium: 2, low: 3 };

/** Default baseline: the hour before the window. */
export function defaultBaseline(window: { startMs: number; endMs: number }) {
  return { startMs: window.startMs - 3_600_000, endMs: window.startMs };
}

/**
 * Builds the dependency-failure report of a window against its baseline. Findings are
 * ordered by severity, then failing dependencies before latency, then by the number of
 * traces they explain.
 */
export async function buildReport(storage: Storage, request: ReportRequest): Promise<Report> {
  const [failing, slow, spansAnalyzed] = await Promise.all([
    findFailingDependencies(storage, request),
    findLatencyOutliers(storage, request),
    countSpans(storage, request),
  ]);
  const findings: Finding[] = [...failing, ...slow].sort(
    (a, b) =>
      SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] ||
      (a.kind === b.kind ? 0 : a.kind === 'failing_dependency' ? -1 : 1),
  );
  return {
    window: isoRange(request.window),
    baseline: isoRange(request.baseline),
    generatedAt: new Date().toISOString(),
    spansAnalyzed,
    findings,
  };
}

async function countSpans(storage: Storage, request: ReportRequest): Promise<number> {
  const result = await storage.client.query({
    query: `SELECT count() AS spans FROM ${storage.database}.spans WHERE ${RANGE_CONDITION}`,
    query_params: rangeParams(request.window),
    format: 'JSONEachRow',
  });
  const [row] = await result.json<{ spans: string }>();
  return Number(row?.spans ?? 0);
}

function isoRange(range: { startMs: number; endMs: number }) {
  return { start: new Date(range.startMs).toISOString(), end: new Date(range.endMs).toISOString() };
}

const KIND_TITLES = {
  failing_dependency: 'Failing dependency',
  latency_outlier: 'Latency outlier',
};

/** Renders a report as Markdown for terminals, tickets and chat. */
export function renderReportMarkdown(report: Report): string {
  const lines = [
    '# Faultline dependency-failure report',
    '',
    `Window: ${report.window.start} to ${report.window.end} (${report.spansAnalyzed} spans)`,
    `Baseline: ${report.baseline.start} to ${report.baseline.end}`,
    '',
  ];
  if (report.findings.length === 0) {
    lines.push('No failing dependency and no latency outlier found in this window.');
    return `${lines.join('\n')}\n`;
  }
  report.findings.forEach((finding, index) => {
    const culprit = [
      finding.culprit.service,
      finding.culprit.dependency ? `→ ${finding.culprit.dependency}` : '',
    ]
      .filter(Boolean)
      .join(' ');
    lines.push(`## ${index + 1}. ${KIND_TITLES[finding.kind]}: ${culprit} (${finding.severity})`);
    lines.push('');
    lines.push(finding.summary);
    lines.push('');
    if (finding.culprit.operation) lines.push(`- Operation: ${finding.culprit.operation}`);
    lines.push(
      `- Impacted services: ${finding.impactedServices.join(', ') || 'none beyond the culprit'}`,
    );
    const evidence = Object.entries(finding.evidence)
      .map(([key, value]) => `${key} ${value}`)
      .join(', ');
    lines.push(`- Evidence: ${evidence}`);
    lines.push(`- Example traces: ${finding.exampleTraceIds.join(', ')}`);
    lines.push('');
  });
  return lines.join('\n');
}
