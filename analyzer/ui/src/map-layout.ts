import type { DependencyEdge, Finding } from './api';

export interface MapNode {
  name: string;
  level: number;
  x: number;
  y: number;
  radius: number;
  calls: number;
  virtual: boolean;
  culprit?: Finding;
}

export interface MapEdge {
  edge: DependencyEdge;
  from: MapNode;
  to: MapNode;
  width: number;
  errorRate: number;
  /** A failing-dependency finding that blames this call, or an error rate over the threshold. */
  failing: boolean;
  slow: boolean;
  finding?: Finding;
}

export interface MapLayout {
  nodes: MapNode[];
  edges: MapEdge[];
  width: number;
  height: number;
}

/** Error rate from which an edge is drawn as failing even without a finding. */
export const FAILING_ERROR_RATE = 0.05;

/**
 * Computes each node's longest call depth from the nodes that no service calls. Cycles
 * stop after one round per node.
 */
function levels(names: string[], edges: DependencyEdge[]): Map<string, number> {
  const level = new Map(names.map((name) => [name, 0]));
  for (let round = 0; round < names.length; round += 1) {
    let changed = false;
    for (const edge of edges) {
      const next = (level.get(edge.caller) ?? 0) + 1;
      if (edge.caller !== edge.callee && next > (level.get(edge.callee) ?? 0)) {
        level.set(edge.callee, next);
        changed = true;
      }
    }
    if (!changed) break;
  }
  return level;
}

/** Finds the finding that blames the call `caller → callee`, if any. */
export function findingForEdge(edge: DependencyEdge, findings: Finding[]): Finding | undefined {
  return findings.find(
    (finding) =>
      (finding.culprit.dependency === edge.callee && finding.culprit.service === edge.caller) ||
      (!finding.culprit.dependency &&
        finding.culprit.service === edge.callee &&
        finding.kind === 'failing_dependency'),
  );
}

/** Places services left to right by call depth, with sizes by traffic. */
export function layoutMap(edges: DependencyEdge[], findings: Finding[]): MapLayout {
  const names = [...new Set(edges.flatMap((edge) => [edge.caller, edge.callee]))].sort();
  const level = levels(names, edges);
  const traffic = new Map<string, number>();
  for (const edge of edges) {
    traffic.set(edge.caller, (traffic.get(edge.caller) ?? 0) + edge.calls);
    traffic.set(edge.callee, (traffic.get(edge.callee) ?? 0) + edge.calls);
  }
  const maxTraffic = Math.max(1, ...traffic.values());
  const columns = new Map<number, string[]>();
  for (const name of names) {
    const column = level.get(name) ?? 0;
    columns.set(column, [...(columns.get(column) ?? []), name]);
  }
  const columnCount = Math.max(1, columns.size);
  const rowCount = Math.max(1, ...[...columns.values()].map((column) => column.length));
  const width = Math.max(640, columnCount * 220);
  const height = Math.max(320, rowCount * 120);
  const virtualNames = new Set(edges.filter((e) => e.virtualCallee).map((e) => e.callee));
  const nodes = new Map<string, MapNode>();
  for (const [column, members] of columns) {
    members.forEach((name, index) => {
      nodes.set(name, {
        name,
        level: column,
        x: ((column + 0.5) / columnCount) * width,
        y: ((index + 0.5) / members.length) * height,
        radius: 14 + 22 * Math.sqrt((traffic.get(name) ?? 0) / maxTraffic),
        calls: traffic.get(name) ?? 0,
        virtual: virtualNames.has(name),
        culprit: findings.find(
          (finding) => (finding.culprit.dependency ?? finding.culprit.service) === name,
        ),
      });
    });
  }
  const maxCalls = Math.max(1, ...edges.map((edge) => edge.calls));
  const mapEdges = edges.map((edge) => {
    const finding = findingForEdge(edge, findings);
    const errorRate = edge.calls > 0 ? edge.errors / edge.calls : 0;
    return {
      edge,
      from: nodes.get(edge.caller)!,
      to: nodes.get(edge.callee)!,
      width: 1.5 + (8 * Math.log(edge.calls + 1)) / Math.log(maxCalls + 1),
      errorRate,
      failing: finding?.kind === 'failing_dependency' || errorRate >= FAILING_ERROR_RATE,
      slow: finding?.kind === 'latency_outlier',
      finding,
    };
  });
  return { nodes: [...nodes.values()], edges: mapEdges, width, height };
}
