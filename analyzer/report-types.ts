import type { TimeRange } from '../lib/storage/span-reader';

export type FindingKind = 'failing_dependency' | 'latency_outlier';
export type Severity = 'critical' | 'high' | 'medium' | 'low';

/** What a finding blames: a service, and where known the operation or the called node. */
export interface Culprit {
  service: string;
  operation?: string;
  /** A node that sends no spans (database, external API, queue), called by `service`. */
  dependency?: string;
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
}

export interface Report {
  window: { start: string; end: string };
  baseline: { start: string; end: string };
  generatedAt: string;
  spansAnalyzed: number;
  /** Most likely cause first. */
  findings: Finding[];
}

export interface ReportRequest {
  window: TimeRange;
  baseline: TimeRange;
}
