import { criticalPath, criticalPathRoot, pathSpans } from '../analyzer/critical-path';
import { explain, explainFailure } from '../analyzer/critical-path-view';
import { toTraceView } from '../analyzer/trace-view';
import { adjustedTimes, buildTraceTree } from '../analyzer/tree';
import { makeSpan, spanId, TRACE_ID } from './helpers/spans';

describe('trace reconstruction', () => {
  it('groups orphans under a synthetic root when the root is missing', () => {
    const tree = buildTraceTree(TRACE_ID, [
      makeSpan(2, 1, 10, 50),
      makeSpan(3, 1, 20, 60),
      makeSpan(4, 2, 15, 30),
    ]);
    const view = toTraceView(tree);
    expect(view.missingRoot).toBe(true);
    expect(view.roots).toHaveLength(1);
    expect(view.roots[0].synthetic).toBe(true);
    expect(view.roots[0].children.map((child) => child.spanId)).toEqual([spanId(2), spanId(3)]);
    expect(view.roots[0].children.every((child) => child.missingParent)).toBe(true);
    expect(view.spanCount).toBe(3);
  });

  it('keeps a real root without a synthetic one', () => {
    const view = toTraceView(
      buildTraceTree(TRACE_ID, [makeSpan(1, '', 0, 100), makeSpan(5, 9, 10, 20)]),
    );
    expect(view.missingRoot).toBe(false);
    expect(view.roots.map((root) => root.spanId)).toEqual([spanId(1), spanId(5)]);
    expect(view.missingParentCount).toBe(1);
  });

  it('rebuilds the same tree whatever order spans arrive in', () => {
    const spans = [
      makeSpan(1, '', 0, 100),
      makeSpan(2, 1, 10, 40),
      makeSpan(3, 2, 12, 30),
      makeSpan(4, 1, 50, 90),
    ];
    const shape = (order: typeof spans) =>
      buildTraceTree(TRACE_ID, order).nodes.map((node) => `${node.span.spanId}@${node.depth}`);
    expect(shape([...spans].reverse())).toEqual(shape(spans));
    expect(shape([spans[2], spans[0], spans[3], spans[1]])).toEqual(shape(spans));
  });

  it('breaks a three-span cycle and keeps every span', () => {
    const tree = buildTraceTree(TRACE_ID, [
      makeSpan(1, 3, 0, 10),
      makeSpan(2, 1, 1, 9),
      makeSpan(3, 2, 2, 8),
    ]);
    expect(tree.nodes).toHaveLength(3);
    expect(tree.nodes.filter((node) => node.cycleBroken)).toHaveLength(1);
    expect(tree.roots).toHaveLength(1);
  });

  it('measures clock skew of a child from another service', () => {
    // The server's clock runs 500 ms ahead of the client's.
    const tree = buildTraceTree(TRACE_ID, [
      makeSpan(1, '', 0, 100, { kind: 'CLIENT', serviceName: 'checkout' }),
      makeSpan(2, 1, 530, 590, { kind: 'SERVER', serviceName: 'payment' }),
      makeSpan(3, 2, 540, 580, { serviceName: 'payment' }),
    ]);
    const [client, server, inner] = tree.nodes;
    expect(client.clockSkewNs).toBe(0n);
    expect(server.clockSkewNs).toBe(-510_000_000n);
    expect(adjustedTimes(server).startNs).toBe(20_000_000n);
    expect(adjustedTimes(server).endNs).toBe(80_000_000n);
    // The subtree moves with it, and its own skew is zero.
    expect(inner.clockSkewNs).toBe(0n);
    expect(adjustedTimes(inner).startNs).toBe(30_000_000n);
    // Raw times stay as recorded.
    expect(server.span.startTimeUnixNano).toBe('530000000');
    const view = toTraceView(tree);
    expect(view.clockSkewedCount).toBe(1);
    expect(view.roots[0].children[0].clockSkewMs).toBe(-510);
    expect(view.roots[0].children[0].startTimeUnixNano).toBe('530000000');
    expect(view.roots[0].children[0].adjustedStartTimeUnixNano).toBe('20000000');
  });

  it('starts the critical path at the root when a child starts with it', () => {
    const tree = buildTraceTree(TRACE_ID, [
      makeSpan(1, '', 0, 40, { kind: 'SERVER', serviceName: 'storefront', name: 'GET /buy' }),
      makeSpan(2, 1, 0, 30, { serviceName: 'storefront', name: 'request handler' }),
    ]);
    expect(criticalPath(tree)[0].node.span.name).toBe('request handler');
    expect(criticalPathRoot(tree)?.span.name).toBe('GET /buy');
    const handler = {
      spanId: spanId(2),
      service: 'storefront',
      operation: 'request handler',
      kind: 'INTERNAL',
      onPathMs: 30,
      selfTimeMs: 30,
      durationMs: 30,
      baselineSelfTimeMs: 5,
      selfTimeGrowthMs: 25,
    };
    expect(explain(criticalPathRoot(tree), [handler])).toBe(
      'storefront "GET /buy" took 40ms because storefront "request handler" spent 30ms in itself instead of 5ms',
    );
  });

  it('explains a failed trace by its origin', () => {
    const failed = { isError: true, statusCode: 'ERROR' as const };
    const tree = buildTraceTree(TRACE_ID, [
      makeSpan(1, '', 0, 40, {
        ...failed,
        kind: 'SERVER',
        serviceName: 'checkout',
        name: 'POST /checkout',
      }),
      makeSpan(2, 1, 5, 30, {
        ...failed,
        kind: 'CLIENT',
        serviceName: 'checkout',
        name: 'charge',
        remoteService: 'cards-api',
        events: [
          {
            timeUnixNano: '20000000',
            name: 'exception',
            attributes: [{ key: 'exception.message', value: { stringValue: 'card declined' } }],
            droppedAttributesCount: 0,
          },
        ],
      }),
    ]);
    expect(explainFailure(tree, criticalPathRoot(tree))).toBe(
      'checkout "POST /checkout" failed because checkout\'s call "charge" to cards-api failed: card declined',
    );
  });

  it('explains a root that failed alone', () => {
    const tree = buildTraceTree(TRACE_ID, [
      makeSpan(1, '', 0, 40, { isError: true, statusMessage: 'timed out', name: 'GET /buy' }),
      makeSpan(2, 1, 5, 30),
    ]);
    expect(explainFailure(tree, criticalPathRoot(tree))).toBe('svc "GET /buy" failed: timed out');
  });

  it('gives no failure for a good root', () => {
    const tree = buildTraceTree(TRACE_ID, [
      makeSpan(1, '', 0, 40),
      makeSpan(2, 1, 5, 30, { isError: true }),
    ]);
    expect(explainFailure(tree, criticalPathRoot(tree))).toBe('');
  });

  it('leaves a child within two milliseconds unadjusted', () => {
    // Start times rounded to a whole millisecond put the server 1.8 ms before its client.
    const tree = buildTraceTree(TRACE_ID, [
      makeSpan(1, '', 10, 20, { kind: 'CLIENT', serviceName: 'checkout' }),
      makeSpan(2, 1, 8.2, 19, { kind: 'SERVER', serviceName: 'payment' }),
    ]);
    expect(tree.nodes[1].clockSkewNs).toBe(0n);
  });

  it('adjusts a child three milliseconds early', () => {
    const tree = buildTraceTree(TRACE_ID, [
      makeSpan(1, '', 10, 20, { kind: 'CLIENT', serviceName: 'checkout' }),
      makeSpan(2, 1, 7, 15, { kind: 'SERVER', serviceName: 'payment' }),
    ]);
    expect(tree.nodes[1].clockSkewNs).toBe(4_000_000n);
  });

  it('leaves a same-service child outside its parent unadjusted', () => {
    const tree = buildTraceTree(TRACE_ID, [makeSpan(1, '', 0, 100), makeSpan(2, 1, 90, 150)]);
    expect(tree.nodes[1].clockSkewNs).toBe(0n);
  });

  it('aligns a child longer than its parent to the parent start', () => {
    const tree = buildTraceTree(TRACE_ID, [
      makeSpan(1, '', 0, 100, { kind: 'CLIENT', serviceName: 'a' }),
      makeSpan(2, 1, -50, 150, { kind: 'SERVER', serviceName: 'b' }),
    ]);
    expect(tree.nodes[1].clockSkewNs).toBe(50_000_000n);
  });

  it('shows a consumer as linked to its producer, not as its child', () => {
    const tree = buildTraceTree(TRACE_ID, [
      makeSpan(1, '', 0, 10, { serviceName: 'orders' }),
      makeSpan(2, 1, 2, 4, { kind: 'PRODUCER', serviceName: 'orders' }),
      makeSpan(3, 2, 5000, 5100, { kind: 'CONSUMER', serviceName: 'mailer' }),
    ]);
    const producer = tree.nodes.find((node) => node.span.spanId === spanId(2))!;
    const consumer = tree.nodes.find((node) => node.span.spanId === spanId(3))!;
    expect(producer.children).toHaveLength(0);
    expect(tree.roots).toContain(consumer);
    expect(consumer.missingParent).toBe(false);
    expect(consumer.links).toEqual([
      { traceId: TRACE_ID, spanId: spanId(2), relation: 'follows_from', inTrace: true },
    ]);
    expect(producer.links[0].spanId).toBe(spanId(3));
    // The producer's self time is not stretched over the queue wait.
    expect(producer.selfTimeNs).toBe(2_000_000n);
  });

  it('resolves span links inside and outside the trace', () => {
    const other = 'ffffffffffffffffffffffffffffffff';
    const link = { traceState: '', attributes: [], droppedAttributesCount: 0, flags: 0 };
    const tree = buildTraceTree(TRACE_ID, [
      makeSpan(1, '', 0, 100),
      makeSpan(2, 1, 10, 20, {
        links: [
          { ...link, traceId: TRACE_ID, spanId: spanId(1) },
          { ...link, traceId: other, spanId: spanId(7) },
        ],
      }),
    ]);
    expect(tree.nodes[1].links.map((item) => [item.relation, item.inTrace])).toEqual([
      ['link', true],
      ['link', false],
    ]);
  });

  it('builds a 100,000-span trace without recursion limits', () => {
    const spans = [makeSpan(1, '', 0, 200_000)];
    for (let id = 2; id <= 100_000; id += 1) {
      // Half the spans hang in one long chain, half fan out under the root.
      const parent = id % 2 === 0 ? id - 2 || 1 : 1;
      spans.push(makeSpan(id, parent, id, id + 1));
    }
    const tree = buildTraceTree(TRACE_ID, spans);
    expect(tree.nodes).toHaveLength(100_000);
    expect(criticalPath(tree).length).toBeGreaterThan(0);
  });
});

describe('critical path', () => {
  it('follows the child that ends last and gives gaps to the parent', () => {
    const tree = buildTraceTree(TRACE_ID, [
      makeSpan(1, '', 0, 100, { serviceName: 'frontend' }),
      makeSpan(2, 1, 10, 30, { serviceName: 'frontend' }),
      makeSpan(3, 1, 20, 90, { serviceName: 'frontend' }),
      makeSpan(4, 3, 25, 85, { serviceName: 'frontend' }),
    ]);
    const segments = criticalPath(tree).map((segment) => [
      segment.node.span.spanId,
      Number(segment.startNs / 1_000_000n),
      Number(segment.endNs / 1_000_000n),
    ]);
    expect(segments).toEqual([
      [spanId(1), 0, 10],
      [spanId(2), 10, 20],
      [spanId(3), 20, 25],
      [spanId(4), 25, 85],
      [spanId(3), 85, 90],
      [spanId(1), 90, 100],
    ]);
    const totals = pathSpans(criticalPath(tree));
    expect(totals[0].node.span.spanId).toBe(spanId(4));
    expect(totals[0].onPathNs).toBe(60_000_000n);
  });

  it('covers the whole root duration exactly once', () => {
    const tree = buildTraceTree(TRACE_ID, [
      makeSpan(1, '', 0, 100),
      makeSpan(2, 1, 0, 60),
      makeSpan(3, 1, 40, 100),
      makeSpan(4, 2, 5, 55),
    ]);
    const total = criticalPath(tree).reduce((sum, item) => sum + (item.endNs - item.startNs), 0n);
    expect(total).toBe(100_000_000n);
  });

  it('uses the longest orphan when no root is stored', () => {
    const tree = buildTraceTree(TRACE_ID, [makeSpan(2, 1, 0, 10), makeSpan(3, 1, 0, 50)]);
    expect(criticalPath(tree)[0].node.span.spanId).toBe(spanId(3));
  });
});
