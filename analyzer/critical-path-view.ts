import type { Storage } from '../lib/storage/clickhouse';
import type { TimeRange } from '../lib/storage/span-reader';
import { formatDurationNs } from '../lib/time';
import { criticalPath, criticalPathRoot, pathSpans } from './critical-path';
import { spanExceptions } from './exceptions';
import { culpritOf, errorOrigins } from './failing-dependencies';
import { operationKey, readSelfTimeBaselines } from './self-time-baselines';
import { adjustedTimes, type TraceTree, type TreeNode } from './tree';

/** One span's share of the critical path, compared with its operation's baseline. */
export interface CriticalPathSpanView {
  spanId: string;
  service: string;
  operation: string;
  kind: string;
  /** The called node of a CLIENT or PRODUCER span, when known. */
  dependency?: string;
  onPathMs: number;
  selfTimeMs: number;
  durationMs: number;
  /** Median self time of the operation in the baseline; absent with no baseline spans. */
  baselineSelfTimeMs?: number;
  baselineDurationMs?: number;
  /** Self time minus the baseline's median self time. */
  selfTimeGrowthMs?: number;
}

export interface CriticalPathView {
  traceId: string;
  durationMs: number;
  baseline: { start: string; end: string };
  /** Chronological stretches of the path; times are skew-adjusted. */
  segments: {
    spanId: string;
    service: string;
    operation: string;
    startTimeUnixNano: string;
    endTimeUnixNano: string;
    durationMs: number;
  }[];
  /** Spans on the path, largest self-time growth against their baseline first. */
  spans: CriticalPathSpanView[];
  /**
   * One sentence on why the root failed, if it did, then one on where the time went, if a
   * span grew. Empty when neither applies.
   */
  explanation: string;
}

const nsToMs = (ns: bigint | number) => Math.round(Number(ns) / 1e3) / 1e3;

/** Builds the critical path of a trace and compares each span on it with its baseline. */
export async function buildCriticalPathView(
  storage: Storage,
  tree: TraceTree,
  baseline: TimeRange,
): Promise<CriticalPathView> {
  const segments = criticalPath(tree);
  const spans = pathSpans(segments);
  const keys = [...new Set(spans.map((item) => operationKey(keyOf(item.node))))];
  const baselines = await readSelfTimeBaselines(storage, baseline, keys);

  const spanViews = spans.map(({ node, onPathNs }) => {
    const view: CriticalPathSpanView = {
      spanId: node.span.spanId,
      service: node.span.serviceName,
      operation: node.span.name,
      kind: node.span.kind,
      onPathMs: nsToMs(onPathNs),
      selfTimeMs: nsToMs(node.selfTimeNs),
      durationMs: nsToMs(BigInt(node.span.durationNs)),
    };
    if (isCall(node) && node.span.remoteService) view.dependency = node.span.remoteService;
    const base = baselines.get(operationKey(keyOf(node)));
    if (base) {
      view.baselineSelfTimeMs = nsToMs(base.medianSelfTimeNs);
      view.baselineDurationMs = nsToMs(base.medianDurationNs);
      view.selfTimeGrowthMs = Math.round((view.selfTimeMs - view.baselineSelfTimeMs) * 1e3) / 1e3;
    }
    return view;
  });
  spanViews.sort((a, b) => (b.selfTimeGrowthMs ?? -Infinity) - (a.selfTimeGrowthMs ?? -Infinity));

  // Not the first segment's span: a child that starts with the root owns the first stretch.
  const root = criticalPathRoot(tree);
  return {
    traceId: tree.traceId,
    durationMs: root ? nsToMs(BigInt(root.span.durationNs)) : 0,
    baseline: {
      start: new Date(baseline.startMs).toISOString(),
      end: new Date(baseline.endMs).toISOString(),
    },
    segments: segments.map((segment) => ({
      spanId: segment.node.span.spanId,
      service: segment.node.span.serviceName,
      operation: segment.node.span.name,
      startTimeUnixNano: segment.startNs.toString(),
      endTimeUnixNano: segment.endNs.toString(),
      durationMs: nsToMs(segment.endNs - segment.startNs),
    })),
    spans: spanViews,
    explanation: [explainFailure(tree, root), explain(root, spanViews)]
      .filter((sentence) => sentence !== '')
      .join('. '),
  };
}

function keyOf(node: TreeNode) {
  const { span } = node;
  return {
    service: span.serviceName,
    name: span.name,
    kind: span.kind,
    remoteService: span.remoteService,
  };
}

function isCall(node: TreeNode): boolean {
  return node.span.kind === 'CLIENT' || node.span.kind === 'PRODUCER';
}

/**
 * Explains a failed root, as in "checkout "POST /checkout" failed because payment's call
 * "charge" to cards-api failed: card declined". The origin is the first error span with no
 * error below it, as in the failing dependency report. Empty when the root did not fail.
 */
export function explainFailure(tree: TraceTree, root: TreeNode | undefined): string {
  if (!root?.span.isError) return '';
  const origin = errorOrigins(tree)[0];
  if (!origin) return '';
  const culprit = culpritOf(origin);
  const [exception] = spanExceptions(origin.span);
  const reason = exception?.message ? `: ${exception.message}` : '';
  const rootText = `${root.span.serviceName} ${JSON.stringify(root.span.name)}`;
  if (origin === root) return `${rootText} failed${reason}`;
  const subject = culprit.dependency
    ? `${culprit.service}'s call ${JSON.stringify(culprit.operation)} to ${culprit.dependency}`
    : `${culprit.service} ${JSON.stringify(culprit.operation)}`;
  return `${rootText} failed because ${subject} failed${reason}`;
}

/** "checkout "POST /checkout" took 1.9s because inventory's call "GET" to stock-api took 1.8s instead of 13ms". */
export function explain(root: TreeNode | undefined, spans: CriticalPathSpanView[]): string {
  const top = spans[0];
  if (!root || !top || top.selfTimeGrowthMs === undefined || top.selfTimeGrowthMs <= 0) return '';
  const subject = top.dependency
    ? `${top.service}'s call ${JSON.stringify(top.operation)} to ${top.dependency}`
    : `${top.service} ${JSON.stringify(top.operation)}`;
  const rootText = `${root.span.serviceName} ${JSON.stringify(root.span.name)}`;
  const took = formatDurationNs(top.selfTimeMs * 1e6);
  const usual = formatDurationNs((top.baselineSelfTimeMs ?? 0) * 1e6);
  const total = formatDurationNs(adjustedDuration(root));
  return `${rootText} took ${total} because ${subject} spent ${took} in itself instead of ${usual}`;
}

function adjustedDuration(node: TreeNode): bigint {
  const { startNs, endNs } = adjustedTimes(node);
  return endNs - startNs;
}
