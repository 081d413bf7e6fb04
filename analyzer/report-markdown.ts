import type { Finding, FindingKind, Report } from './report-types';

export const KIND_TITLES: Record<FindingKind, string> = {
  deploy_regression: 'Deploy regression',
  failing_dependency: 'Failing dependency',
  bad_requests: 'Rejected requests',
  latency_outlier: 'Latency outlier',
};

/** Names the culprit for a heading: `payment`, `inventory → stock-api`, `payment 2.0.0`. */
export function culpritText(finding: Finding): string {
  const { culprit } = finding;
  return [
    culprit.service,
    culprit.dependency ? `→ ${culprit.dependency}` : '',
    culprit.version && finding.kind === 'deploy_regression' ? culprit.version : '',
    culprit.instance ? `(instance ${culprit.instance})` : '',
  ]
    .filter(Boolean)
    .join(' ');
}

/**
 * Slow requests are those over 1.5 times their entry point's baseline p99, so without
 * baseline requests none can be counted, which is not the same as none being slow.
 */
function slowText(scope: Report['scope']): string {
  const measured = scope.entryPoints.some((entry) => entry.baselineErrorRate !== null);
  if (!measured) return 'slow requests not counted (no baseline requests to compare with)';
  return `${scope.slowRequests} slower than 1.5 times their baseline p99`;
}

/** Renders a report as Markdown for terminals, tickets and chat. */
export function renderReportMarkdown(report: Report): string {
  const { scope } = report;
  const lines = [
    '# Faultline dependency-failure report',
    '',
    `Window: ${report.window.start} to ${report.window.end} (${report.spansAnalyzed} spans)`,
    `Baseline: ${report.baseline.start} to ${report.baseline.end}`,
    `Scope: ${scope.requests} requests at ${scope.entryPoints.length} entry points, ${scope.failedRequests} failed, ${slowText(scope)}`,
    '',
  ];
  if (report.findings.length === 0) {
    lines.push('No failing dependency, regression or latency outlier found in this window.');
    return `${lines.join('\n')}\n`;
  }
  report.findings.forEach((finding, index) => {
    lines.push(
      `## ${index + 1}. ${KIND_TITLES[finding.kind]}: ${culpritText(finding)} (${finding.severity})`,
    );
    lines.push('', finding.summary, '');
    lines.push(...findingDetails(finding), '');
  });
  return lines.join('\n');
}

/** Bullet lines of a finding: operation, impact, exceptions, evidence, traces and actions. */
export function findingDetails(finding: Finding): string[] {
  const lines: string[] = [];
  if (finding.culprit.operation) lines.push(`- Operation: ${finding.culprit.operation}`);
  if (finding.culprit.version) lines.push(`- Version: ${finding.culprit.version}`);
  lines.push(
    `- Impacted services: ${finding.impactedServices.join(', ') || 'none beyond the culprit'}`,
  );
  const impact = finding.impact;
  if (impact) {
    let users = '';
    if (impact.distinctUsers === 0) users = `, no ${impact.userAttribute} on these requests`;
    else if (impact.distinctUsers !== undefined) {
      users = `, ${impact.distinctUsers} distinct ${impact.userAttribute}`;
    }
    const endpoints = impact.entryPoints
      .map((entry) => `${entry.service} ${entry.operation} (${entry.failed}/${entry.requests})`)
      .join(', ');
    lines.push(
      `- User impact: ${impact.affectedRequests} requests (${(impact.requestShare * 100).toFixed(1)}% of traffic), ${impact.failedRequests} failed${users}; endpoints: ${endpoints || 'none'}`,
    );
  }
  for (const exception of finding.exceptions ?? []) {
    lines.push(
      `- Exception in ${exception.service}: ${[exception.type, exception.message].filter(Boolean).join(': ')} (${exception.count}×)`,
    );
  }
  const evidence = Object.entries(finding.evidence)
    .map(([key, value]) => `${key} ${value}`)
    .join(', ');
  lines.push(`- Evidence: ${evidence}`);
  lines.push(`- Example traces: ${finding.exampleTraceIds.join(', ')}`);
  for (const action of finding.suggestedActions) lines.push(`- Suggested action: ${action}`);
  return lines;
}
