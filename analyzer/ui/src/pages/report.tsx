import { getJson, type Finding, type Report } from '../api';
import { ErrorBox, Loading, SeverityBadge } from '../components/common';
import {
  TimeRangeInputs,
  rangeQuery,
  readRangeState,
  resolveRange,
  type RangeState,
} from '../components/time-range';
import { formatTime } from '../format';
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

function FindingCard({ finding, index }: { finding: Finding; index: number }) {
  return (
    <article class={`finding severity-${finding.severity}`} data-testid="finding">
      <h2>
        {index + 1}. {KIND_TITLES[finding.kind] ?? finding.kind}: {culpritText(finding)}{' '}
        <SeverityBadge severity={finding.severity} />
      </h2>
      <p>{finding.summary}</p>
      <p>
        Impacted services:{' '}
        {finding.impactedServices.length > 0
          ? finding.impactedServices.join(', ')
          : 'none beyond the culprit'}
      </p>
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
    </article>
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
