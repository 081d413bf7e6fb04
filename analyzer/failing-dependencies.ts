import { attributeText } from '../lib/model/attributes';
import type { SpanRecord } from '../lib/model/span';
import type { Storage } from '../lib/storage/clickhouse';
import { RANGE_CONDITION, rangeParams } from '../lib/storage/span-reader';
import { readDependencies, UNKNOWN_CALLEE, type DependencyEdge } from './dependencies';
import type { DraftFinding } from './draft-finding';
import { groupExceptions } from './exceptions';
import type { SpanSelector } from './impact';
import type { Culprit, ReportRequest } from './report-types';
import { oneProportionZ, twoProportionZ } from './statistics';
import { readTraceTrees } from './trace-sample';
import type { TraceTree, TreeNode } from './tree';

/** Thresholds of the failing-dependency test. */
export const FAILING_DEPENDENCY_LIMITS = {
  /** Calls an edge needs in the window before it is tested. */
  minCalls: 20,
  /** Errors an edge needs in the window before it is flagged. */
  minErrors: 5,
  /** Baseline calls needed to compare with the baseline rather than with `expectedErrorRate`. */
  minBaselineCalls: 20,
  /** Error rate assumed when the baseline has too few calls. */
  expectedErrorRate: 0.01,
  /** z of a one-sided test at p = 0.001. */
  minZ: 3.09,
  /** Smallest rise of the error rate worth reporting, as a fraction. */
  minRateIncrease: 0.02,
  /**
   * Error rate from which an edge that failed as often in the baseline is still reported
   * as failing, when the request sets `includeOngoing`.
   */
  minOngoingErrorRate: 0.1,
  /** Failing traces read to find where errors start. */
  sampledTraces: 300,
  /** Share of origins in one instance or version that names it in the culprit. */
  concentratedShare: 0.8,
};

interface FlaggedEdge {
  edge: DependencyEdge;
  baseline?: DependencyEdge;
  z: number;
  /** The edge failed about as often in the baseline: the failure began before it. */
  ongoing: boolean;
}

interface OriginGroup {
  kind: 'failing_dependency' | 'bad_requests';
  culprit: Culprit;
  /** Callee of the edge the origin sits on. */
  callee: string;
  traceIds: Set<string>;
  impacted: Set<string>;
  /** The origin spans, for their exceptions, instances and versions. */
  spans: SpanRecord[];
}

/**
 * Finds edges whose error rate rose significantly against the baseline, then separates
 * cause from propagation: in each failing trace the origin is the deepest error span
 * with no failing span below it, and a service that only passes such an error on is
 * listed as impacted, not blamed.
 */
export async function findFailingDependencies(
  storage: Storage,
  request: ReportRequest,
): Promise<DraftFinding[]> {
  const flagged = await flagEdges(storage, request);
  if (flagged.length === 0) return [];

  const services = [...new Set(flagged.flatMap((item) => [item.edge.caller, item.edge.callee]))];
  const traceIds = await sampleFailingTraces(storage, request, services);
  const trees = await readTraceTrees(storage, traceIds);
  const origins = groupOrigins(trees);

  const findings: DraftFinding[] = [];
  for (const group of origins.values()) {
    const edges = flagged.filter((item) => matchesEdge(group, item.edge));
    if (edges.length === 0) continue;
    findings.push(toFinding(group, edges, traceIds.length, trees));
  }
  return findings.sort((a, b) => b.confidence - a.confidence);
}

function matchesEdge(group: OriginGroup, edge: DependencyEdge): boolean {
  if (group.kind === 'bad_requests') {
    return edge.caller === group.culprit.service && edge.callee === group.callee;
  }
  return edge.callee === group.callee;
}

async function flagEdges(storage: Storage, request: ReportRequest): Promise<FlaggedEdge[]> {
  const limits = FAILING_DEPENDENCY_LIMITS;
  const [window, baseline] = await Promise.all([
    readDependencies(storage, request.window),
    readDependencies(storage, request.baseline),
  ]);
  const flagged: FlaggedEdge[] = [];
  for (const edge of window) {
    if (edge.calls < limits.minCalls || edge.errors < limits.minErrors) continue;
    const before = baseline.find(
      (item) => item.caller === edge.caller && item.callee === edge.callee,
    );
    const rate = edge.errors / edge.calls;
    const hasBaseline = before !== undefined && before.calls >= limits.minBaselineCalls;
    const baselineRate = hasBaseline ? before.errors / before.calls : limits.expectedErrorRate;
    const z = hasBaseline
      ? twoProportionZ(edge.errors, edge.calls, before.errors, before.calls)
      : oneProportionZ(edge.errors, edge.calls, limits.expectedErrorRate);
    if (z >= limits.minZ && rate - baselineRate >= limits.minRateIncrease) {
      flagged.push({ edge, baseline: hasBaseline ? before : undefined, z, ongoing: false });
      continue;
    }
    // An incident older than the baseline shows no rise, yet the dependency still fails.
    const expectedZ = oneProportionZ(edge.errors, edge.calls, limits.expectedErrorRate);
    if (
      request.includeOngoing === true &&
      hasBaseline &&
      rate >= limits.minOngoingErrorRate &&
      expectedZ >= limits.minZ
    ) {
      flagged.push({ edge, baseline: before, z: expectedZ, ongoing: true });
    }
  }
  return flagged;
}

/**
 * Failing traces with an error span in a service of a flagged edge, taken in turns from
 * each ten-minute block of the window: the lowest trace id of every block, then the
 * second lowest, and so on. Trace ids are random, so this is a fair sample of every part
 * of the window, and a block with few failures leaves its share to the others. Spans are
 * sorted by block, then trace id, so the sampled traces sit in the first granules of each
 * block and reading them skips the rest.
 */
async function sampleFailingTraces(
  storage: Storage,
  request: ReportRequest,
  services: string[],
): Promise<string[]> {
  const result = await storage.client.query({
    query: `SELECT leftPad(lower(hex(trace_id)), 32, '0') AS trace_id, min(turn) AS first_turn
FROM (
  SELECT trace_id, row_number() OVER (PARTITION BY block ORDER BY trace_id) AS turn
  FROM (
    SELECT DISTINCT toStartOfTenMinutes(start_time) AS block, trace_id
    FROM ${storage.database}.spans
    WHERE is_error AND ${RANGE_CONDITION}
      AND (service_name IN {services:Array(String)} OR remote_service IN {services:Array(String)})
  )
)
GROUP BY trace_id
ORDER BY first_turn, trace_id
LIMIT {limit:UInt32}`,
    query_params: {
      ...rangeParams(request.window),
      services,
      limit: FAILING_DEPENDENCY_LIMITS.sampledTraces,
    },
    format: 'JSONEachRow',
  });
  return (await result.json<{ trace_id: string }>()).map((row) => row.trace_id);
}

/** Error spans with no error span anywhere below them. */
export function errorOrigins(tree: TraceTree): TreeNode[] {
  const hasErrorBelow = new Map<TreeNode, boolean>();
  for (let index = tree.nodes.length - 1; index >= 0; index -= 1) {
    const node = tree.nodes[index];
    hasErrorBelow.set(
      node,
      node.children.some((child) => child.span.isError || hasErrorBelow.get(child) === true),
    );
  }
  return tree.nodes.filter((node) => node.span.isError && !hasErrorBelow.get(node));
}

/** True for a client span rejected with HTTP 4xx: by the conventions the caller is at fault. */
export function isRejectedRequest(node: TreeNode): boolean {
  const { span } = node;
  return span.kind === 'CLIENT' && span.httpStatusCode >= 400 && span.httpStatusCode < 500;
}

/**
 * Names a span's operation: its name, followed by its `http.route` when the name lacks it,
 * as in express's "request handler" spans, whose name alone does not say which endpoint.
 */
export function operationName(span: SpanRecord): string {
  const route = attributeText(span.attributes, 'http.route');
  return route && !span.name.includes(route) ? `${span.name} ${route}` : span.name;
}

/** Names what an origin span blames: its service, or the node a leaf client span called. */
export function culpritOf(node: TreeNode): Culprit {
  const { span } = node;
  const operation = operationName(span);
  const leafCall =
    (span.kind === 'CLIENT' || span.kind === 'PRODUCER') && node.children.length === 0;
  if (leafCall && span.remoteService && !isRejectedRequest(node)) {
    return { service: span.serviceName, operation, dependency: span.remoteService };
  }
  return { service: span.serviceName, operation };
}

/** Returns the callee of the edge an origin span sits on: the node it called, or its own service. */
function calleeOf(node: TreeNode): string {
  const { span } = node;
  if (span.kind !== 'CLIENT' && span.kind !== 'PRODUCER') return span.serviceName;
  const server = node.children.find((child) => child.span.serviceName !== span.serviceName);
  return server?.span.serviceName ?? (span.remoteService || UNKNOWN_CALLEE);
}

function groupOrigins(trees: TraceTree[]): Map<string, OriginGroup> {
  const groups = new Map<string, OriginGroup>();
  for (const tree of trees) {
    const impactedInTrace = new Set(
      tree.nodes.filter((node) => node.span.isError).map((node) => node.span.serviceName),
    );
    for (const origin of errorOrigins(tree)) {
      const kind = isRejectedRequest(origin) ? 'bad_requests' : 'failing_dependency';
      const culprit = culpritOf(origin);
      const callee = calleeOf(origin);
      const key = [kind, culprit.service, culprit.dependency ?? '', callee].join('\u0000');
      const group = groups.get(key) ?? {
        kind,
        culprit,
        callee,
        traceIds: new Set<string>(),
        impacted: new Set<string>(),
        spans: [],
      };
      group.traceIds.add(tree.traceId);
      group.spans.push(origin.span);
      for (const service of impactedInTrace) {
        if (service !== culprit.service || culprit.dependency) group.impacted.add(service);
      }
      groups.set(key, group);
    }
  }
  return groups;
}

function toFinding(
  group: OriginGroup,
  edges: FlaggedEdge[],
  sampledTraces: number,
  trees: TraceTree[],
): DraftFinding {
  const calls = edges.reduce((sum, item) => sum + item.edge.calls, 0);
  const errors = edges.reduce((sum, item) => sum + item.edge.errors, 0);
  const baselineCalls = edges.reduce((sum, item) => sum + (item.baseline?.calls ?? 0), 0);
  const baselineErrors = edges.reduce((sum, item) => sum + (item.baseline?.errors ?? 0), 0);
  const rate = errors / calls;
  const callers = [...new Set(edges.map((item) => item.edge.caller))];
  const share = group.traceIds.size / Math.max(sampledTraces, 1);
  const culprit = { ...group.culprit, ...concentration(group, trees) };
  const baselineText =
    baselineCalls > 0
      ? `${percent(baselineErrors / baselineCalls)} in the baseline (${baselineErrors} of ${baselineCalls})`
      : 'no baseline traffic';
  const target = culprit.dependency ?? culprit.service;
  const where = culprit.instance ? ` (instance ${culprit.instance})` : '';
  const summary =
    group.kind === 'bad_requests'
      ? `${culprit.service} sends requests that ${group.callee} rejects: ${percent(rate)} of its calls got HTTP 4xx (${errors} of ${calls}) against ${baselineText}; the caller is at fault in ${group.traceIds.size} of ${sampledTraces} sampled failing traces`
      : `${target}${where} is failing: ${percent(rate)} of calls from ${callers.join(', ')} failed (${errors} of ${calls}) against ${baselineText}; it is where the error starts in ${group.traceIds.size} of ${sampledTraces} sampled failing traces`;
  const ongoing = edges.every((item) => item.ongoing);

  return {
    kind: group.kind,
    culprit,
    errorRate: rate,
    // A failure that did not rise in the window ranks below one that did.
    confidence: ongoing ? share / 2 : share,
    summary: ongoing
      ? `${summary}; it failed as often in the baseline, so it began before the baseline`
      : summary,
    impactedServices: [...group.impacted].filter((service) => service !== target).sort(),
    evidence: {
      calls,
      errors,
      errorRate: round(rate),
      baselineCalls,
      baselineErrors,
      baselineErrorRate: baselineCalls > 0 ? round(baselineErrors / baselineCalls) : 'none',
      z: round(Math.max(...edges.map((item) => item.z))),
      failingTraces: group.traceIds.size,
      sampledFailingTraces: sampledTraces,
      originShare: round(share),
      ...(ongoing ? { ongoingSinceBeforeBaseline: 'yes' } : {}),
    },
    exampleTraceIds: [...group.traceIds].slice(0, 5),
    exceptions: groupExceptions(group.spans),
    selector: selectorOf(group),
  };
}

function selectorOf(group: OriginGroup): SpanSelector {
  const { culprit } = group;
  if (group.kind === 'bad_requests') {
    return {
      condition:
        "service_name = {sel_service:String} AND kind = 'CLIENT' AND is_error AND http_status_code BETWEEN 400 AND 499",
      params: { sel_service: culprit.service },
    };
  }
  if (culprit.dependency) {
    return {
      condition:
        "service_name = {sel_service:String} AND remote_service = {sel_dependency:String} AND kind IN ('CLIENT', 'PRODUCER') AND is_error",
      params: { sel_service: culprit.service, sel_dependency: culprit.dependency },
    };
  }
  return {
    condition: 'service_name = {sel_service:String} AND is_error',
    params: { sel_service: culprit.service },
  };
}

/**
 * Names the instance or version that carries the errors when the service ran several in the
 * sampled traces and at least `concentratedShare` of the origins sit in one of them.
 */
function concentration(group: OriginGroup, trees: TraceTree[]): Partial<Culprit> {
  if (group.culprit.dependency) return {};
  const service = group.culprit.service;
  const result: Partial<Culprit> = {};
  const instanceOf = (span: SpanRecord) =>
    attributeText(span.resourceAttributes, 'service.instance.id') ??
    attributeText(span.resourceAttributes, 'host.name') ??
    '';
  const allInstances = new Set<string>();
  const allVersions = new Set<string>();
  for (const tree of trees) {
    for (const node of tree.nodes) {
      if (node.span.serviceName !== service) continue;
      allInstances.add(instanceOf(node.span));
      allVersions.add(node.span.serviceVersion);
    }
  }
  const instance = dominant(group.spans.map(instanceOf));
  if (allInstances.size > 1 && instance) result.instance = instance;
  const version = dominant(group.spans.map((span) => span.serviceVersion));
  if (allVersions.size > 1 && version) result.version = version;
  return result;
}

function dominant(values: string[]): string | undefined {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  for (const [value, count] of counts) {
    if (value && count / values.length >= FAILING_DEPENDENCY_LIMITS.concentratedShare) return value;
  }
  return undefined;
}

function percent(fraction: number): string {
  return `${(fraction * 100).toFixed(1)}%`;
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
