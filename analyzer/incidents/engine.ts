import { randomUUID } from 'node:crypto';
import type { Finding, Severity } from '../report-types';

/** Hysteresis of incidents, in milliseconds and samples. */
export interface IncidentPolicy {
  /** A finding must keep appearing this long before its incident opens; 0 opens at once. */
  openAfterMs: number;
  /** An open incident resolves after its finding has been absent this long. */
  resolveAfterMs: number;
  /** Calls or spans a finding must cover to count as an appearance. */
  minSamples: number;
}

export type IncidentStatus = 'pending' | 'open' | 'resolved';
export type IncidentEvent = 'opened' | 'severity_increased' | 'resolved';

export interface TimelineEntry {
  at: string;
  event: 'first_seen' | IncidentEvent | 'acknowledged' | 'silenced';
  severity?: Severity;
  summary?: string;
  reportId?: string;
}

/** Findings of one fingerprint over time. Times are RFC 3339. */
export interface Incident {
  id: string;
  fingerprint: string;
  status: IncidentStatus;
  severity: Severity;
  peakSeverity: Severity;
  firstSeen: string;
  lastSeen: string;
  openedAt?: string;
  peakAt?: string;
  resolvedAt?: string;
  acknowledgedAt?: string;
  /** Notifications are held back until this time. */
  silencedUntil?: string;
  /** Runs in which the finding appeared. */
  appearances: number;
  /** The latest finding, and the one at the peak severity. */
  finding: Finding;
  peakFinding: Finding;
  /** Reports in which the finding appeared, latest last, at most 50. */
  reportIds: string[];
  timeline: TimelineEntry[];
}

/** A change that notifications announce. */
export interface IncidentChange {
  incident: Incident;
  event: IncidentEvent;
}

export const SEVERITY_RANK: Record<Severity, number> = { low: 0, medium: 1, high: 2, critical: 3 };

/** Calls or spans that a finding covers, read from its evidence. */
export function findingSamples(finding: Finding): number {
  const evidence = finding.evidence;
  return Number(evidence.calls ?? evidence.spans ?? 0) || 0;
}

/**
 * Groups findings of successive analysis runs into incidents by fingerprint, with
 * hysteresis: an incident opens only after its finding kept appearing for `openAfterMs` with
 * enough samples, announces a rise of severity, and resolves only after `resolveAfterMs`
 * without the finding. A flapping finding therefore opens one incident, not one per run.
 * Runs must be observed in time order.
 */
export class IncidentEngine {
  private readonly active = new Map<string, Incident>();

  constructor(
    private readonly policy: IncidentPolicy,
    current: Incident[] = [],
  ) {
    for (const incident of current) {
      if (incident.status !== 'resolved') this.active.set(incident.fingerprint, incident);
    }
  }

  /** Incidents not resolved yet, pending ones included. */
  get current(): Incident[] {
    return [...this.active.values()];
  }

  /** Applies one run's findings at `atMs`, and returns the incidents it changed and the events. */
  observe(
    findings: Finding[],
    atMs: number,
    reportId: string,
  ): { changed: Incident[]; events: IncidentChange[] } {
    const at = new Date(atMs).toISOString();
    const changed = new Set<Incident>();
    const events: IncidentChange[] = [];
    const seen = new Set<string>();
    for (const finding of findings) {
      if (findingSamples(finding) < this.policy.minSamples || seen.has(finding.fingerprint)) {
        continue;
      }
      seen.add(finding.fingerprint);
      const incident = this.active.get(finding.fingerprint) ?? this.start(finding, at);
      this.appear(incident, finding, atMs, reportId, events);
      changed.add(incident);
    }
    for (const incident of [...this.active.values()]) {
      if (seen.has(incident.fingerprint)) continue;
      if (this.absent(incident, atMs, events)) changed.add(incident);
    }
    return { changed: [...changed], events };
  }

  private start(finding: Finding, at: string): Incident {
    const incident: Incident = {
      id: randomUUID(),
      fingerprint: finding.fingerprint,
      status: 'pending',
      severity: finding.severity,
      peakSeverity: finding.severity,
      firstSeen: at,
      lastSeen: at,
      appearances: 0,
      finding,
      peakFinding: finding,
      reportIds: [],
      timeline: [{ at, event: 'first_seen', severity: finding.severity, summary: finding.summary }],
    };
    this.active.set(finding.fingerprint, incident);
    return incident;
  }

  private appear(
    incident: Incident,
    finding: Finding,
    atMs: number,
    reportId: string,
    events: IncidentChange[],
  ): void {
    const at = new Date(atMs).toISOString();
    incident.lastSeen = at;
    incident.appearances += 1;
    incident.finding = finding;
    incident.severity = finding.severity;
    incident.reportIds = [...incident.reportIds, reportId].slice(-50);
    const rises = SEVERITY_RANK[finding.severity] > SEVERITY_RANK[incident.peakSeverity];
    if (rises || incident.appearances === 1) {
      incident.peakSeverity = rises ? finding.severity : incident.peakSeverity;
      incident.peakFinding = finding;
      incident.peakAt = at;
    }
    if (incident.status === 'pending') {
      if (atMs - Date.parse(incident.firstSeen) < this.policy.openAfterMs) return;
      incident.status = 'open';
      incident.openedAt = at;
      incident.timeline.push({ at, event: 'opened', severity: finding.severity, reportId });
      events.push({ incident, event: 'opened' });
    } else if (rises) {
      incident.timeline.push({
        at,
        event: 'severity_increased',
        severity: finding.severity,
        summary: finding.summary,
        reportId,
      });
      events.push({ incident, event: 'severity_increased' });
    }
  }

  /** Returns true when the incident changed: a pending one dropped, or an open one resolved. */
  private absent(incident: Incident, atMs: number, events: IncidentChange[]): boolean {
    if (incident.status === 'pending') {
      // A gap shorter than the open duration keeps a pending incident, so that a flapping
      // finding still opens one; a longer gap drops it without a notification.
      if (atMs - Date.parse(incident.lastSeen) >= this.policy.openAfterMs) {
        this.active.delete(incident.fingerprint);
      }
      return false;
    }
    if (atMs - Date.parse(incident.lastSeen) < this.policy.resolveAfterMs) return false;
    const at = new Date(atMs).toISOString();
    incident.status = 'resolved';
    incident.resolvedAt = at;
    incident.timeline.push({ at, event: 'resolved' });
    this.active.delete(incident.fingerprint);
    events.push({ incident, event: 'resolved' });
    return true;
  }

  /** Replaces an active incident after an acknowledgement or a silence changed it. */
  update(incident: Incident): void {
    if (this.active.has(incident.fingerprint)) this.active.set(incident.fingerprint, incident);
  }
}
