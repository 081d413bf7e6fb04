import { toPlainObject, type PlainValue } from '../lib/model/attributes';
import type { TraceTree, TreeNode } from './tree';

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
  return {
    traceId: tree.traceId,
    spanCount: tree.nodes.length,
    errorCount: tree.nodes.filter((node) => node.span.isError).length,
    services: [...new Set(tree.nodes.map((node) => node.span.serviceName))].sort(),
    startTimeUnixNano: String(start ?? 0n),
    durationMs: nsToMs((end ?? 0n) - (start ?? 0n)),
    missingParentCount: tree.nodes.filter((node) => node.missingParent).length,
    roots: tree.roots.map(toSpanView),
  };
}
