import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { FaultlineError } from '../../lib/errors';
import { parseDurationNs } from '../../lib/time';
import { renderReportMarkdown } from '../report-markdown';
import type { Incident } from './engine';
import { markdownToHtml, renderIncidentMarkdown } from './incident-report';
import type { AnalysisScheduler } from './scheduler';
import type { IncidentStore } from './store';

type Handler = (request: Request, response: Response) => Promise<void>;

function handle(handler: Handler) {
  return (request: Request, response: Response, next: NextFunction) => {
    handler(request, response).catch(next);
  };
}

function readFormat(request: Request, allowed: string[]): string {
  const format = typeof request.query.format === 'string' ? request.query.format : 'json';
  if (!allowed.includes(format)) {
    throw new FaultlineError(
      'FL_INVALID_PARAMETER',
      `invalid format ${JSON.stringify(format)}: expected ${allowed.join(', ')}`,
    );
  }
  return format;
}

function readLimit(request: Request): number {
  const text = typeof request.query.limit === 'string' ? request.query.limit : '50';
  const limit = Number(text);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw new FaultlineError(
      'FL_INVALID_PARAMETER',
      `invalid limit ${JSON.stringify(text)}: expected an integer from 1 to 1000`,
    );
  }
  return limit;
}

function send(
  response: Response,
  format: string,
  json: unknown,
  markdown: () => string,
  title: string,
) {
  if (format === 'md') response.type('text/markdown').send(markdown());
  else if (format === 'html')
    response.type('text/html').send(markdownToHtml(markdown(), title, { traceUrl: '/trace/' }));
  else response.json(json);
}

/**
 * Routes of stored reports and incidents: listing, reading as JSON, Markdown or HTML,
 * acknowledging and silencing, and running the analysis on request.
 */
export function incidentsRouter(store: IncidentStore, scheduler: AnalysisScheduler): Router {
  const router = express.Router();

  router.get(
    '/api/reports',
    handle(async (request, response) => {
      response.json({ data: await store.listReports(readLimit(request)) });
    }),
  );

  router.get(
    '/api/reports/:id',
    handle(async (request, response) => {
      const format = readFormat(request, ['json', 'md', 'html']);
      const id = String(request.params.id);
      const report = await store.readReport(id);
      if (!report) {
        throw new FaultlineError(
          'FL_REPORT_NOT_FOUND',
          `report ${JSON.stringify(id)} not found: GET /api/reports lists the stored reports`,
        );
      }
      send(response, format, report, () => renderReportMarkdown(report), `Faultline report ${id}`);
    }),
  );

  router.post(
    '/api/analysis/run',
    handle(async (_request, response) => {
      const run = await scheduler.runOnce();
      response.json({
        reportId: run.reportId,
        findings: run.report.findings.length,
        events: run.events.map((item) => ({ incident: item.incident.id, event: item.event })),
      });
    }),
  );

  router.get(
    '/api/incidents',
    handle(async (request, response) => {
      const status = typeof request.query.status === 'string' ? request.query.status : undefined;
      if (status && !['pending', 'open', 'resolved'].includes(status)) {
        throw new FaultlineError(
          'FL_INVALID_PARAMETER',
          `invalid status ${JSON.stringify(status)}: expected pending, open or resolved`,
        );
      }
      response.json({ data: await store.listIncidents(status, readLimit(request)) });
    }),
  );

  router.get(
    '/api/incidents/:id',
    handle(async (request, response) => {
      const format = readFormat(request, ['json', 'md', 'html']);
      const incident = await readIncident(store, String(request.params.id));
      const notifications = (await store.readNotificationsOf(incident.id)).map(
        ({ payload, ...rest }) => (void payload, rest),
      );
      send(
        response,
        format,
        { ...incident, notifications },
        () => renderIncidentMarkdown(incident),
        `Faultline incident ${incident.id}`,
      );
    }),
  );

  router.post(
    '/api/incidents/:id/ack',
    handle(async (request, response) => {
      const incident = await readIncident(store, String(request.params.id));
      const at = new Date().toISOString();
      incident.acknowledgedAt ??= at;
      incident.timeline.push({ at, event: 'acknowledged' });
      await saveChange(store, scheduler, incident);
      response.json(incident);
    }),
  );

  router.post(
    '/api/incidents/:id/silence',
    handle(async (request, response) => {
      const text = typeof request.query.for === 'string' ? request.query.for : '1h';
      const durationMs = Number(parseDurationNs('for', text) / 1_000_000n);
      const incident = await readIncident(store, String(request.params.id));
      const at = new Date();
      incident.silencedUntil = new Date(at.getTime() + durationMs).toISOString();
      incident.timeline.push({ at: at.toISOString(), event: 'silenced' });
      await saveChange(store, scheduler, incident);
      response.json(incident);
    }),
  );
  return router;
}

async function readIncident(store: IncidentStore, id: string): Promise<Incident> {
  const incident = await store.readIncident(id);
  if (!incident) {
    throw new FaultlineError(
      'FL_INCIDENT_NOT_FOUND',
      `incident ${JSON.stringify(id)} not found: GET /api/incidents lists them`,
    );
  }
  return incident;
}

async function saveChange(
  store: IncidentStore,
  scheduler: AnalysisScheduler,
  incident: Incident,
): Promise<void> {
  (await scheduler.incidentEngine()).update(incident);
  await store.saveIncidents([incident]);
}
