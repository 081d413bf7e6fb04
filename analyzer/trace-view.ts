import { toPlainObject, type PlainValue } from '../lib/model/attributes';
import { adjustedTimes, type NodeLink, type TraceTree, type TreeNode } from './tree';

/** A span as the query API returns it, with its children nested. */
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
  /** Shift that would place the span inside its parent recorded by another service; 0 when it fits. */
  clockSkewMs: number;
  /** Start and end after clock-skew adjustment; the raw times above stay as recorded. */
  adjustedStartTimeUnixNano: string;
  adjustedEndTimeUnixNano: string;
  /** Resolved links: OTLP span links and producer-to-consumer hops, never parent links. */
  relatedSpans: NodeLink[];
  /** True for the placeholder that groups spans whose root is not stored. */
  synthetic?: boolean;
  attributes: Record<string, PlainValue>;
  resource: Record<string, PlainValue>;
  scope: { name: string; version: string; attributes: Record<string, PlainValue> };
  events: { timeUnixNano: string; name: string; attributes: Record<string, PlainValue> }[];
  links: {
    traceId: string;
    spanId: string;
    traceState: string;
    attributes: Record<string, PlainValue>;
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
  /** Spans whose parent is not stored; they are roots in `roots`, marked `missingParent`. */
  missingParentCount: number;
  /** Spans whose parent link closed a cycle and was cut. */
  cycleBrokenCount: number;
  /** Spans recorded outside their parent by another service's clock. */
  clockSkewedCount: number;
  /** True when no root span is stored, so `roots` holds one synthetic root over the orphans. */
  missingRoot: boolean;
  roots: SpanView[];
}

function nsToMs(ns: bigint | string): number {
  return Number(BigInt(ns)) / 1e6;
}

function toSpanView(node: TreeNode): SpanView {
  const { span } = node;
  return {
    spanId: span.spanId,
    parentSpanId: span.parentSpanId,
    name: span.name,
    kind: span.kind,
    serviceName: span.serviceName,
    serviceVersion: span.serviceVersion,
    startTimeUnixNano: span.startTimeUnixNano,
    endTimeUnixNano: span.endTimeUnixNano,
    durationMs: nsToMs(span.durationNs),
    selfTimeMs: nsToMs(node.selfTimeNs),
    depth: node.depth,
    status: { code: span.statusCode, message: span.statusMessage },
    isError: span.isError,
    missingParent: node.missingParent,
    cycleBroken: node.cycleBroken,
    clockSkewMs: nsToMs(node.clockSkewNs),
    adjustedStartTimeUnixNano: adjustedTimes(node).startNs.toString(),
    adjustedEndTimeUnixNano: adjustedTimes(node).endNs.toString(),
    relatedSpans: node.links,
    attributes: toPlainObject(span.attributes),
    resource: toPlainObject(span.resourceAttributes),
    scope: {
      name: span.scopeName,
      version: span.scopeVersion,
      attributes: toPlainObject(span.scopeAttributes),
    },
    events: span.events.map((event) => ({
      timeUnixNano: event.timeUnixNano,
      name: event.name,
      attributes: toPlainObject(event.attributes),
    })),
    links: span.links.map((link) => ({
      traceId: link.traceId,
      spanId: link.spanId,
      traceState: link.traceState,
      attributes: toPlainObject(link.attributes),
    })),
    droppedAttributesCount: span.droppedAttributesCount,
    droppedEventsCount: span.droppedEventsCount,
    droppedLinksCount: span.droppedLinksCount,
    ingestWarnings: span.ingestWarnings,
    children: node.children.map(toSpanView),
  };
}

/** Shapes a rebuilt trace for the query API. */
export function toTraceView(tree: TraceTree): TraceView {
  let start: bigint | undefined;
  let end: bigint | undefined;
  for (const { span } of tree.nodes) {
    const spanStart = BigInt(span.startTimeUnixNano);
    const spanEnd = BigInt(span.endTimeUnixNano);
    if (start === undefined || spanStart < start) start = spanStart;
    if (end === undefined || spanEnd > end) end = spanEnd;
  }
  const missingRoot =
    tree.roots.length > 0 && tree.roots.every((node) => node.missingParent || node.cycleBroken);
  return {
    traceId: tree.traceId,
    spanCount: tree.nodes.length,
    errorCount: tree.nodes.filter((node) => node.span.isError).length,
    services: [...new Set(tree.nodes.map((node) => node.span.serviceName))].sort(),
    startTimeUnixNano: String(start ?? 0n),
    durationMs: nsToMs((end ?? 0n) - (start ?? 0n)),
    missingParentCount: tree.nodes.filter((node) => node.missingParent).length,
    cycleBrokenCount: tree.nodes.filter((node) => node.cycleBroken).length,
    clockSkewedCount: tree.nodes.filter((node) => node.clockSkewNs !== 0n).length,
    missingRoot,
    roots: missingRoot ? [syntheticRoot(tree, start ?? 0n, end ?? 0n)] : tree.roots.map(toSpanView),
  };
}

/** Groups root-less spans under one placeholder so that the trace still reads as one tree. */
function syntheticRoot(tree: TraceTree, start: bigint, end: bigint): SpanView {
  return {
    spanId: '',
    parentSpanId: '',
    name: '(missing root span)',
    kind: 'UNSPECIFIED',
    serviceName: '',
    serviceVersion: '',
    startTimeUnixNano: start.toString(),
    endTimeUnixNano: end.toString(),
    durationMs: nsToMs(end - start),
    selfTimeMs: 0,
    depth: -1,
    status: { code: 'UNSET', message: '' },
    isError: false,
    missingParent: false,
    cycleBroken: false,
    clockSkewMs: 0,
    adjustedStartTimeUnixNano: start.toString(),
    adjustedEndTimeUnixNano: end.toString(),
    relatedSpans: [],
    synthetic: true,
    attributes: {},
    resource: {},
    scope: { name: '', version: '', attributes: {} },
    events: [],
    links: [],
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
    ingestWarnings: [],
    children: tree.roots.map(toSpanView),
  };
}
