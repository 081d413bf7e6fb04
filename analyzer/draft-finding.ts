import type { SpanSelector } from './impact';
import type { Finding } from './report-types';

/**
 * A finding as a detector returns it, before the report adds impact, severity, score and
 * fingerprint.
 */
export interface DraftFinding
  extends Omit<Finding, 'severity' | 'fingerprint' | 'score' | 'impact' | 'suggestedActions'> {
  /** Share of the sampled failing or slow traces that the culprit explains, from 0 to 1. */
  confidence: number;
  /** Error rate or slow-span share of the culprit in the window, from 0 to 1. */
  errorRate: number;
  /** Spans whose traces the finding explains, for the impact count. */
  selector: SpanSelector;
  suggestedActions?: string[];
  /**
   * Operation that the fingerprint names in place of the culprit's, when the culprit's
   * operation carries a detail that may vary between windows, such as a route.
   */
  fingerprintOperation?: string;
}
