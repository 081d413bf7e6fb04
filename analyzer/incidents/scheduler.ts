import { randomUUID } from 'node:crypto';
import type { Logger } from '../../lib/logger';
import type { Storage } from '../../lib/storage/clickhouse';
import { buildReport, defaultBaseline } from '../report';
import type { Report } from '../report-types';
import { IncidentEngine, type IncidentChange, type IncidentPolicy } from './engine';
import type { IncidentStore } from './store';
import type { Notifier } from './webhooks';

export interface SchedulerOptions {
  /** Milliseconds between runs; 0 runs only on request. */
  intervalMs: number;
  windowMs: number;
  baselineMs: number;
  userAttribute: string;
  policy: IncidentPolicy;
}

export interface AnalysisRun {
  reportId: string;
  report: Report;
  events: IncidentChange[];
}

/**
 * Runs the analysis over the latest window against its baseline on a schedule, stores each
 * report, turns its findings into incidents and queues their notifications. Runs never
 * overlap: a run due while one is going waits for it.
 */
export class AnalysisScheduler {
  private engine: IncidentEngine | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly storage: Storage,
    private readonly store: IncidentStore,
    private readonly notifier: Notifier,
    private readonly options: SchedulerOptions,
    private readonly logger: Logger,
  ) {}

  start(): void {
    if (this.options.intervalMs <= 0 || this.timer) return;
    this.timer = setInterval(() => {
      this.runOnce().catch((error: unknown) => {
        this.logger.error({ err: error }, 'scheduled analysis failed');
      });
    }, this.options.intervalMs);
    this.timer.unref();
    this.logger.info(
      { intervalMs: this.options.intervalMs, windowMs: this.options.windowMs },
      'analysis schedule started',
    );
  }

  /** Stops the schedule and waits for a run in progress. Later calls are harmless. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.chain.catch(() => undefined);
  }

  /** Analyzes the window that ends at `nowMs` (default now), as the schedule does. */
  runOnce(nowMs = Date.now()): Promise<AnalysisRun> {
    const run = this.chain.then(() => this.run(nowMs));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Returns the engine, loaded from storage on first use so that a restart keeps open incidents. */
  async incidentEngine(): Promise<IncidentEngine> {
    this.engine ??= new IncidentEngine(this.options.policy, await this.store.readActiveIncidents());
    return this.engine;
  }

  private async run(nowMs: number): Promise<AnalysisRun> {
    const { windowMs, baselineMs, userAttribute } = this.options;
    // Exact, not widened to whole minutes: an incident resolves as soon as its last failing
    // request leaves the window.
    const window = { startMs: nowMs - windowMs, endMs: nowMs };
    const baseline = defaultBaseline(window, baselineMs);
    const report = await buildReport(this.storage, { window, baseline, userAttribute });
    const reportId = randomUUID();
    await this.store.saveReport(reportId, report);

    const engine = await this.incidentEngine();
    const { changed, events } = engine.observe(report.findings, nowMs, reportId);
    await this.store.saveIncidents(changed);
    for (const change of events) {
      this.logger.info(
        { incident: change.incident.id, event: change.event, severity: change.incident.severity },
        `incident ${change.event}`,
      );
    }
    if (!this.stopped) await this.notifier.enqueue(events, nowMs);
    this.logger.debug(
      { reportId, findings: report.findings.length, durationMs: report.durationMs },
      'analysis run finished',
    );
    return { reportId, report, events };
  }
}
