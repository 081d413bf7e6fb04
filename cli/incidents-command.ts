import { markdownToHtml, renderIncidentMarkdown } from '../analyzer/incidents/incident-report';
import type { Incident } from '../analyzer/incidents/engine';
import { IncidentStore } from '../analyzer/incidents/store';
import type { FaultlineConfig } from '../lib/config';
import { FaultlineError } from '../lib/errors';
import { openStorage } from '../lib/storage/clickhouse';

interface IncidentsOptions {
  status?: string;
  format?: string;
  limit?: string;
  queryUrl?: string;
  for?: string;
}

/** Sends a request to a running analyzer; returns undefined when none listens at `queryUrl`. */
async function callAnalyzer(
  queryUrl: string,
  path: string,
  method = 'GET',
): Promise<{ status: number; text: string } | undefined> {
  let response: Response;
  try {
    response = await fetch(new URL(path, queryUrl), { method });
  } catch {
    return undefined;
  }
  return { status: response.status, text: await response.text() };
}

function checkResponse(queryUrl: string, result: { status: number; text: string }): string {
  if (result.status >= 400) {
    const message = (() => {
      try {
        return (JSON.parse(result.text) as { error: { message: string } }).error.message;
      } catch {
        return result.text;
      }
    })();
    throw new FaultlineError(
      result.status === 404 ? 'FL_INCIDENT_NOT_FOUND' : 'FL_INVALID_PARAMETER',
      `analyzer at ${queryUrl} returned HTTP ${result.status}: ${message}`,
    );
  }
  return result.text;
}

async function withStore<T>(config: FaultlineConfig, work: (store: IncidentStore) => Promise<T>) {
  const storage = await openStorage({
    dataDir: config.dataDir,
    url: config.clickhouseUrl,
    database: config.database,
    retentionDays: config.retentionDays,
  });
  try {
    return await work(new IncidentStore(storage));
  } finally {
    await storage.close();
  }
}

function formatTable(incidents: Incident[], status: string | undefined): string {
  if (incidents.length === 0 && status) return `No ${status} incidents.\n`;
  if (incidents.length === 0) {
    return 'No incidents. Findings that have not lasted long enough to open one are listed with --status pending.\n';
  }
  const rows = incidents.map((incident) =>
    [
      incident.id,
      incident.status,
      incident.peakSeverity,
      incident.openedAt ?? incident.firstSeen,
      incident.resolvedAt ?? '',
      incident.peakFinding.kind,
      incident.peakFinding.culprit.dependency
        ? `${incident.peakFinding.culprit.service} → ${incident.peakFinding.culprit.dependency}`
        : incident.peakFinding.culprit.service,
    ].join('  '),
  );
  return `${['id  status  peak  opened  resolved  kind  culprit', ...rows].join('\n')}\n`;
}

/** `faultline incidents`: lists incidents from a running analyzer or from storage. */
export async function runIncidentsList(raw: Record<string, unknown>, config: FaultlineConfig) {
  const options = raw as IncidentsOptions;
  const format = options.format ?? 'table';
  if (format !== 'table' && format !== 'json') {
    throw new FaultlineError(
      'FL_INVALID_PARAMETER',
      `invalid --format ${JSON.stringify(format)}: expected table or json`,
    );
  }
  const query = new URLSearchParams({ limit: options.limit ?? '50' });
  if (options.status) query.set('status', options.status);
  const result = options.queryUrl
    ? await callAnalyzer(options.queryUrl, `/api/incidents?${query}`)
    : undefined;
  const incidents = result
    ? (JSON.parse(checkResponse(options.queryUrl!, result)) as { data: Incident[] }).data
    : await withStore(config, (store) =>
        store.listIncidents(options.status, Number(options.limit ?? 50)),
      );
  process.stdout.write(
    format === 'json'
      ? `${JSON.stringify(incidents, null, 2)}\n`
      : formatTable(incidents, options.status),
  );
}

/** `faultline incidents show <id>`: prints one incident as a post-incident review draft. */
export async function runIncidentShow(
  id: string,
  raw: Record<string, unknown>,
  config: FaultlineConfig,
) {
  const options = raw as IncidentsOptions;
  const format = options.format ?? 'md';
  if (!['md', 'html', 'json'].includes(format)) {
    throw new FaultlineError(
      'FL_INVALID_PARAMETER',
      `invalid --format ${JSON.stringify(format)}: expected md, html or json`,
    );
  }
  const path = `/api/incidents/${encodeURIComponent(id)}?format=${format}`;
  const result = options.queryUrl ? await callAnalyzer(options.queryUrl, path) : undefined;
  if (result) {
    process.stdout.write(checkResponse(options.queryUrl!, result));
    return;
  }
  const incident = await withStore(config, (store) => store.readIncident(id));
  if (!incident) {
    throw new FaultlineError(
      'FL_INCIDENT_NOT_FOUND',
      `incident ${JSON.stringify(id)} not found: faultline incidents lists them`,
    );
  }
  const markdown = renderIncidentMarkdown(incident);
  process.stdout.write(
    format === 'json'
      ? `${JSON.stringify(incident, null, 2)}\n`
      : format === 'html'
        ? markdownToHtml(markdown, `Faultline incident ${id}`)
        : markdown,
  );
}

/** `faultline incidents ack|silence <id>`: changes an incident through the running analyzer. */
export async function runIncidentAction(
  action: 'ack' | 'silence',
  id: string,
  raw: Record<string, unknown>,
) {
  const options = raw as IncidentsOptions;
  const queryUrl = options.queryUrl ?? 'http://127.0.0.1:16686';
  const suffix = action === 'silence' ? `?for=${encodeURIComponent(options.for ?? '1h')}` : '';
  const path = `/api/incidents/${encodeURIComponent(id)}/${action}${suffix}`;
  const result = await callAnalyzer(queryUrl, path, 'POST');
  if (!result) {
    throw new FaultlineError(
      'FL_STORAGE_UNAVAILABLE',
      `no analyzer answers at ${queryUrl}: start one (faultline start) or pass --query-url, because only the analyzer that runs the schedule may change incidents`,
    );
  }
  const incident = JSON.parse(checkResponse(queryUrl, result)) as Incident;
  process.stdout.write(
    action === 'ack'
      ? `acknowledged incident ${incident.id} at ${incident.acknowledgedAt}\n`
      : `silenced incident ${incident.id} until ${incident.silencedUntil}\n`,
  );
}
