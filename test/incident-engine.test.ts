import { IncidentEngine, type IncidentPolicy } from '../analyzer/incidents/engine';
import type { Finding, Severity } from '../analyzer/report-types';

const policy: IncidentPolicy = {
  openAfterMs: 10 * 60_000,
  resolveAfterMs: 15 * 60_000,
  minSamples: 50,
};
const MINUTE = 60_000;
const T0 = Date.parse('2026-01-01T00:00:00Z');

function finding(severity: Severity = 'high', calls = 400): Finding {
  return {
    kind: 'failing_dependency',
    culprit: { service: 'payment', operation: 'charge card' },
    severity,
    summary: `payment is failing (${severity})`,
    impactedServices: ['checkout'],
    evidence: { calls, errors: 100 },
    exampleTraceIds: ['a'],
    fingerprint: 'failing_dependency|payment||',
    score: 20,
    suggestedActions: [],
  };
}

/** Runs the engine every 5 minutes; `present(minute)` returns the finding of that run, if any. */
function simulate(
  engine: IncidentEngine,
  minutes: number,
  present: (minute: number) => Finding | undefined,
) {
  const events: string[] = [];
  for (let minute = 0; minute <= minutes; minute += 5) {
    const current = present(minute);
    const result = engine.observe(current ? [current] : [], T0 + minute * MINUTE, `r${minute}`);
    for (const change of result.events) events.push(`${minute}:${change.event}`);
  }
  return events;
}

describe('incident engine', () => {
  it('opens after the open duration and resolves after the quiet period', () => {
    const engine = new IncidentEngine(policy);
    const events = simulate(engine, 120, (minute) =>
      minute >= 20 && minute < 50 ? finding() : undefined,
    );
    expect(events).toEqual(['30:opened', '60:resolved']);
  });

  it('does not open for a finding shorter than the open duration', () => {
    const engine = new IncidentEngine(policy);
    const events = simulate(engine, 60, (minute) => (minute === 20 ? finding() : undefined));
    expect(events).toEqual([]);
    expect(engine.current).toEqual([]);
  });

  it('keeps one incident while a finding flaps', () => {
    const engine = new IncidentEngine(policy);
    const events = simulate(engine, 180, (minute) =>
      minute >= 10 && minute < 100 && minute % 10 === 0 ? finding() : undefined,
    );
    expect(events).toEqual(['20:opened', '105:resolved']);
  });

  it('announces a rise of severity once and keeps the peak', () => {
    const engine = new IncidentEngine(policy);
    const severities: Record<number, Severity> = {
      0: 'medium',
      5: 'medium',
      10: 'high',
      15: 'critical',
      20: 'high',
    };
    const events = simulate(engine, 25, (minute) =>
      severities[minute] ? finding(severities[minute]) : undefined,
    );
    expect(events).toEqual(['10:opened', '15:severity_increased']);
    const [incident] = engine.current;
    expect(incident.peakSeverity).toBe('critical');
    expect(incident.severity).toBe('high');
    expect(incident.peakAt).toBe(new Date(T0 + 15 * MINUTE).toISOString());
    expect(incident.timeline.map((entry) => entry.event)).toEqual([
      'first_seen',
      'opened',
      'severity_increased',
    ]);
  });

  it('ignores findings with too few samples', () => {
    const engine = new IncidentEngine(policy);
    expect(simulate(engine, 60, () => finding('critical', 10))).toEqual([]);
  });

  it('opens a new incident after one resolved', () => {
    const engine = new IncidentEngine({ ...policy, openAfterMs: 0 });
    const first = engine.observe([finding()], T0, 'a').changed[0];
    engine.observe([], T0 + 20 * MINUTE, 'b');
    const second = engine.observe([finding()], T0 + 30 * MINUTE, 'c').changed[0];
    expect(second.id).not.toBe(first.id);
    expect(first.status).toBe('resolved');
    expect(second.status).toBe('open');
  });

  it('resumes open incidents given at construction', () => {
    const engine = new IncidentEngine({ ...policy, openAfterMs: 0 });
    const [incident] = engine.observe([finding()], T0, 'a').changed;
    const restarted = new IncidentEngine(policy, [JSON.parse(JSON.stringify(incident))]);
    const result = restarted.observe([finding()], T0 + 5 * MINUTE, 'b');
    expect(result.events).toEqual([]);
    expect(result.changed[0].id).toBe(incident.id);
  });
});
