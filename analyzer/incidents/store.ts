import type { Storage } from '../../lib/storage/clickhouse';
import type { Report } from '../report-types';
import type { Incident } from './engine';

/** A stored report as `GET /api/reports` lists it. */
export interface StoredReportSummary {
  id: string;
  createdAt: string;
  window: { start: string; end: string };
  findings: number;
  topFinding: string;
}

/** A webhook delivery and its state. */
export interface NotificationRow {
  id: string;
  incidentId: string;
  event: string;
  /** Setting and position of the target, such as `webhookUrls[0]`; never the URL. */
  target: string;
  payload: string;
  attempts: number;
  delivered: boolean;
  failed: boolean;
  lastError: string;
  nextAttemptAtMs: number;
  createdAtMs: number;
}

const toDateTime = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
const fromDateTime = (text: string) => Date.parse(`${text.replace(' ', 'T')}Z`);

/**
 * Reports, incidents and webhook deliveries in ClickHouse. Incidents and deliveries are
 * written whole on each change and read with FINAL, so the latest write of an id wins.
 */
export class IncidentStore {
  constructor(private readonly storage: Storage) {}

  private get db(): string {
    return this.storage.database;
  }

  async saveReport(id: string, report: Report): Promise<void> {
    const top = report.findings[0];
    await this.storage.client.insert({
      table: `${this.db}.reports`,
      values: [
        {
          id,
          created_at: toDateTime(Date.parse(report.generatedAt)),
          window_start: toDateTime(Date.parse(report.window.start)),
          window_end: toDateTime(Date.parse(report.window.end)),
          findings: report.findings.length,
          top_finding: top ? `${top.kind}: ${top.culprit.service}` : '',
          report: JSON.stringify(report),
        },
      ],
      format: 'JSONEachRow',
    });
  }

  async listReports(limit: number): Promise<StoredReportSummary[]> {
    const rows = await this.select<Record<string, string>>(
      `SELECT id, created_at, window_start, window_end, findings, top_finding
FROM ${this.db}.reports ORDER BY created_at DESC LIMIT {limit:UInt32}`,
      { limit },
    );
    return rows.map((row) => ({
      id: row.id,
      createdAt: new Date(fromDateTime(row.created_at)).toISOString(),
      window: {
        start: new Date(fromDateTime(row.window_start)).toISOString(),
        end: new Date(fromDateTime(row.window_end)).toISOString(),
      },
      findings: Number(row.findings),
      topFinding: row.top_finding,
    }));
  }

  async readReport(id: string): Promise<Report | undefined> {
    const rows = await this.select<{ report: string }>(
      `SELECT report FROM ${this.db}.reports WHERE id = {id:String} LIMIT 1`,
      { id },
    );
    return rows[0] ? (JSON.parse(rows[0].report) as Report) : undefined;
  }

  async saveIncidents(incidents: Incident[]): Promise<void> {
    if (incidents.length === 0) return;
    const now = Date.now();
    await this.storage.client.insert({
      table: `${this.db}.incidents`,
      values: incidents.map((incident, index) => ({
        id: incident.id,
        fingerprint: incident.fingerprint,
        status: incident.status,
        severity: incident.peakSeverity,
        opened_at: toDateTime(Date.parse(incident.openedAt ?? incident.firstSeen)),
        // Successive writes within one millisecond still order by their position.
        updated_at: toDateTime(now + index),
        incident: JSON.stringify(incident),
      })),
      format: 'JSONEachRow',
    });
  }

  /** Incidents newest first; `status` filters, and pending ones are left out unless asked for. */
  async listIncidents(status: string | undefined, limit: number): Promise<Incident[]> {
    const rows = await this.select<{ incident: string }>(
      `SELECT incident FROM ${this.db}.incidents FINAL
WHERE if({status:String} = '', status != 'pending', status = {status:String})
ORDER BY opened_at DESC LIMIT {limit:UInt32}`,
      { status: status ?? '', limit },
    );
    return rows.map((row) => JSON.parse(row.incident) as Incident);
  }

  async readIncident(id: string): Promise<Incident | undefined> {
    const rows = await this.select<{ incident: string }>(
      `SELECT incident FROM ${this.db}.incidents FINAL WHERE id = {id:String}`,
      { id },
    );
    return rows[0] ? (JSON.parse(rows[0].incident) as Incident) : undefined;
  }

  /** Incidents that are pending or open, for the engine at start. */
  async readActiveIncidents(): Promise<Incident[]> {
    const rows = await this.select<{ incident: string }>(
      `SELECT incident FROM ${this.db}.incidents FINAL WHERE status != 'resolved'`,
      {},
    );
    return rows.map((row) => JSON.parse(row.incident) as Incident);
  }

  async saveNotifications(rows: NotificationRow[]): Promise<void> {
    if (rows.length === 0) return;
    const now = Date.now();
    await this.storage.client.insert({
      table: `${this.db}.notifications`,
      values: rows.map((row, index) => ({
        id: row.id,
        incident_id: row.incidentId,
        event: row.event,
        target: row.target,
        payload: row.payload,
        attempts: row.attempts,
        delivered: row.delivered,
        failed: row.failed,
        last_error: row.lastError,
        next_attempt_at: toDateTime(row.nextAttemptAtMs),
        created_at: toDateTime(row.createdAtMs),
        updated_at: toDateTime(now + index),
      })),
      format: 'JSONEachRow',
    });
  }

  /** Deliveries neither delivered nor given up whose next attempt is due at `nowMs`. */
  async readDueNotifications(nowMs: number): Promise<NotificationRow[]> {
    return this.readNotifications(
      'NOT delivered AND NOT failed AND next_attempt_at <= fromUnixTimestamp64Milli({now:Int64})',
      { now: nowMs },
    );
  }

  async readNotificationsOf(incidentId: string): Promise<NotificationRow[]> {
    return this.readNotifications('incident_id = {incidentId:String}', { incidentId });
  }

  private async readNotifications(
    condition: string,
    params: Record<string, unknown>,
  ): Promise<NotificationRow[]> {
    const rows = await this.select<Record<string, string | number | boolean>>(
      `SELECT * FROM ${this.db}.notifications FINAL WHERE ${condition} ORDER BY created_at, id`,
      params,
    );
    return rows.map((row) => ({
      id: String(row.id),
      incidentId: String(row.incident_id),
      event: String(row.event),
      target: String(row.target),
      payload: String(row.payload),
      attempts: Number(row.attempts),
      delivered: Boolean(row.delivered),
      failed: Boolean(row.failed),
      lastError: String(row.last_error),
      nextAttemptAtMs: fromDateTime(String(row.next_attempt_at)),
      createdAtMs: fromDateTime(String(row.created_at)),
    }));
  }

  private async select<T>(query: string, params: Record<string, unknown>): Promise<T[]> {
    const result = await this.storage.client.query({
      query,
      query_params: params,
      format: 'JSONEachRow',
    });
    return result.json<T>();
  }
}
