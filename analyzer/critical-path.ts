import { adjustedTimes, type TraceTree, type TreeNode } from './tree';

/** A stretch of time on the critical path spent in one span and not in any of its children. */
export interface PathSegment {
  node: TreeNode;
  startNs: bigint;
  endNs: bigint;
}

/** Time one span contributes to the critical path. */
export interface PathSpan {
  node: TreeNode;
  onPathNs: bigint;
}

/**
 * Computes the critical path of a trace: walking back from the end of the root, the path
 * enters the child that finished last before the current point, and the parent owns the gaps
 * between such children. Times are skew-adjusted. The root is the earliest real root, or,
 * when every span has a missing parent, the longest span.
 */
export function criticalPath(tree: TraceTree): PathSegment[] {
  const root = criticalPathRoot(tree);
  if (!root) return [];
  const segments: PathSegment[] = [];
  walk(root, adjustedTimes(root).endNs, segments);
  return segments.reverse();
}

/** Returns the span the critical path starts from; see `criticalPath`. */
export function criticalPathRoot(tree: TraceTree): TreeNode | undefined {
  const real = tree.roots.find((node) => !node.missingParent && !node.cycleBroken);
  if (real) return real;
  let longest: TreeNode | undefined;
  for (const node of tree.roots) {
    if (!longest || BigInt(node.span.durationNs) > BigInt(longest.span.durationNs)) longest = node;
  }
  return longest;
}

/** Appends segments latest first; iterative over siblings, recursive over depth. */
function walk(node: TreeNode, boundNs: bigint, segments: PathSegment[]): void {
  const { startNs, endNs } = adjustedTimes(node);
  let cursor = endNs < boundNs ? endNs : boundNs;
  const children = [...node.children].sort((a, b) => {
    const diff = adjustedTimes(b).endNs - adjustedTimes(a).endNs;
    return diff > 0n ? 1 : diff < 0n ? -1 : 0;
  });
  for (const child of children) {
    const times = adjustedTimes(child);
    if (times.startNs >= cursor || times.endNs <= startNs) continue;
    const childEnd = times.endNs < cursor ? times.endNs : cursor;
    if (childEnd < cursor) segments.push({ node, startNs: childEnd, endNs: cursor });
    walk(child, childEnd, segments);
    cursor = times.startNs > startNs ? times.startNs : startNs;
    if (cursor <= startNs) break;
  }
  if (cursor > startNs) segments.push({ node, startNs, endNs: cursor });
}

/** Sums the critical-path time of each span, largest first. */
export function pathSpans(segments: PathSegment[]): PathSpan[] {
  const totals = new Map<TreeNode, bigint>();
  for (const segment of segments) {
    totals.set(segment.node, (totals.get(segment.node) ?? 0n) + (segment.endNs - segment.startNs));
  }
  return [...totals.entries()]
    .map(([node, onPathNs]) => ({ node, onPathNs }))
    .sort((a, b) => (b.onPathNs > a.onPathNs ? 1 : b.onPathNs < a.onPathNs ? -1 : 0));
}
