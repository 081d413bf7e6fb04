import type { Logger } from '../../lib/logger';
import { culpritText, KIND_TITLES } from '../report-markdown';
import type { Incident, IncidentChange, IncidentEvent } from './engine';
import type { IncidentStore, NotificationRow } from './store';

/** A webhook target; `name` is what logs and storage show, never the URL. */
export interface WebhookTarget {
  name: string;
  url: string;
  format: 'json' | 'slack';
}

export interface NotifierOptions {
  targets: WebhookTarget[];
  /** Delay before the first retry; each later retry waits twice as long, up to `retryMaxMs`. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** Attempts after which a delivery is given up and logged as failed. */
  maxAttempts: number;
  /** Milliseconds one request may take. */
  timeoutMs: number;
}

export const DEFAULT_NOTIFIER_OPTIONS: Omit<NotifierOptions, 'targets'> = {
  retryBaseMs: 1000,
  retryMaxMs: 5 * 60_000,
  maxAttempts: 10,
  timeoutMs: 5000,
};

/** Builds the webhook targets from the settings. */
export function targetsFromConfig(config: {
  webhookUrls: string[];
  slackWebhookUrls: string[];
}): WebhookTarget[] {
  return [
    ...config.webhookUrls.map((url, index) => ({
      name: `webhookUrls[${index}]`,
      url,
      format: 'json' as const,
    })),
    ...config.slackWebhookUrls.map((url, index) => ({
      name: `slackWebhookUrls[${index}]`,
      url,
      format: 'slack' as const,
    })),
  ];
}

const EVENT_TITLES: Record<IncidentEvent, string> = {
  opened: 'Incident opened',
  severity_increased: 'Incident severity increased',
  resolved: 'Incident resolved',
};

/** Builds the generic JSON body of a notification. */
export function genericPayload(change: IncidentChange, idempotencyKey: string) {
  const { incident, event } = change;
  const finding = incident.peakFinding;
  return {
    idempotencyKey,
    event,
    incident: {
      id: incident.id,
      fingerprint: incident.fingerprint,
      status: incident.status,
      severity: incident.severity,
      peakSeverity: incident.peakSeverity,
      firstSeen: incident.firstSeen,
      openedAt: incident.openedAt,
      peakAt: incident.peakAt,
      resolvedAt: incident.resolvedAt,
      kind: finding.kind,
      culprit: finding.culprit,
      summary: incident.finding.summary,
      impactedServices: finding.impactedServices,
      impact: finding.impact,
      suggestedActions: finding.suggestedActions,
      exampleTraceIds: finding.exampleTraceIds,
    },
  };
}

/** Builds a Slack incoming-webhook body: a fallback text and one Markdown section. */
export function slackPayload(change: IncidentChange) {
  const { incident, event } = change;
  const finding = incident.peakFinding;
  const title = `${EVENT_TITLES[event]}: ${KIND_TITLES[finding.kind]} ${culpritText(finding)} (${incident.peakSeverity})`;
  const lines = [`*${title}*`, incident.finding.summary];
  if (event === 'resolved') lines.push(`Resolved at ${incident.resolvedAt}`);
  else if (finding.suggestedActions[0]) lines.push(`Suggested: ${finding.suggestedActions[0]}`);
  return {
    text: title,
    blocks: [{ type: 'section', text: { type: 'mrkdwn', text: lines.join('\n') } }],
  };
}

/**
 * Sends incident notifications to webhooks through a delivery table. A delivery that fails is
 * retried with exponential backoff, also after a restart. Once a target accepted a
 * notification it is not sent again, and every attempt carries the same `Idempotency-Key`.
 */
export class Notifier {
  private pass: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: IncidentStore,
    private readonly options: NotifierOptions,
    private readonly logger: Logger,
  ) {}

  /** Polls for due retries every `intervalMs` until `stop`. */
  start(intervalMs: number): void {
    if (this.options.targets.length === 0 || this.timer) return;
    this.timer = setInterval(() => void this.deliverDue(), intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.pass;
  }

  /** Stores one delivery per target for each change that is not silenced, then sends them. */
  async enqueue(changes: IncidentChange[], nowMs = Date.now()): Promise<void> {
    const rows: NotificationRow[] = [];
    for (const change of changes) {
      if (isMuted(change.incident, change.event, nowMs)) continue;
      const sequence = change.incident.timeline.length;
      for (const target of this.options.targets) {
        const id = `${change.incident.id}:${change.event}:${sequence}:${target.name}`;
        const payload =
          target.format === 'slack' ? slackPayload(change) : genericPayload(change, id);
        rows.push({
          id,
          incidentId: change.incident.id,
          event: change.event,
          target: target.name,
          payload: JSON.stringify(payload),
          attempts: 0,
          delivered: false,
          failed: false,
          lastError: '',
          nextAttemptAtMs: nowMs,
          createdAtMs: nowMs,
        });
      }
    }
    await this.store.saveNotifications(rows);
    if (rows.length > 0) await this.deliverDue();
  }

  /** Sends every due delivery; passes run one at a time so that none is sent twice at once. */
  deliverDue(): Promise<void> {
    this.pass = this.pass
      .then(() => this.runPass())
      .catch((error: unknown) => {
        this.logger.error({ err: error }, 'webhook delivery pass failed');
      });
    return this.pass;
  }

  private async runPass(): Promise<void> {
    const due = await this.store.readDueNotifications(Date.now());
    for (const row of due) {
      const target = this.options.targets.find((item) => item.name === row.target);
      if (!target) continue;
      await this.store.saveNotifications([await this.attempt(row, target)]);
    }
  }

  private async attempt(row: NotificationRow, target: WebhookTarget): Promise<NotificationRow> {
    const attempts = row.attempts + 1;
    const host = new URL(target.url).host;
    try {
      const response = await fetch(target.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': row.id },
        body: row.payload,
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      if (response.ok) {
        this.logger.info({ target: target.name, host, event: row.event, attempts }, 'webhook sent');
        return { ...row, attempts, delivered: true, lastError: '' };
      }
      return this.retryLater(row, attempts, target, `HTTP ${response.status}`);
    } catch (error) {
      const reason = error instanceof Error ? error.name : String(error);
      return this.retryLater(row, attempts, target, reason);
    }
  }

  private retryLater(
    row: NotificationRow,
    attempts: number,
    target: WebhookTarget,
    reason: string,
  ): NotificationRow {
    const failed = attempts >= this.options.maxAttempts;
    const delayMs = Math.min(
      this.options.retryBaseMs * 2 ** (attempts - 1),
      this.options.retryMaxMs,
    );
    const fields = { target: target.name, host: new URL(target.url).host, attempts, reason };
    if (failed) this.logger.error(fields, 'webhook delivery failed, giving up');
    else this.logger.warn({ ...fields, retryInMs: delayMs }, 'webhook delivery failed, retrying');
    return {
      ...row,
      attempts,
      failed,
      lastError: reason,
      nextAttemptAtMs: Date.now() + delayMs,
    };
  }
}

/** Returns true when a notification is held back: every one while silenced, severity rises once acknowledged. */
function isMuted(incident: Incident, event: IncidentEvent, nowMs: number): boolean {
  if (incident.silencedUntil && Date.parse(incident.silencedUntil) > nowMs) return true;
  return incident.acknowledgedAt !== undefined && event === 'severity_increased';
}
