/** Client of the analyzer's query API, with the optional bearer token kept in the browser. */

const TOKEN_KEY = 'faultline.queryToken';

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function storedToken(): string | null {
  return localStorage.getItem(TOKEN_KEY);
}

export function storeToken(token: string | null): void {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

type Query = Record<string, string | number | boolean | undefined | null>;

export function withQuery(path: string, query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '' && value !== false) {
      params.set(key, String(value));
    }
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/** GETs a query API path. A non-2xx response becomes an `ApiError` with the server's code. */
export async function getJson<T>(path: string, query?: Query): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  const token = storedToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(withQuery(path, query), { headers });
  const text = await response.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!response.ok) {
    const error = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new ApiError(
      response.status,
      error?.code ?? `HTTP_${response.status}`,
      error?.message ?? (text || response.statusText),
    );
  }
  return body as T;
}

export interface TraceSummary {
  traceId: string;
  startTimeUnixNano: string;
  durationNs: string;
  durationMs: number;
  rootService: string;
  rootName: string;
  spanCount: number;
  errorCount: number;
  services: string[];
}

export interface SpanView {
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: string;
  serviceName: string;
  serviceVersion: string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  durationMs: number;
  selfTimeMs: number;
  depth: number;
  status: { code: string; message: string };
  isError: boolean;
  missingParent: boolean;
  cycleBroken: boolean;
  attributes: Record<string, unknown>;
  resource: Record<string, unknown>;
  scope: { name: string; version: string; attributes: Record<string, unknown> };
  events: { timeUnixNano: string; name: string; attributes: Record<string, unknown> }[];
  links: {
    traceId: string;
    spanId: string;
    traceState: string;
    attributes: Record<string, unknown>;
  }[];
  droppedAttributesCount: number;
  droppedEventsCount: number;
  droppedLinksCount: number;
  ingestWarnings: string[];
  children: SpanView[];
}

export interface TraceView {
  traceId: string;
  spanCount: number;
  errorCount: number;
  services: string[];
  startTimeUnixNano: string;
  durationMs: number;
  missingParentCount: number;
  roots: SpanView[];
}

export interface DependencyEdge {
  caller: string;
  callee: string;
  virtualCallee: boolean;
  calls: number;
  errors: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
}

/** Requests a finding hurt, counted at the entry points of their traces. */
export interface FindingImpact {
  affectedRequests: number;
  failedRequests: number;
  requestShare: number;
  entryPoints: { service: string; operation: string; requests: number; failed: number }[];
  distinctUsers?: number;
  userAttribute?: string;
}

export interface Finding {
  kind: string;
  culprit: {
    service: string;
    operation?: string;
    dependency?: string;
    version?: string;
    instance?: string;
  };
  severity: 'critical' | 'high' | 'medium' | 'low';
  summary: string;
  impactedServices: string[];
  evidence: Record<string, number | string>;
  exampleTraceIds: string[];
  impact?: FindingImpact;
  exceptions?: { service: string; type: string; message: string; count: number }[];
  suggestedActions: string[];
}

/** Traffic of one entry point (root span operation) in the report's window. */
export interface EntryPointStats {
  service: string;
  operation: string;
  requests: number;
  failed: number;
  slow: number;
  errorRate: number;
  baselineErrorRate: number | null;
  p95Ms: number;
}

export interface Report {
  window: { start: string; end: string };
  baseline: { start: string; end: string };
  generatedAt: string;
  spansAnalyzed: number;
  scope: {
    requests: number;
    failedRequests: number;
    slowRequests: number;
    entryPoints: EntryPointStats[];
  };
  findings: Finding[];
}
