import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import protobuf from 'protobufjs';
import { syntheticTraces, takeSpans } from '../bench/synthetic';
import { decodeProtobufRequest } from '../lib/otlp/decode';
import { decodeSpansFast } from '../lib/otlp/fast-decode';
import { flattenExportRequest, type FlattenResult } from '../lib/otlp/flatten';
import { ExportTraceServiceRequest } from '../lib/otlp/proto';

const TRACE_ID = Buffer.from('5b8efff798038103d269b633813fc60c', 'hex');
const SPAN_ID = Buffer.from('eee19b7ec3c1b174', 'hex');
const PARENT_ID = Buffer.from('eee19b7ec3c1b173', 'hex');

/**
 * The generic decoder gives an absent bytes field as an empty array, which the
 * flattener reads as an invalid parent id, so every root span sent without a
 * parent_span_id field gets an `invalid_parent_span_id` warning there. The fast decoder
 * treats such a span as a root span, so this removes that one warning from the
 * reference for spans whose body had no parent id field.
 */
function withoutAbsentParentWarning(result: FlattenResult, parentless: Set<string>) {
  for (const span of result.spans) {
    if (!parentless.has(span.spanId)) continue;
    span.ingestWarnings = span.ingestWarnings.filter((w) => w !== 'invalid_parent_span_id');
  }
  return result;
}

function reference(body: Uint8Array): FlattenResult {
  const request = decodeProtobufRequest(body) as any;
  const parentless = new Set<string>();
  for (const resourceSpans of request.resourceSpans ?? []) {
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        if (!(span.parentSpanId instanceof Uint8Array)) {
          parentless.add(Buffer.from(span.spanId ?? []).toString('hex'));
        }
      }
    }
  }
  return withoutAbsentParentWarning(flattenExportRequest(request), parentless);
}

function encode(object: Record<string, unknown>): Uint8Array {
  return ExportTraceServiceRequest.encode(ExportTraceServiceRequest.fromObject(object)).finish();
}

function span(fields: Record<string, unknown>): Record<string, unknown> {
  return {
    traceId: TRACE_ID,
    spanId: SPAN_ID,
    parentSpanId: PARENT_ID,
    name: 'GET /cart',
    kind: 2,
    startTimeUnixNano: '1700000000000000000',
    endTimeUnixNano: '1700000000250000000',
    ...fields,
  };
}

function request(spans: Record<string, unknown>[], resource?: Record<string, unknown>) {
  return encode({
    resourceSpans: [
      {
        resource: resource ?? {
          attributes: [{ key: 'service.name', value: { stringValue: 'checkout' } }],
        },
        scopeSpans: [{ scope: { name: 'scope', version: '1.0' }, spans }],
      },
    ],
  });
}

describe('fast protobuf decoder', () => {
  it('equals the reference on exporter output', () => {
    const traces = syntheticTraces({ seed: 3, startMs: 1_700_000_000_000, traceIntervalMs: 7 });
    const body = ProtobufTraceSerializer.serializeRequest(takeSpans(traces, 2000))!;
    const fast = decodeSpansFast(body);
    expect(fast.spans.length).toBeGreaterThanOrEqual(2000);
    expect(fast).toEqual(reference(body));
  });

  const cases: [string, Uint8Array][] = [
    ['short trace id', request([span({ traceId: Buffer.alloc(8, 1) })])],
    ['zero trace id', request([span({ traceId: Buffer.alloc(16) })])],
    ['missing span id', request([span({ spanId: undefined }), span({ name: 'kept' })])],
    ['zero span id', request([span({ spanId: Buffer.alloc(8) })])],
    ['zero parent id', request([span({ parentSpanId: Buffer.alloc(8) })])],
    ['empty parent id', request([span({ parentSpanId: Buffer.alloc(0) })])],
    ['short parent id', request([span({ parentSpanId: Buffer.alloc(3, 7) })])],
    ['absent parent id', request([span({ parentSpanId: undefined })])],
    ['missing service name', request([span({})], { attributes: [] })],
    ['absent resource', encode({ resourceSpans: [{ scopeSpans: [{ spans: [span({})] }] }] })],
    ['end before start', request([span({ endTimeUnixNano: '1' })])],
    ['missing start', request([span({ startTimeUnixNano: undefined })])],
    ['huge timestamps', request([span({ endTimeUnixNano: '18446744073709551615' })])],
    ['unknown kind', request([span({ kind: 99 })])],
    ['negative kind', request([span({ kind: -1 })])],
    ['error status', request([span({ status: { code: 2, message: 'card declined' } })])],
    ['unknown status', request([span({ status: { code: 7 } })])],
    [
      'flags and counts',
      request([
        span({
          flags: 0xffffffff,
          droppedAttributesCount: 4,
          droppedEventsCount: 2,
          droppedLinksCount: 1,
        }),
      ]),
    ],
    [
      'every value type',
      request([
        span({
          attributes: [
            { key: 'text', value: { stringValue: 'héllo' } },
            { key: 'flag', value: { boolValue: true } },
            { key: 'negative', value: { intValue: '-9223372036854775808' } },
            { key: 'big', value: { intValue: '9223372036854775807' } },
            { key: 'ratio', value: { doubleValue: 0.25 } },
            {
              key: 'list',
              value: { arrayValue: { values: [{ intValue: 1 }, {}, { stringValue: 'x' }] } },
            },
            {
              key: 'map',
              value: {
                kvlistValue: {
                  values: [{ key: 'inner', value: { boolValue: false } }, { value: {} }],
                },
              },
            },
            { key: 'raw', value: { bytesValue: Buffer.from([0, 1, 254]) } },
            { key: 'no bytes', value: { bytesValue: Buffer.alloc(0) } },
            { key: 'empty', value: {} },
            { key: 'absent' },
            { value: { stringValue: 'no key' } },
            { key: 'http.response.status_code', value: { intValue: 503 } },
          ],
        }),
      ]),
    ],
    [
      'events and links',
      request([
        span({
          kind: 3,
          attributes: [{ key: 'peer.service', value: { stringValue: 'payment' } }],
          events: [
            {
              timeUnixNano: '1700000000100000000',
              name: 'exception',
              attributes: [{ key: 'exception.type', value: { stringValue: 'Timeout' } }],
              droppedAttributesCount: 1,
            },
            {},
          ],
          links: [
            {
              traceId: TRACE_ID,
              spanId: PARENT_ID,
              traceState: 'a=b',
              flags: 1,
              attributes: [{ key: 'k', value: { intValue: 2 } }],
            },
            { traceId: Buffer.alloc(3), spanId: PARENT_ID },
            { spanId: PARENT_ID },
          ],
        }),
      ]),
    ],
  ];

  it.each(cases)('equals the reference: %s', (_name, body) => {
    expect(decodeSpansFast(body)).toEqual(reference(body));
  });

  it('reads a resource sent after its spans and repeated fields', () => {
    const writer = protobuf.Writer.create();
    const resourceSpans = protobuf.Writer.create();
    const scopeSpans = ExportTraceServiceRequest.lookupType(
      'opentelemetry.proto.trace.v1.ScopeSpans',
    );
    const resource = ExportTraceServiceRequest.lookupType(
      'opentelemetry.proto.resource.v1.Resource',
    );
    const scopeBytes = scopeSpans.encode(scopeSpans.fromObject({ spans: [span({})] })).finish();
    const first = resource
      .encode(
        resource.fromObject({
          attributes: [{ key: 'service.name', value: { stringValue: 'old' } }],
        }),
      )
      .finish();
    const last = resource
      .encode(
        resource.fromObject({
          attributes: [{ key: 'service.name', value: { stringValue: 'new' } }],
        }),
      )
      .finish();
    resourceSpans.uint32((2 << 3) | 2).bytes(scopeBytes);
    resourceSpans.uint32((1 << 3) | 2).bytes(first);
    resourceSpans.uint32((99 << 3) | 0).uint32(5);
    resourceSpans.uint32((1 << 3) | 2).bytes(last);
    writer.uint32((1 << 3) | 2).bytes(resourceSpans.finish());
    const body = writer.finish();
    const fast = decodeSpansFast(body);
    expect(fast.spans[0].serviceName).toBe('new');
    expect(fast).toEqual(reference(body));
  });

  it('rejects a truncated body like the reference', () => {
    const body = cases.find(([name]) => name === 'events and links')![1];
    for (let length = 1; length < body.length; length += 1) {
      const cut = body.subarray(0, length);
      let expected: FlattenResult | undefined;
      try {
        expected = reference(cut);
      } catch {
        expected = undefined;
      }
      if (expected === undefined) {
        expect(() => decodeSpansFast(cut)).toThrow(
          expect.objectContaining({ code: 'FL_UNDECODABLE_BODY' }),
        );
      } else {
        expect(decodeSpansFast(cut)).toEqual(expected);
      }
    }
  });
});
