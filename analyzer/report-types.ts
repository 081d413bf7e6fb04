import type { TimeRange } from '../lib/storage/span-reader';
import type { ExceptionGroup } from './exceptions';

/**
 * - `deploy_regression`: a version of a service that appeared in the window fails or is
 *   slower than the version before it.
 * - `failing_dependency`: a service or a node that sends no spans where errors start.
 * - `bad_requests`: a caller whose requests the callee rejects with HTTP 4xx; the caller is blamed.
 * - `latency_outlier`: an operation whose share of slow spans rose; where the time went.
 */
export type FindingKind =
  | 'deploy_regression'
  | 'failing_dependency'
  | 'bad_requests'
  | 'latency_outlier';
export type Severity = 'critical' | 'high' | 'medium' | 'low';

/** Component a finding blames: a service, and where known the operation or the called node. */
export interface Culprit {
  service: string;
  operation?: string;
  /** A node that sends no spans (database, external API, queue), called by `service`. */
  dependency?: string;
  /** The `service.version` to blame, for a deploy regression or when one version carries the errors. */
  version?: string;
  /** The `service.instance.id` (or host) when the errors start in one instance of several. */
  instance?: string;
}

/** Requests hurt by a finding, counted at the entry points (root spans) of their traces. */
export interface FindingImpact {
  /** Entry requests whose trace holds a span the finding explains. */
  affectedRequests: number;
  /** Of those, requests whose root span failed. */
  failedRequests: number;
  /** affectedRequests over all entry requests of the window. */
  requestShare: number;
  entryPoints: { service: string; operation: string; requests: number; failed: number }[];
  /** Distinct values of `userAttribute` among the affected traces, when one is configured. */
  distinctUsers?: number;
  userAttribute?: string;
}

export interface Finding {
  kind: FindingKind;
  culprit: Culprit;
  severity: Severity;
  /** One sentence that states the finding with its numbers. */
  summary: string;
  /** Services whose requests failed or slowed because of the culprit. */
  impactedServices: string[];
  /** The figures compared, by name; rates are fractions, durations milliseconds. */
  evidence: Record<string, number | string>;
  exampleTraceIds: string[];
  /** Stable key of kind and culprit, so that runs over different windows can be matched. */
  fingerprint: string;
  /** Ranking score: higher is more likely the cause and more harmful. */
  score: number;
  impact?: FindingImpact;
  /** Exception groups seen where the errors start, largest first. */
  exceptions?: ExceptionGroup[];
  /** First things to try, such as rolling back a version. */
  suggestedActions: string[];
}

/** Traffic of one entry point (root span operation) in the window. */
export interface EntryPointStats {
  service: string;
  operation: string;
  requests: number;
  failed: number;
  /** Requests slower than 1.5 times the baseline's p99 of the same entry point. */
  slow: number;
  errorRate: number;
  baselineErrorRate: number | null;
  p95Ms: number;
}

export interface Report {
  window: { start: string; end: string };
  baseline: { start: string; end: string };
  generatedAt: string;
  spansAnalyzed: number;
  /** Time the analysis took, in milliseconds. */
  durationMs: number;
  /** Totals over the entry points of the window. */
  scope: {
    requests: number;
    failedRequests: number;
    slowRequests: number;
    entryPoints: EntryPointStats[];
  };
  /** Most likely cause first. */
  findings: Finding[];
}

export interface ReportRequest {
  window: TimeRange;
  baseline: TimeRange;
  /** Span attribute counted as distinct users; empty turns the count off. Default `enduser.id`. */
  userAttribute?: string;
  /**
   * Also report a dependency that fails in the window about as often as in the baseline.
   * On-demand reports set it, because an engineer may look at an incident that began
   * before the baseline. Scheduled reports do not, so a steady error rate opens no incident.
   */
  includeOngoing?: boolean;
}
