import type { SpanRecord } from '../lib/model/span';

/** A span in a rebuilt trace tree. */
export interface TreeNode {
  span: SpanRecord;
  children: TreeNode[];
  /** Depth below its root; roots are 0. */
  depth: number;
  /** True when the span names a parent that is not among the trace's spans. */
  missingParent: boolean;
  /** True when the span's parent link closed a cycle and was cut to make it a root. */
  cycleBroken: boolean;
  /** Duration minus the time covered by its children, in nanoseconds. */
  selfTimeNs: bigint;
}

export interface TraceTree {
  traceId: string;
  /** Root spans first, then spans whose parent is missing, each ordered by start time. */
  roots: TreeNode[];
  /** Every node, parents before children. */
  nodes: TreeNode[];
}

function byStart(a: TreeNode, b: TreeNode): number {
  const diff = BigInt(a.span.startTimeUnixNano) - BigInt(b.span.startTimeUnixNano);
  return diff < 0n ? -1 : diff > 0n ? 1 : a.span.spanId.localeCompare(b.span.spanId);
}

/**
 * Rebuilds the tree of one trace from its spans by parent links. A span whose parent is
 * absent is kept as an extra root and marked `missingParent`; no span is dropped.
 */
export function buildTraceTree(traceId: string, spans: SpanRecord[]): TraceTree {
  const nodes = new Map<string, TreeNode>();
  for (const span of spans) {
    const key = nodeKey(span);
    if (nodes.has(key)) continue;
    nodes.set(key, {
      span,
      children: [],
      depth: 0,
      missingParent: false,
      cycleBroken: false,
      selfTimeNs: 0n,
    });
  }

  // A Zipkin shared span id names two spans: the client half is the parent of the
  // server half, and the server half is the parent of the spans below it.
  const bySpanId = new Map<string, TreeNode>();
  const clientBySpanId = new Map<string, TreeNode>();
  for (const node of nodes.values()) {
    if (node.span.kind === 'CLIENT') clientBySpanId.set(node.span.spanId, node);
    if (node.span.kind !== 'CLIENT' || !bySpanId.has(node.span.spanId))
      bySpanId.set(node.span.spanId, node);
  }

  const roots: TreeNode[] = [];
  const parents = new Map<TreeNode, TreeNode>();
  for (const node of nodes.values()) {
    const parent = findParent(node, bySpanId, clientBySpanId);
    if (parent) {
      parent.children.push(node);
      parents.set(node, parent);
    } else {
      const selfParent = node.span.parentSpanId === node.span.spanId;
      node.cycleBroken = selfParent;
      node.missingParent = node.span.parentSpanId !== '' && !selfParent;
      roots.push(node);
    }
  }

  const ordered: TreeNode[] = [];
  const visited = new Set<TreeNode>();
  visit(roots.sort(byStart), ordered, visited);

  // Nodes never reached sit on a parent cycle: cut the link of the earliest one and go on.
  const unreached = [...nodes.values()].filter((node) => !visited.has(node)).sort(byStart);
  for (const node of unreached) {
    if (visited.has(node)) continue;
    const parent = parents.get(node);
    if (parent) parent.children = parent.children.filter((child) => child !== node);
    node.cycleBroken = true;
    node.depth = 0;
    roots.push(node);
    visit([node], ordered, visited);
  }
  return { traceId, roots, nodes: ordered };
}

function visit(start: TreeNode[], ordered: TreeNode[], visited: Set<TreeNode>): void {
  const stack = [...start].reverse();
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (visited.has(node)) continue;
    visited.add(node);
    node.children.sort(byStart);
    node.selfTimeNs = selfTime(node);
    ordered.push(node);
    for (let index = node.children.length - 1; index >= 0; index -= 1) {
      node.children[index].depth = node.depth + 1;
      stack.push(node.children[index]);
    }
  }
}

function nodeKey(span: SpanRecord): string {
  return `${span.spanId}/${span.kind}`;
}

function findParent(
  node: TreeNode,
  bySpanId: Map<string, TreeNode>,
  clientBySpanId: Map<string, TreeNode>,
): TreeNode | undefined {
  const { span } = node;
  if (span.kind === 'SERVER') {
    const sharedClient = clientBySpanId.get(span.spanId);
    if (sharedClient) return sharedClient;
  }
  if (!span.parentSpanId) return undefined;
  const parent = bySpanId.get(span.parentSpanId);
  return parent && parent !== node ? parent : undefined;
}

/** Duration not covered by any child; overlapping children count once. */
function selfTime(node: TreeNode): bigint {
  const start = BigInt(node.span.startTimeUnixNano);
  const end = BigInt(node.span.endTimeUnixNano);
  const intervals = node.children
    .map(
      (child) =>
        [BigInt(child.span.startTimeUnixNano), BigInt(child.span.endTimeUnixNano)] as const,
    )
    .map(
      ([childStart, childEnd]) =>
        [childStart < start ? start : childStart, childEnd > end ? end : childEnd] as const,
    )
    .filter(([childStart, childEnd]) => childEnd > childStart);
  intervals.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));

  let covered = 0n;
  let cursor = start;
  for (const [childStart, childEnd] of intervals) {
    const from = childStart > cursor ? childStart : cursor;
    if (childEnd > from) {
      covered += childEnd - from;
      cursor = childEnd;
    }
  }
  return end - start - covered;
}
