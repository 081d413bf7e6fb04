import type { Storage } from '../lib/storage/clickhouse';
import { RANGE_CONDITION, rangeParams } from '../lib/storage/span-reader';
import { readDependencies, type DependencyEdge } from './dependencies';
import type { Culprit, Finding, ReportRequest } from './report-types';
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
  /** Failing traces read to find where errors start. */
  sampledTraces: 300,
};

interface FlaggedEdge {
  edge: DependencyEdge;
  baseline?: DependencyEdge;
  z: number;
}

interface OriginGroup {
  culprit: Culprit;
  traceIds: Set<string>;
  impacted: Set<string>;
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
): Promise<Finding[]> {
  const flagged = await flagEdges(storage, request);
  if (flagged.length === 0) return [];

  const traceIds = await sampleFailingTraces(storage, request);
  const trees = await readTraceTrees(storage, traceIds);
  const origins = groupOrigins(trees);

  const findings: Finding[] = [];
  for (const group of origins.values()) {
    const calleeName = group.culprit.dependency ?? group.culprit.service;
    const edges = flagged.filter((item) => item.edge.callee === calleeName);
    if (edges.length === 0) continue;
    findings.push(toFinding(group, edges, traceIds.length));
  }
  return findings.sort(
    (a, b) => Number(b.evidence.failingTraces) - Number(a.evidence.failingTraces),
  );
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
      flagged.push({ edge, baseline: hasBaseline ? before : undefined, z });
    }
  }
  return flagged;
}

async function sampleFailingTraces(storage: Storage, request: ReportRequest): Promise<string[]> {
  const result = await storage.client.query({
    query: `SELECT DISTINCT leftPad(lower(hex(trace_id)), 32, '0') AS trace_id
FROM ${storage.database}.spans
WHERE is_error AND ${RANGE_CONDITION}
ORDER BY cityHash64(trace_id)
LIMIT {limit:UInt32}`,
    query_params: {
      ...rangeParams(request.window),
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

/** Names what an origin span blames: its service, or the node a leaf client span called. */
export function culpritOf(node: TreeNode): Culprit {
  const { span } = node;
  const leafCall =
    (span.kind === 'CLIENT' || span.kind === 'PRODUCER') && node.children.length === 0;
  if (leafCall && span.remoteService) {
    return { service: span.serviceName, operation: span.name, dependency: span.remoteService };
  }
  return { service: span.serviceName, operation: span.name };
}

function groupOrigins(trees: TraceTree[]): Map<string, OriginGroup> {
  const groups = new Map<string, OriginGroup>();
  for (const tree of trees) {
    const impactedInTrace = new Set(
      tree.nodes.filter((node) => node.span.isError).map((node) => node.span.serviceName),
    );
    for (const origin of errorOrigins(tree)) {
      const culprit = culpritOf(origin);
      const key = `${culprit.service}\u0000${culprit.dependency ?? ''}`;
      const group = groups.get(key) ?? {
        culprit,
        traceIds: new Set<string>(),
        impacted: new Set<string>(),
      };
      group.traceIds.add(tree.traceId);
      for (const service of impactedInTrace) {
        if (service !== culprit.service || culprit.dependency) group.impacted.add(service);
      }
      groups.set(key, group);
    }
  }
  return groups;
}

function toFinding(group: OriginGroup, edges: FlaggedEdge[], sampledTraces: number): Finding {
  const calls = edges.reduce((sum, item) => sum + item.edge.calls, 0);
  const errors = edges.reduce((sum, item) => sum + item.edge.errors, 0);
  const baselineCalls = edges.reduce((sum, item) => sum + (item.baseline?.calls ?? 0), 0);
  const baselineErrors = edges.reduce((sum, item) => sum + (item.baseline?.errors ?? 0), 0);
  const rate = errors / calls;
  const callers = edges.map((item) => item.edge.caller);
  const target = group.culprit.dependency ?? group.culprit.service;
  const share = group.traceIds.size / Math.max(sampledTraces, 1);
  const baselineText =
    baselineCalls > 0
      ? `${percent(baselineErrors / baselineCalls)} in the baseline (${baselineErrors} of ${baselineCalls})`
      : 'no baseline traffic';

  return {
    kind: 'failing_dependency',
    culprit: group.culprit,
    severity: rate >= 0.2 ? 'critical' : rate >= 0.05 ? 'high' : 'medium',
    summary: `${target} is failing: ${percent(rate)} of calls from ${callers.join(', ')} failed (${errors} of ${calls}) against ${baselineText}; it is where the error starts in ${group.traceIds.size} of ${sampledTraces} sampled failing traces`,
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
    },
    exampleTraceIds: [...group.traceIds].slice(0, 5),
  };
}

function percent(fraction: number): string {
  return `${(fraction * 100).toFixed(1)}%`;
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
