import { getJson, type Finding, type FindingImpact, type Report } from '../api';
import { ErrorBox, Loading, SeverityBadge } from '../components/common';
import {
  TimeRangeInputs,
  rangeQuery,
  readRangeState,
  resolveRange,
  type RangeState,
} from '../components/time-range';
import { formatMs, formatTime } from '../format';
import { Link, navigate, type Location } from '../router';
import { useApi } from '../use-api';

const KIND_TITLES: Record<string, string> = {
  failing_dependency: 'Failing dependency',
  latency_outlier: 'Latency outlier',
};

function culpritText(finding: Finding): string {
  const { service, dependency, operation } = finding.culprit;
  const target = dependency ? `${service} → ${dependency}` : service;
  return operation ? `${target} (${operation})` : target;
}

function percent(share: number): string {
  return `${(share * 100).toFixed(1)}%`;
}

function impactText(impact: FindingImpact): string {
  let users = '';
  if (impact.distinctUsers === 0) users = `, no ${impact.userAttribute} on these requests`;
  else if (impact.distinctUsers !== undefined) {
    users = `, ${impact.distinctUsers} distinct ${impact.userAttribute}`;
  }
  const endpoints = impact.entryPoints
    .map(
      (entry) =>
        `${entry.service} ${entry.operation} (${entry.failed} of ${entry.requests} failed)`,
    )
    .join(', ');
  return `${impact.affectedRequests} requests (${percent(impact.requestShare)} of traffic), ${impact.failedRequests} failed${users}; endpoints: ${endpoints || 'none'}`;
}

function FindingCard({ finding, index }: { finding: Finding; index: number }) {
  const exceptions = finding.exceptions ?? [];
  return (
    <article class={`finding severity-${finding.severity}`} data-testid="finding">
      <h2>
        {index + 1}. {KIND_TITLES[finding.kind] ?? finding.kind}: {culpritText(finding)}{' '}
        <SeverityBadge severity={finding.severity} />
      </h2>
      <p>{finding.summary}</p>
      {finding.culprit.version ? <p>Version: {finding.culprit.version}</p> : null}
      <p>
        Impacted services:{' '}
        {finding.impactedServices.length > 0
          ? finding.impactedServices.join(', ')
          : 'none beyond the culprit'}
      </p>
      {finding.impact ? (
        <p data-testid="user-impact">User impact: {impactText(finding.impact)}</p>
      ) : null}
      {exceptions.length > 0 ? (
        <ul class="exceptions" data-testid="exceptions">
          {exceptions.map((exception) => (
            <li>
              Exception in {exception.service}:{' '}
              {[exception.type, exception.message].filter(Boolean).join(': ')} ({exception.count}×)
            </li>
          ))}
        </ul>
      ) : null}
      <table class="evidence">
        <tbody>
          {Object.entries(finding.evidence).map(([key, value]) => (
            <tr>
              <th>{key}</th>
              <td>{String(value)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div class="examples">
        Example traces:{' '}
        {finding.exampleTraceIds.map((traceId) => (
          <Link href={`/trace/${traceId}`} class="mono example-trace" data-testid="example-trace">
            {traceId.slice(0, 16)}…
          </Link>
        ))}
      </div>
      {finding.suggestedActions.length > 0 ? (
        <ul class="actions" data-testid="suggested-actions">
          {finding.suggestedActions.map((action) => (
            <li>Suggested action: {action}</li>
          ))}
        </ul>
      ) : null}
    </article>
  );
}

/** Shows how wide the damage is: requests, failures and slow requests at each entry point. */
function ScopeView({ scope }: { scope: Report['scope'] }) {
  const measured = scope.entryPoints.some((entry) => entry.baselineErrorRate !== null);
  const slow = measured
    ? `${scope.slowRequests} slower than 1.5 times their baseline p99`
    : 'slow requests not counted (no baseline requests to compare with)';
  return (
    <section data-testid="scope">
      <p>
        <strong>Scope:</strong> {scope.requests} requests at {scope.entryPoints.length} entry
        points, {scope.failedRequests} failed, {slow}.
      </p>
      {scope.entryPoints.length > 0 ? (
        <table class="evidence">
          <thead>
            <tr>
              <th>Entry point</th>
              <th>Requests</th>
              <th>Failed</th>
              <th>Error rate (baseline)</th>
              <th>Slow</th>
              <th>p95</th>
            </tr>
          </thead>
          <tbody>
            {scope.entryPoints.map((entry) => (
              <tr>
                <td>
                  {entry.service} {entry.operation}
                </td>
                <td>{entry.requests}</td>
                <td>{entry.failed}</td>
                <td>
                  {percent(entry.errorRate)} (
                  {entry.baselineErrorRate === null ? 'none' : percent(entry.baselineErrorRate)})
                </td>
                <td>{entry.slow}</td>
                <td>{formatMs(entry.p95Ms)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}

export function ReportPage({ location }: { location: Location }) {
  const range = readRangeState(location.query, 15 * 60_000);
  const key = location.query.toString();
  const report = useApi(() => {
    const { startMs, endMs } = resolveRange(range);
    return getJson<Report>('/api/report', { start: Math.floor(startMs), end: Math.ceil(endMs) });
  }, [key]);
  const onRange = (next: RangeState) => {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(rangeQuery(next)))
      if (value) params.set(name, value);
    navigate(`/report?${params}`);
  };
  return (
    <div class="page">
      <h1>Dependency-failure report</h1>
      <TimeRangeInputs value={range} onChange={onRange} />
      {report.error ? <ErrorBox error={report.error} /> : null}
      {!report.data && !report.error ? <Loading what="the report" /> : null}
      {report.data ? (
        <>
          <p class="muted">
            Window {formatTime(new Date(report.data.window.start))} to{' '}
            {formatTime(new Date(report.data.window.end))} ({report.data.spansAnalyzed} spans),
            against the baseline {formatTime(new Date(report.data.baseline.start))} to{' '}
            {formatTime(new Date(report.data.baseline.end))}.
          </p>
          <ScopeView scope={report.data.scope} />
          {report.data.findings.length === 0 ? (
            <p>No failing dependency and no latency outlier found in this window.</p>
          ) : (
            report.data.findings.map((finding, index) => (
              <FindingCard finding={finding} index={index} />
            ))
          )}
        </>
      ) : null}
    </div>
  );
}
