import { buildTraceTree } from '../analyzer/tree';
import type { SpanKind, SpanRecord } from '../lib/model/span';
import { makeSpan, TRACE_ID } from './helpers/spans';

function span(
  spanId: string,
  parentSpanId: string,
  startMs: number,
  endMs: number,
  kind: SpanKind = 'INTERNAL',
): SpanRecord {
  return makeSpan(0, '', startMs, endMs, { spanId, parentSpanId, name: `op-${spanId}`, kind });
}

const id = (n: number) => n.toString(16).padStart(16, '0');

describe('trace tree', () => {
  it('nests children under parents by start time', () => {
    const tree = buildTraceTree(TRACE_ID, [
      span(id(3), id(1), 30, 40),
      span(id(1), '', 0, 100),
      span(id(2), id(1), 10, 20),
    ]);
    expect(tree.roots).toHaveLength(1);
    expect(tree.roots[0].children.map((node) => node.span.spanId)).toEqual([id(2), id(3)]);
    expect(tree.nodes.map((node) => node.depth)).toEqual([0, 1, 1]);
  });

  it('keeps a span whose parent is missing and marks it', () => {
    const tree = buildTraceTree(TRACE_ID, [
      span(id(1), '', 0, 100),
      span(id(5), id(9), 10, 20),
      span(id(6), id(5), 12, 15),
    ]);
    expect(tree.nodes).toHaveLength(3);
    const orphan = tree.roots.find((node) => node.span.spanId === id(5))!;
    expect(orphan.missingParent).toBe(true);
    expect(orphan.children.map((node) => node.span.spanId)).toEqual([id(6)]);
    expect(tree.roots.find((node) => node.span.spanId === id(1))!.missingParent).toBe(false);
  });

  it('computes self time without double-counting overlapping children', () => {
    const tree = buildTraceTree(TRACE_ID, [
      span(id(1), '', 0, 100),
      span(id(2), id(1), 10, 50),
      span(id(3), id(1), 30, 60),
    ]);
    expect(tree.roots[0].selfTimeNs).toBe(50_000_000n);
  });

  it('breaks a parent cycle without dropping spans', () => {
    const tree = buildTraceTree(TRACE_ID, [span(id(1), id(2), 0, 10), span(id(2), id(1), 5, 8)]);
    expect(tree.nodes).toHaveLength(2);
    expect(tree.roots).toHaveLength(1);
    expect(tree.roots[0].cycleBroken).toBe(true);
    expect(tree.roots[0].children).toHaveLength(1);
  });

  it('breaks a self-parent link', () => {
    const tree = buildTraceTree(TRACE_ID, [span(id(1), id(1), 0, 10)]);
    expect(tree.roots).toHaveLength(1);
    expect(tree.roots[0].cycleBroken).toBe(true);
    expect(tree.roots[0].missingParent).toBe(false);
  });

  it('collapses duplicate spans', () => {
    const tree = buildTraceTree(TRACE_ID, [span(id(1), '', 0, 10), span(id(1), '', 0, 10)]);
    expect(tree.nodes).toHaveLength(1);
  });

  it('puts the server half of a shared span id under the client half', () => {
    const tree = buildTraceTree(TRACE_ID, [
      span(id(1), '', 0, 100, 'SERVER'),
      span(id(2), id(1), 10, 90, 'CLIENT'),
      span(id(2), id(1), 12, 88, 'SERVER'),
      span(id(3), id(2), 20, 30, 'CLIENT'),
    ]);
    const client = tree.roots[0].children[0];
    expect(client.span.kind).toBe('CLIENT');
    expect(client.children.map((node) => node.span.kind)).toEqual(['SERVER']);
    expect(client.children[0].children.map((node) => node.span.spanId)).toEqual([id(3)]);
  });
});
