import { decodeJsonRequest, decodeProtobufRequest, encodeExportResponse } from '../lib/otlp/decode';
import { flattenExportRequest } from '../lib/otlp/flatten';
import { UNKNOWN_SERVICE } from '../lib/otlp/span-repairs';
import { ExportTraceServiceRequest, ExportTraceServiceResponse } from '../lib/otlp/proto';
import { FaultlineError } from '../lib/errors';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';
const PARENT_ID = '53995c3f42cd8ad8';

function jsonRequest(span: Record<string, unknown>, resourceAttributes?: unknown[]): any {
  return {
    resourceSpans: [
      {
        resource: {
          attributes: resourceAttributes ?? [
            { key: 'service.name', value: { stringValue: 'checkout' } },
          ],
        },
        scopeSpans: [{ scope: { name: 'scope-a', version: '0.1' }, spans: [span] }],
      },
    ],
  };
}

function encodeJson(value: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(value));
}

describe('OTLP/JSON decoding', () => {
  it('reads hex ids in either case', () => {
    const request = decodeJsonRequest(
      encodeJson(
        jsonRequest({ traceId: TRACE_ID.toUpperCase(), spanId: SPAN_ID, parentSpanId: PARENT_ID }),
      ),
    );
    const [span] = flattenExportRequest(request).spans;
    expect(span.traceId).toBe(TRACE_ID);
    expect(span.spanId).toBe(SPAN_ID);
    expect(span.parentSpanId).toBe(PARENT_ID);
  });

  it('reads int64 values as strings or numbers', () => {
    const request = decodeJsonRequest(
      encodeJson(
        jsonRequest({
          traceId: TRACE_ID,
          spanId: SPAN_ID,
          startTimeUnixNano: '1700000000000000001',
          endTimeUnixNano: 1700000000500000000,
          attributes: [
            { key: 'big', value: { intValue: '9223372036854775807' } },
            { key: 'small', value: { intValue: 42 } },
          ],
        }),
      ),
    );
    const [span] = flattenExportRequest(request).spans;
    expect(span.startTimeUnixNano).toBe('1700000000000000001');
    expect(span.endTimeUnixNano).toBe('1700000000500000000');
    expect(span.attributes).toEqual([
      { key: 'big', value: { intValue: '9223372036854775807' } },
      { key: 'small', value: { intValue: '42' } },
    ]);
  });

  it('keeps out-of-range int64 as text', () => {
    const request = decodeJsonRequest(
      encodeJson(
        jsonRequest({
          traceId: TRACE_ID,
          spanId: SPAN_ID,
          startTimeUnixNano: '1700000000000000000',
          endTimeUnixNano: '1700000000000000001',
          attributes: [
            { key: 'too.big', value: { intValue: '99999999999999999999' } },
            { key: 'too.small', value: { intValue: '-9223372036854775809' } },
            { key: 'min', value: { intValue: '-9223372036854775808' } },
          ],
        }),
      ),
    );
    const [span] = flattenExportRequest(request).spans;
    expect(span.attributes).toEqual([
      { key: 'too.big', value: { stringValue: '99999999999999999999' } },
      { key: 'too.small', value: { stringValue: '-9223372036854775809' } },
      { key: 'min', value: { intValue: '-9223372036854775808' } },
    ]);
    expect(span.ingestWarnings).toContain('invalid_int');
  });

  it('reads object field values', () => {
    // JSON.parse gives an own toString that is not a function, where String() and
    // Number() throw.
    const broken = { toString: [] };
    const request = decodeJsonRequest(
      encodeJson(
        jsonRequest({
          traceId: TRACE_ID,
          spanId: SPAN_ID,
          name: broken,
          startTimeUnixNano: '1700000000000000001',
          endTimeUnixNano: { low: 1, high: 0, toString: [] },
          droppedAttributesCount: broken,
          attributes: [{ key: 'ratio', value: { doubleValue: broken } }],
        }),
      ),
    );
    const [span] = flattenExportRequest(request).spans;
    expect(span.name).toBe('{"toString":[]}');
    expect(span.droppedAttributesCount).toBe(0);
    expect(span.attributes).toEqual([{ key: 'ratio', value: { doubleValue: 0 } }]);
    expect(span.startTimeUnixNano).toBe('1700000000000000001');
  });

  it('reads enums as numbers or names', () => {
    const request = decodeJsonRequest(
      encodeJson(
        jsonRequest({
          traceId: TRACE_ID,
          spanId: SPAN_ID,
          kind: 'SPAN_KIND_CLIENT',
          status: { code: 2, message: 'boom' },
        }),
      ),
    );
    const [span] = flattenExportRequest(request).spans;
    expect(span.kind).toBe('CLIENT');
    expect(span.statusCode).toBe('ERROR');
    expect(span.isError).toBe(true);
  });

  it('rejects a body that is not JSON', () => {
    expect(() => decodeJsonRequest(Buffer.from('{"resourceSpans": ['))).toThrow(FaultlineError);
    expect(() => decodeJsonRequest(Buffer.from('[]'))).toThrow(/expected an object/);
  });
});

describe('OTLP protobuf decoding', () => {
  it('decodes what the same schema encodes', () => {
    const message = ExportTraceServiceRequest.fromObject({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'payment' } }] },
          scopeSpans: [
            {
              scope: { name: 'scope-b' },
              spans: [
                {
                  traceId: Buffer.from(TRACE_ID, 'hex'),
                  spanId: Buffer.from(SPAN_ID, 'hex'),
                  name: 'charge',
                  kind: 2,
                  startTimeUnixNano: '1700000000000000000',
                  endTimeUnixNano: '1700000000250000000',
                  attributes: [
                    { key: 'http.response.status_code', value: { intValue: 502 } },
                    { key: 'ratio', value: { doubleValue: 0.5 } },
                    { key: 'blob', value: { bytesValue: Buffer.from([1, 2, 3]) } },
                    {
                      key: 'nested',
                      value: {
                        kvlistValue: { values: [{ key: 'inner', value: { boolValue: true } }] },
                      },
                    },
                  ],
                },
              ],
            },
          ],
        },
      ],
    });
    const bytes = ExportTraceServiceRequest.encode(message).finish();
    const [span] = flattenExportRequest(decodeProtobufRequest(bytes)).spans;
    expect(span.traceId).toBe(TRACE_ID);
    expect(span.kind).toBe('SERVER');
    expect(span.durationNs).toBe('250000000');
    expect(span.httpStatusCode).toBe(502);
    expect(span.isError).toBe(true);
    expect(span.attributes).toEqual([
      { key: 'http.response.status_code', value: { intValue: '502' } },
      { key: 'ratio', value: { doubleValue: 0.5 } },
      { key: 'blob', value: { bytesValue: 'AQID' } },
      {
        key: 'nested',
        value: { kvlistValue: { values: [{ key: 'inner', value: { boolValue: true } }] } },
      },
    ]);
  });

  it('reads a span without parent_span_id as a root', () => {
    const message = ExportTraceServiceRequest.fromObject({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'payment' } }] },
          scopeSpans: [
            {
              spans: [
                {
                  traceId: Buffer.from(TRACE_ID, 'hex'),
                  spanId: Buffer.from(SPAN_ID, 'hex'),
                  startTimeUnixNano: '1700000000000000000',
                  endTimeUnixNano: '1700000000250000000',
                },
              ],
            },
          ],
        },
      ],
    });
    const bytes = ExportTraceServiceRequest.encode(message).finish();
    const [span] = flattenExportRequest(decodeProtobufRequest(bytes)).spans;
    expect(span.parentSpanId).toBe('');
    expect(span.ingestWarnings).toEqual([]);
  });

  it('rejects a truncated body with a clear error', () => {
    const message = ExportTraceServiceRequest.fromObject({
      resourceSpans: [{ scopeSpans: [{ spans: [{ name: 'x'.repeat(100) }] }] }],
    });
    const bytes = ExportTraceServiceRequest.encode(message).finish();
    expect(() => decodeProtobufRequest(bytes.subarray(0, bytes.length - 10))).toThrow(
      /invalid protobuf ExportTraceServiceRequest/,
    );
  });

  it('encodes partial success in the response', () => {
    const bytes = encodeExportResponse('protobuf', {
      rejectedSpans: 2,
      errorMessage: 'bad id',
    }) as Buffer;
    const decoded = ExportTraceServiceResponse.toObject(ExportTraceServiceResponse.decode(bytes), {
      longs: String,
    });
    expect(decoded).toEqual({ partialSuccess: { rejectedSpans: '2', errorMessage: 'bad id' } });
    expect(encodeExportResponse('json', { rejectedSpans: 0, errorMessage: '' })).toEqual({});
  });
});

describe('span flattening', () => {
  it('rejects spans with invalid ids and counts them', () => {
    const request = {
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                { traceId: '0'.repeat(32), spanId: SPAN_ID, name: 'zero trace' },
                { traceId: TRACE_ID, spanId: 'abc', name: 'short span' },
                { traceId: TRACE_ID, spanId: SPAN_ID, name: 'good' },
              ],
            },
          ],
        },
      ],
    };
    const result = flattenExportRequest(request);
    expect(result.spans.map((span) => span.name)).toEqual(['good']);
    expect(result.rejectedSpans).toBe(2);
    expect(result.errorMessage).toMatch(/invalid trace id "0{32}" in span "zero trace"/);
  });

  it('repairs end before start and marks it', () => {
    const result = flattenExportRequest(
      jsonRequest({
        traceId: TRACE_ID,
        spanId: SPAN_ID,
        startTimeUnixNano: '1700000000000002000',
        endTimeUnixNano: '1700000000000001000',
      }),
    );
    const [span] = result.spans;
    expect(span.durationNs).toBe('0');
    expect(span.endTimeUnixNano).toBe('1700000000000002000');
    expect(span.ingestWarnings).toContain('end_before_start');
  });

  it('names a span without service.name unknown_service', () => {
    const result = flattenExportRequest(jsonRequest({ traceId: TRACE_ID, spanId: SPAN_ID }, []));
    expect(result.spans[0].serviceName).toBe(UNKNOWN_SERVICE);
    expect(result.spans[0].ingestWarnings).toContain('missing_service_name');
  });

  it('treats an all-zero parent id as a root', () => {
    const result = flattenExportRequest(
      jsonRequest({ traceId: TRACE_ID, spanId: SPAN_ID, parentSpanId: '0000000000000000' }),
    );
    expect(result.spans[0].parentSpanId).toBe('');
  });

  it('names the callee of a client span', () => {
    const cases: [Record<string, unknown>[], string][] = [
      [[{ key: 'peer.service', value: { stringValue: 'stock-api' } }], 'stock-api'],
      [[{ key: 'db.system', value: { stringValue: 'redis' } }], 'redis'],
      [
        [
          { key: 'messaging.system', value: { stringValue: 'kafka' } },
          { key: 'messaging.destination.name', value: { stringValue: 'orders' } },
        ],
        'kafka/orders',
      ],
      [
        [
          { key: 'server.address', value: { stringValue: 'api.example.com' } },
          { key: 'server.port', value: { intValue: '443' } },
        ],
        'api.example.com:443',
      ],
      [[{ key: 'http.url', value: { stringValue: 'http://10.1.2.3:8080/x' } }], '10.1.2.3:8080'],
    ];
    for (const [attributes, expected] of cases) {
      const result = flattenExportRequest(
        jsonRequest({ traceId: TRACE_ID, spanId: SPAN_ID, kind: 3, attributes }),
      );
      expect(result.spans[0].remoteService).toBe(expected);
    }
  });

  it('counts 4xx as an error only on the client side', () => {
    const status = [{ key: 'http.status_code', value: { intValue: '404' } }];
    const server = flattenExportRequest(
      jsonRequest({ traceId: TRACE_ID, spanId: SPAN_ID, kind: 2, attributes: status }),
    );
    const client = flattenExportRequest(
      jsonRequest({ traceId: TRACE_ID, spanId: SPAN_ID, kind: 3, attributes: status }),
    );
    expect(server.spans[0].isError).toBe(false);
    expect(client.spans[0].isError).toBe(true);
  });
});
