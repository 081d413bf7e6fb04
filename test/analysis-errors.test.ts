import { normalizeMessage, groupExceptions } from '../analyzer/exceptions';
import { culpritOf, errorOrigins, isRejectedRequest } from '../analyzer/failing-dependencies';
import { twoProportionZ } from '../analyzer/statistics';
import { buildTraceTree } from '../analyzer/tree';
import { isErrorSpan } from '../lib/model/conventions';
import { makeSpan, spanId, TRACE_ID } from './helpers/spans';

const error = { isError: true, statusCode: 'ERROR' as const };

describe('error origins', () => {
  it('blames the deepest error span, not the services that pass it on', () => {
    const tree = buildTraceTree(TRACE_ID, [
      makeSpan(1, '', 0, 100, { ...error, serviceName: 'frontend', kind: 'SERVER' }),
      makeSpan(2, 1, 5, 95, { ...error, serviceName: 'frontend', kind: 'CLIENT' }),
      makeSpan(3, 2, 10, 90, { ...error, serviceName: 'payment', kind: 'SERVER' }),
      makeSpan(4, 3, 20, 30, { serviceName: 'payment', kind: 'INTERNAL' }),
    ]);
    const origins = errorOrigins(tree);
    expect(origins.map((node) => node.span.spanId)).toEqual([spanId(3)]);
    expect(culpritOf(origins[0])).toEqual({ service: 'payment', operation: 'op-3' });
  });

  it('adds the route to a handler name', () => {
    const route = { key: 'http.route', value: { stringValue: '/charge' } };
    const tree = buildTraceTree(TRACE_ID, [
      makeSpan(1, '', 0, 10, { kind: 'SERVER', name: 'POST /charge', attributes: [route] }),
      makeSpan(2, 1, 1, 9, { isError: true, name: 'request handler', attributes: [route] }),
    ]);
    const [server, handler] = tree.nodes;
    expect(culpritOf(handler)).toEqual({ service: 'svc', operation: 'request handler /charge' });
    expect(culpritOf(server).operation).toBe('POST /charge');
  });

  it('names the virtual node of a failing leaf call', () => {
    const tree = buildTraceTree(TRACE_ID, [
      makeSpan(1, '', 0, 100, { ...error, serviceName: 'inventory', kind: 'SERVER' }),
      makeSpan(2, 1, 5, 10, {
        ...error,
        serviceName: 'inventory',
        kind: 'CLIENT',
        name: 'SELECT stock',
        remoteService: 'postgresql/inventory',
      }),
    ]);
    const [origin] = errorOrigins(tree);
    expect(culpritOf(origin)).toEqual({
      service: 'inventory',
      operation: 'SELECT stock',
      dependency: 'postgresql/inventory',
    });
  });

  it('blames the caller for a request rejected with 4xx', () => {
    const tree = buildTraceTree(TRACE_ID, [
      makeSpan(1, '', 0, 100, { ...error, serviceName: 'checkout', kind: 'SERVER' }),
      makeSpan(2, 1, 5, 50, {
        isError: isErrorSpan('CLIENT', 'UNSET', 400),
        httpStatusCode: 400,
        serviceName: 'checkout',
        kind: 'CLIENT',
        remoteService: 'payment',
      }),
      makeSpan(3, 2, 10, 40, {
        isError: isErrorSpan('SERVER', 'UNSET', 400),
        httpStatusCode: 400,
        serviceName: 'payment',
        kind: 'SERVER',
      }),
    ]);
    const [origin] = errorOrigins(tree);
    expect(origin.span.spanId).toBe(spanId(2));
    expect(isRejectedRequest(origin)).toBe(true);
    expect(culpritOf(origin)).toEqual({ service: 'checkout', operation: 'op-2' });
  });

  it('treats 4xx as an error only on the client side', () => {
    expect(isErrorSpan('CLIENT', 'UNSET', 404)).toBe(true);
    expect(isErrorSpan('SERVER', 'UNSET', 404)).toBe(false);
    expect(isErrorSpan('SERVER', 'UNSET', 503)).toBe(true);
    expect(isErrorSpan('SERVER', 'OK', 503)).toBe(false);
  });
});

describe('exception grouping', () => {
  it.each([
    ['order 12345 failed', 'order <n> failed'],
    ['user 550e8400-e29b-41d4-a716-446655440000 not found', 'user <uuid> not found'],
    ['connection to 10.0.3.7:5432 reset', 'connection to <ip> reset'],
    ['key "cart:991" missing', 'key <str> missing'],
    ['trace 4bf92f3577b34da6 dropped', 'trace <hex> dropped'],
    ['charge ch_9f8e7d6c5b4a failed', 'charge <id> failed'],
    ['mail to ann@example.com bounced', 'mail to <email> bounced'],
  ])('normalizes %j', (message, expected) => {
    expect(normalizeMessage(message)).toBe(expected);
  });

  it('puts messages that differ only in numbers in one group', () => {
    const exception = (message: string) => ({
      events: [
        {
          timeUnixNano: '1',
          name: 'exception',
          attributes: [
            { key: 'exception.type', value: { stringValue: 'Timeout' } },
            { key: 'exception.message', value: { stringValue: message } },
          ],
          droppedAttributesCount: 0,
        },
      ],
    });
    const groups = groupExceptions([
      makeSpan(1, '', 0, 1, { serviceName: 'db', ...exception('timeout after 2000ms') }),
      makeSpan(2, '', 0, 1, { serviceName: 'db', ...exception('timeout after 3150ms') }),
      makeSpan(3, '', 0, 1, { serviceName: 'db', statusMessage: 'disk full' }),
    ]);
    expect(groups).toEqual([
      {
        service: 'db',
        type: 'Timeout',
        message: 'timeout after <n>ms',
        example: 'timeout after 2000ms',
        count: 2,
      },
      { service: 'db', type: '', message: 'disk full', example: 'disk full', count: 1 },
    ]);
  });
});

describe('two-proportion test', () => {
  it('separates a real rise from a steady rate', () => {
    expect(twoProportionZ(90, 300, 0, 300)).toBeGreaterThan(9);
    expect(twoProportionZ(30, 300, 29, 300)).toBeLessThan(1);
  });
});
