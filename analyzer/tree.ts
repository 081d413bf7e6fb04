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
  /**
   * Shift, in nanoseconds, that would place this span inside its parent when the two were
   * recorded by different services whose clocks disagree; 0 when it fits or has no parent.
   */
  clockSkewNs: bigint;
  /** Total shift applied to this span's times by clock-skew adjustment: its own and its ancestors'. */
  adjustmentNs: bigint;
  /** Links to other spans: OTLP span links, and a consumer's producer when the hop is asynchronous. */
  links: NodeLink[];
}

/** A link from a span to another span, in this trace or another. */
export interface NodeLink {
  traceId: string;
  spanId: string;
  /** `link` for an OTLP span link, `follows_from` for a consumer span to its producer. */
  relation: 'link' | 'follows_from';
  /** True when the linked span is stored as part of this trace. */
  inTrace: boolean;
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
      clockSkewNs: 0n,
      adjustmentNs: 0n,
      links: [],
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
    if (parent && isAsyncHop(parent, node)) {
      // A message handled after it was sent is a follows-from relation: nesting the
      // consumer under the producer would stretch the producer over the queue wait.
      node.links.push(followsFrom(parent, 'follows_from'));
      parent.links.push(followsFrom(node, 'follows_from'));
      roots.push(node);
    } else if (parent) {
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
  addSpanLinks(ordered, bySpanId);
  measureClockSkew(ordered);
  for (const node of ordered) node.selfTimeNs = selfTime(node);
  return { traceId, roots, nodes: ordered };
}

function isAsyncHop(parent: TreeNode, child: TreeNode): boolean {
  return parent.span.kind === 'PRODUCER' && child.span.kind === 'CONSUMER';
}

function followsFrom(target: TreeNode, relation: NodeLink['relation']): NodeLink {
  return { traceId: target.span.traceId, spanId: target.span.spanId, relation, inTrace: true };
}

function addSpanLinks(nodes: TreeNode[], bySpanId: Map<string, TreeNode>): void {
  for (const node of nodes) {
    for (const link of node.span.links) {
      const inTrace = link.traceId === node.span.traceId && bySpanId.has(link.spanId);
      node.links.push({ traceId: link.traceId, spanId: link.spanId, relation: 'link', inTrace });
    }
  }
}

/**
 * How far a child may stick out of its parent before it counts as clock skew. SDKs take a
 * span's start from a millisecond clock or from a time origin of their own process. So a
 * child in another process on the same host may sit up to about two milliseconds outside
 * its parent (seen with OpenTelemetry JS services on one host), which is no skew.
 */
const SKEW_TOLERANCE_NS = 2_000_000n;

/**
 * Measures clock skew the way tracing UIs adjust it. A span recorded by another service than
 * its parent that sticks out of the parent by more than `SKEW_TOLERANCE_NS` is shifted to
 * sit centred in it, or to start with it when it is longer, and its subtree moves with it.
 * Spans of one service share a clock, so a child outside a parent of the same service is
 * left as recorded. Nodes must be ordered parents before children.
 */
function measureClockSkew(nodes: TreeNode[]): void {
  const parentOf = new Map<TreeNode, TreeNode>();
  for (const node of nodes) for (const child of node.children) parentOf.set(child, node);
  for (const node of nodes) {
    const parent = parentOf.get(node);
    if (!parent) continue;
    node.adjustmentNs = parent.adjustmentNs;
    if (parent.span.serviceName === node.span.serviceName) continue;
    const parentStart = BigInt(parent.span.startTimeUnixNano) + parent.adjustmentNs;
    const parentEnd = BigInt(parent.span.endTimeUnixNano) + parent.adjustmentNs;
    const start = BigInt(node.span.startTimeUnixNano) + node.adjustmentNs;
    const end = BigInt(node.span.endTimeUnixNano) + node.adjustmentNs;
    if (start >= parentStart - SKEW_TOLERANCE_NS && end <= parentEnd + SKEW_TOLERANCE_NS) continue;
    const duration = end - start;
    const parentDuration = parentEnd - parentStart;
    const target =
      duration <= parentDuration ? parentStart + (parentDuration - duration) / 2n : parentStart;
    node.clockSkewNs = target - start;
    node.adjustmentNs += node.clockSkewNs;
  }
}

/** Start and end of a span after clock-skew adjustment, in nanoseconds since the epoch. */
export function adjustedTimes(node: TreeNode): { startNs: bigint; endNs: bigint } {
  return {
    startNs: BigInt(node.span.startTimeUnixNano) + node.adjustmentNs,
    endNs: BigInt(node.span.endTimeUnixNano) + node.adjustmentNs,
  };
}

function visit(start: TreeNode[], ordered: TreeNode[], visited: Set<TreeNode>): void {
  const stack = [...start].reverse();
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (visited.has(node)) continue;
    visited.add(node);
    node.children.sort(byStart);
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

/** Duration not covered by any child after skew adjustment; overlapping children count once. */
function selfTime(node: TreeNode): bigint {
  const { startNs: start, endNs: end } = adjustedTimes(node);
  const intervals = node.children
    .map((child) => adjustedTimes(child))
    .map(({ startNs, endNs }) => [startNs, endNs] as const)
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
