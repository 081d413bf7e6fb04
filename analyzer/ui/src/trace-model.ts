import type { SpanView, TraceView } from './api';

/** A span placed on the trace's timeline, in milliseconds from the trace start. */
export interface SpanRow {
  span: SpanView;
  parent?: SpanRow;
  offsetMs: number;
  endMs: number;
  depth: number;
  hasChildren: boolean;
  onCriticalPath: boolean;
  /** Milliseconds by which the span sits outside its parent in a way clocks in step cannot cause; 0 when it does not. */
  skewMs: number;
}

function toMs(nanos: string, startNanos: bigint): number {
  return Number(BigInt(nanos) - startNanos) / 1e6;
}

/**
 * Offset below which a span outside its parent is not marked. SDKs in different processes
 * on one host differ by fractions of a millisecond, because each derives wall time from
 * its own start-up reading of the clock.
 */
const SKEW_TOLERANCE_MS = 1;

/**
 * A child that starts before its parent, or a server span that ends after the client span
 * that called it, cannot happen with clocks in step, so it marks clock skew between hosts.
 * Asynchronous children may end after their parent and are not marked for that.
 */
function skewOf(row: SpanRow): number {
  const parent = row.parent;
  if (!parent) return 0;
  const early = parent.offsetMs - row.offsetMs;
  if (early > SKEW_TOLERANCE_MS) return early;
  const late = row.endMs - parent.endMs;
  if (parent.span.kind === 'CLIENT' && row.span.kind === 'SERVER' && late > SKEW_TOLERANCE_MS) {
    return late;
  }
  return 0;
}

/**
 * Marks the critical path: from the end of the longest root, it repeatedly takes the child
 * that finished last before the current point, then moves the point to that child's start.
 */
function markCriticalPath(row: SpanRow, childrenOf: Map<SpanRow, SpanRow[]>): void {
  row.onCriticalPath = true;
  let cursor = row.endMs;
  const children = [...(childrenOf.get(row) ?? [])].sort((a, b) => b.endMs - a.endMs);
  for (const child of children) {
    if (child.offsetMs >= cursor) continue;
    if (child.endMs > cursor && child !== children[0]) continue;
    markCriticalPath(child, childrenOf);
    cursor = child.offsetMs;
  }
}

/** Flattens a trace tree to rows in display order, with timing, critical path and skew marks. */
export function buildRows(trace: TraceView): SpanRow[] {
  const startNanos = BigInt(trace.startTimeUnixNano);
  const rows: SpanRow[] = [];
  const childrenOf = new Map<SpanRow, SpanRow[]>();
  const visit = (span: SpanView, parent: SpanRow | undefined, depth: number) => {
    const row: SpanRow = {
      span,
      parent,
      offsetMs: toMs(span.startTimeUnixNano, startNanos),
      endMs: toMs(span.endTimeUnixNano, startNanos),
      depth,
      hasChildren: span.children.length > 0,
      onCriticalPath: false,
      skewMs: 0,
    };
    row.skewMs = skewOf(row);
    rows.push(row);
    if (parent) childrenOf.set(parent, [...(childrenOf.get(parent) ?? []), row]);
    for (const child of span.children) visit(child, row, depth + 1);
  };
  for (const root of trace.roots) visit(root, undefined, 0);

  const roots = rows.filter((row) => !row.parent);
  const longest = roots.sort((a, b) => b.endMs - b.offsetMs - (a.endMs - a.offsetMs))[0];
  if (longest) markCriticalPath(longest, childrenOf);
  return rows;
}

/** Rows shown when the spans in `collapsed` hide their descendants. */
export function visibleRows(rows: SpanRow[], collapsed: Set<string>): SpanRow[] {
  return rows.filter((row) => {
    for (let parent = row.parent; parent; parent = parent.parent) {
      if (collapsed.has(parent.span.spanId)) return false;
    }
    return true;
  });
}

/** Spans with children deeper than `depth`, collapsed at first in large traces. */
export function collapseBelow(rows: SpanRow[], depth: number): Set<string> {
  return new Set(
    rows.filter((row) => row.hasChildren && row.depth >= depth).map((row) => row.span.spanId),
  );
}
