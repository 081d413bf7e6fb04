import { culpritText, findingDetails, KIND_TITLES } from '../report-markdown';
import type { Incident } from './engine';

/** Renders an incident as the start of a post-incident review, in Markdown. */
export function renderIncidentMarkdown(incident: Incident): string {
  const finding = incident.peakFinding;
  const impact = finding.impact;
  const lines = [
    `# Incident: ${KIND_TITLES[finding.kind]} ${culpritText(finding)}`,
    '',
    `Status: ${incident.status}; severity ${incident.severity}, peak ${incident.peakSeverity}; id ${incident.id}`,
    '',
    '## Summary',
    '',
    incident.finding.summary,
    '',
    '## Scope and user impact',
    '',
  ];

  if (impact) {
    const users =
      impact.distinctUsers !== undefined
        ? ` from ${impact.distinctUsers} distinct ${impact.userAttribute}`
        : '';
    lines.push(
      `At the peak, ${impact.affectedRequests} requests (${(impact.requestShare * 100).toFixed(1)}% of traffic) were affected and ${impact.failedRequests} failed${users}.`,
    );
    for (const entry of impact.entryPoints) {
      lines.push(
        `- ${entry.service} ${entry.operation}: ${entry.failed} of ${entry.requests} failed`,
      );
    }
  } else {
    lines.push('No entry-point impact was measured.');
  }

  lines.push('', '## Timeline', '');
  for (const entry of incident.timeline) {
    const detail = [entry.severity, entry.summary].filter(Boolean).join(': ');
    lines.push(`- ${entry.at} ${entry.event.replace('_', ' ')}${detail ? ` (${detail})` : ''}`);
  }
  lines.push(`- ${incident.lastSeen} last seen`);

  lines.push('', '## Suspected cause and evidence', '');
  lines.push(finding.summary, '', ...findingDetails(finding));
  lines.push('', '## Impacted services', '');
  lines.push(finding.impactedServices.join(', ') || 'none beyond the culprit');
  lines.push('', '## Suggested first actions', '');
  for (const action of finding.suggestedActions) lines.push(`- ${action}`);
  if (finding.suggestedActions.length === 0) lines.push('- Look at the example traces');
  return `${lines.join('\n')}\n`;
}

const escapeText = (text: string) =>
  text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;');

/** A trace id as the report prints it: 32 lowercase hex digits. */
const TRACE_ID = /\b[0-9a-f]{32}\b/g;

/**
 * Converts the Markdown that Faultline renders (headings, bullet lists, paragraphs) to a
 * standalone HTML page; every text is escaped. With `traceUrl`, each trace id links to
 * `traceUrl` followed by the id, such as `/trace/` on the analyzer's own pages.
 */
export function markdownToHtml(
  markdown: string,
  title: string,
  options: { traceUrl?: string } = {},
): string {
  const { traceUrl } = options;
  const toHtml = (text: string) => {
    const escaped = escapeText(text);
    if (!traceUrl) return escaped;
    return escaped.replace(TRACE_ID, (id) => `<a href="${escapeText(traceUrl)}${id}">${id}</a>`);
  };
  const body: string[] = [];
  let inList = false;
  for (const line of markdown.split('\n')) {
    const heading = /^(#{1,3}) (.*)$/.exec(line);
    const bullet = /^- (.*)$/.exec(line);
    if (!bullet && inList) {
      body.push('</ul>');
      inList = false;
    }
    if (heading) {
      const level = heading[1].length;
      body.push(`<h${level}>${toHtml(heading[2])}</h${level}>`);
    } else if (bullet) {
      if (!inList) body.push('<ul>');
      inList = true;
      body.push(`<li>${toHtml(bullet[1])}</li>`);
    } else if (line.trim() !== '') {
      body.push(`<p>${toHtml(line)}</p>`);
    }
  }
  if (inList) body.push('</ul>');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeText(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;line-height:1.45}li{margin:.2rem 0}</style>
</head><body>
${body.join('\n')}
</body></html>
`;
}
