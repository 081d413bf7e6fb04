import net from 'node:net';
import zlib from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import {
  ExportTraceServiceRequest,
  ExportTraceServiceResponse,
  RpcStatus,
} from '../lib/otlp/proto';
import { getJson, startTestFaultline, type TestFaultline } from './helpers/faultline';
import { deepAnyValue, field } from './helpers/protobuf-bytes';

const LIMITS = {
  maxBodyBytes: 512 * 1024,
  maxDecompressedBytes: 2 * 1024 * 1024,
  maxSpansPerRequest: 12_000,
  maxAttributeValueLength: 1000,
  maxAttributesPerSpan: 64,
};

let faultline: TestFaultline;
let sequence = 0;

beforeAll(async () => {
  faultline = await startTestFaultline(LIMITS);
});

afterAll(async () => {
  await faultline.stop();
});

function hex(bytes: number, seed: number): string {
  return (seed.toString(16).padStart(8, '0') + 'a5'.repeat(bytes)).slice(0, bytes * 2);
}

function newTraceId(): string {
  sequence += 1;
  return `${Date.now().toString(16)}${sequence.toString(16).padStart(8, '0')}`.padEnd(32, 'c');
}

function span(traceId: string, index: number, extra: Record<string, unknown> = {}) {
  const start = BigInt(Date.now()) * 1_000_000n;
  return {
    traceId,
    spanId: hex(8, index + 1),
    name: `op-${index}`,
    kind: 2,
    startTimeUnixNano: String(start),
    endTimeUnixNano: String(start + 1_000_000n),
    ...extra,
  };
}

function request(spans: unknown[], service = 'malformed-suite') {
  return {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
        scopeSpans: [{ scope: { name: 'suite' }, spans }],
      },
    ],
  };
}

interface Reply {
  status: number;
  headers: Headers;
  json?: any;
  bytes: Buffer;
}

async function post(
  body: Buffer | string,
  headers: Record<string, string>,
  path = '/v1/traces',
): Promise<Reply> {
  const response = await fetch(`${faultline.otlpUrl}${path}`, { method: 'POST', body, headers });
  const bytes = Buffer.from(await response.arrayBuffer());
  const isJson = (response.headers.get('content-type') ?? '').includes('json');
  return {
    status: response.status,
    headers: response.headers,
    json: isJson && bytes.length > 0 ? JSON.parse(bytes.toString()) : undefined,
    bytes,
  };
}

const JSON_HEADERS = { 'content-type': 'application/json' };
const PROTO_HEADERS = { 'content-type': 'application/x-protobuf' };

/** Encodes with protobufjs; ids must be Buffers, as fromObject reads strings as base64. */
function protobuf(value: unknown): Buffer {
  const message = ExportTraceServiceRequest.fromObject(value as object);
  return Buffer.from(ExportTraceServiceRequest.encode(message).finish());
}

/** Builds a protobuf-ready span with a value over the length limit and too many attributes. */
function overLimits(traceId: string) {
  const attributes = Array.from({ length: 100 }, (_, index) => ({
    key: `a${index}`,
    value: { intValue: index },
  }));
  return span(traceId, 0, {
    traceId: Buffer.from(traceId, 'hex'),
    spanId: Buffer.from(hex(8, 1), 'hex'),
    attributes: [{ key: 'payload', value: { stringValue: 'x'.repeat(5000) } }, ...attributes],
  });
}

async function stored(traceId: string): Promise<any> {
  await faultline.app.collector!.flush();
  return getJson(faultline.queryUrl, `/api/traces/${traceId}`);
}

/** A good export after each bad one proves the server still serves. */
async function expectStillServing(): Promise<void> {
  const traceId = newTraceId();
  const reply = await post(JSON.stringify(request([span(traceId, 0)])), JSON_HEADERS);
  expect(reply.status).toBe(200);
  expect(reply.json).toEqual({});
}

function nested(depth: number): any {
  let value: any = { stringValue: 'leaf' };
  for (let level = 0; level < depth; level += 1) {
    value = { kvlistValue: { values: [{ key: `level${level}`, value }] } };
  }
  return value;
}

interface Case {
  name: string;
  send(): Promise<Reply>;
  status: number;
  /** Expected partial success: rejected span count, and a fragment of the message. */
  rejected?: [number, string];
  /** A fragment of the error message. */
  message?: string;
}

const bombTrace = newTraceId();
const cases: Case[] = [
  {
    name: 'truncated protobuf',
    send: () => post(protobuf(request([span(newTraceId(), 0)])).subarray(0, 20), PROTO_HEADERS),
    status: 400,
    message: 'invalid protobuf ExportTraceServiceRequest',
  },
  {
    name: 'wrong content type',
    send: () => post('hello', { 'content-type': 'text/plain' }),
    status: 415,
    message: 'unsupported Content-Type "text/plain"',
  },
  {
    name: 'JSON that is not an export request',
    send: () => post('[1,2]', JSON_HEADERS),
    status: 400,
    message: 'expected an object',
  },
  {
    name: 'empty JSON body',
    send: () => post('', JSON_HEADERS),
    status: 400,
    message: 'invalid JSON',
  },
  {
    name: 'empty protobuf body (a valid empty request)',
    send: () => post(Buffer.alloc(0), PROTO_HEADERS),
    status: 200,
  },
  {
    name: 'empty request object',
    send: () => post('{}', JSON_HEADERS),
    status: 200,
  },
  {
    name: 'bad ids among good spans',
    send: () => {
      const traceId = newTraceId();
      return post(
        JSON.stringify(
          request([
            span(traceId, 0),
            span('0'.repeat(32), 1),
            span(traceId, 2, { spanId: 'abcd' }),
            span('zz', 3),
            span(traceId, 4, { spanId: '0'.repeat(16) }),
          ]),
        ),
        JSON_HEADERS,
      );
    },
    status: 200,
    rejected: [4, 'invalid trace id "00000000000000000000000000000000"'],
  },
  {
    name: 'span older than the retention',
    send: () => {
      const traceId = newTraceId();
      const startNs = BigInt(Date.now() - 10 * 86_400_000) * 1_000_000n;
      const old = span(traceId, 0, {
        startTimeUnixNano: String(startNs),
        endTimeUnixNano: String(startNs + 1_000_000n),
      });
      return post(JSON.stringify(request([old, span(traceId, 1)])), JSON_HEADERS);
    },
    status: 200,
    rejected: [
      1,
      'before the retention of 7 days: send recent spans, or raise FAULTLINE_RETENTION_DAYS',
    ],
  },
  {
    name: 'unsupported Content-Encoding',
    send: () => post('x', { ...JSON_HEADERS, 'content-encoding': 'compress' }),
    status: 415,
    message: 'unsupported Content-Encoding "compress"',
  },
  {
    name: 'zstd on a runtime without it',
    send: () => post('x', { ...JSON_HEADERS, 'content-encoding': 'zstd' }),
    status: 415,
    message: 'zstd is not available',
  },
  {
    name: 'broken gzip',
    send: () =>
      post(Buffer.from('not gzip at all'), { ...JSON_HEADERS, 'content-encoding': 'gzip' }),
    status: 400,
    message: 'could not decompress',
  },
  {
    name: 'gzip bomb',
    send: () => {
      const filler = Buffer.alloc(64 * 1024 * 1024, 0x20);
      const body = Buffer.concat([
        Buffer.from(JSON.stringify(request([span(bombTrace, 0)]))),
        filler,
      ]);
      return post(zlib.gzipSync(body, { level: 9 }), {
        ...JSON_HEADERS,
        'content-encoding': 'gzip',
      });
    },
    status: 413,
    message: 'inflates past the limit of 2097152 bytes',
  },
  {
    name: 'body over the size limit',
    send: () => post(Buffer.alloc(LIMITS.maxBodyBytes + 1, 0x20), JSON_HEADERS),
    status: 413,
    message: 'exceeds the limit of 524288 bytes',
  },
  {
    name: 'more spans than the per-request limit',
    send: () => {
      const traceId = newTraceId();
      const spans = Array.from({ length: LIMITS.maxSpansPerRequest + 1 }, (_, index) => ({
        traceId,
        spanId: hex(8, index + 1),
      }));
      return post(zlib.gzipSync(JSON.stringify(request(spans))), {
        ...JSON_HEADERS,
        'content-encoding': 'gzip',
      });
    },
    status: 413,
    message: 'request carries 12001 spans, limit 12000',
  },
  {
    name: 'more spans than the per-request limit (protobuf)',
    send: () => {
      const traceId = Buffer.from(newTraceId(), 'hex');
      const spans = Array.from({ length: LIMITS.maxSpansPerRequest + 1 }, (_, index) => ({
        traceId,
        spanId: Buffer.from(hex(8, index + 1), 'hex'),
      }));
      return post(protobuf(request(spans)), PROTO_HEADERS);
    },
    status: 413,
    message: 'request carries 12001 spans, limit 12000',
  },
  {
    name: 'kvlist nested 25,000 levels deep (protobuf)',
    send: () => {
      const traceId = newTraceId();
      const deep = deepAnyValue(25_000);
      const keyValue = field(2, deep, Buffer.from([0x0a, 0x04, ...Buffer.from('deep')]));
      const spanBytes = Buffer.concat([
        field(1, Buffer.from(traceId, 'hex')),
        field(2, Buffer.from(hex(8, 1), 'hex')),
        field(9, keyValue),
      ]);
      const body = field(1, field(2, field(2, spanBytes)));
      return post(body, PROTO_HEADERS);
    },
    status: 400,
    message: 'invalid protobuf',
  },
];

describe('malformed OTLP/HTTP requests', () => {
  it.each(cases)('$name → $status', async (testCase) => {
    const reply = await testCase.send();
    expect(reply.status).toBe(testCase.status);
    if (testCase.rejected) {
      expect(reply.json.partialSuccess.rejectedSpans).toBe(String(testCase.rejected[0]));
      expect(reply.json.partialSuccess.errorMessage).toContain(testCase.rejected[1]);
    } else if (testCase.status === 200) {
      expect(reply.json ?? {}).toEqual({});
    }
    if (testCase.message) {
      const message = reply.json?.message ?? RpcStatus.decode(reply.bytes).toJSON().message;
      expect(message).toContain(testCase.message);
    }
    await expectStillServing();
  });

  it('answers errors of a protobuf request as google.rpc.Status', async () => {
    const reply = await post(Buffer.from([0xff, 0xff, 0xff]), PROTO_HEADERS);
    expect(reply.status).toBe(400);
    expect(reply.headers.get('content-type')).toContain('application/x-protobuf');
    const status = RpcStatus.decode(reply.bytes) as any;
    expect(status.code).toBe(400);
    expect(status.message).toContain('invalid protobuf');
  });

  it('answers partial success of a protobuf request in protobuf', async () => {
    const traceId = newTraceId();
    const body = protobuf({
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                { traceId: Buffer.from(traceId, 'hex'), spanId: Buffer.from(hex(8, 1), 'hex') },
                { traceId: Buffer.alloc(16), spanId: Buffer.from(hex(8, 2), 'hex') },
              ],
            },
          ],
        },
      ],
    });
    const reply = await post(body, PROTO_HEADERS);
    expect(reply.status).toBe(200);
    const decoded = ExportTraceServiceResponse.toObject(
      ExportTraceServiceResponse.decode(reply.bytes),
      {
        longs: String,
      },
    );
    expect(decoded.partialSuccess.rejectedSpans).toBe('1');
  });

  it('rejects the gzip bomb before storing any of it', async () => {
    const { status } = await stored(bombTrace);
    expect(status).toBe(404);
  });
});

describe('repairs instead of rejections', () => {
  it('truncates huge attribute values and marks the span', async () => {
    const traceId = newTraceId();
    const huge = 'x'.repeat(200_000);
    const body = request([
      span(traceId, 0, { attributes: [{ key: 'payload', value: { stringValue: huge } }] }),
    ]);
    expect(
      (
        await post(zlib.gzipSync(JSON.stringify(body)), {
          ...JSON_HEADERS,
          'content-encoding': 'gzip',
        })
      ).status,
    ).toBe(200);
    const [root] = (await stored(traceId)).body.roots;
    expect(root.attributes.payload).toHaveLength(LIMITS.maxAttributeValueLength);
    expect(root.ingestWarnings).toContain('attribute_value_truncated');
  });

  it('keeps the first attributes past the count limit and counts the rest', async () => {
    const traceId = newTraceId();
    const attributes = Array.from({ length: 100 }, (_, index) => ({
      key: `a${index}`,
      value: { intValue: index },
    }));
    await post(JSON.stringify(request([span(traceId, 0, { attributes })])), JSON_HEADERS);
    const [root] = (await stored(traceId)).body.roots;
    expect(Object.keys(root.attributes)).toHaveLength(LIMITS.maxAttributesPerSpan);
    expect(root.ingestWarnings).toContain('attributes_dropped');
  });

  it('applies the attribute limits to protobuf exports', async () => {
    const traceId = newTraceId();
    const reply = await post(protobuf(request([overLimits(traceId)])), PROTO_HEADERS);
    expect(reply.status).toBe(200);
    const [root] = (await stored(traceId)).body.roots;
    expect(Object.keys(root.attributes)).toHaveLength(LIMITS.maxAttributesPerSpan);
    expect(root.attributes.payload).toHaveLength(LIMITS.maxAttributeValueLength);
    expect(root.ingestWarnings).toEqual(['attribute_value_truncated', 'attributes_dropped']);
  });

  it('stores counts and flags past UInt32', async () => {
    const jsonTrace = newTraceId();
    const fromJson = span(jsonTrace, 0, {
      flags: 2 ** 40,
      droppedAttributesCount: 5e9,
      events: [{ timeUnixNano: '1', name: 'e', droppedAttributesCount: 2 ** 33 }],
      links: [
        { traceId: jsonTrace, spanId: hex(8, 9), flags: 2 ** 32, droppedAttributesCount: 1e12 },
      ],
      droppedEventsCount: 2 ** 32,
      droppedLinksCount: 1e300,
    });
    const jsonReply = await post(JSON.stringify(request([fromJson])), JSON_HEADERS);
    expect(jsonReply.status).toBe(200);
    expect((await stored(jsonTrace)).body.roots).toHaveLength(1);

    // The maximum count sent plus the attributes past the limit overflows UInt32.
    const protoTrace = newTraceId();
    const overflowing = { ...overLimits(protoTrace), droppedAttributesCount: 4_294_967_295 };
    const protoReply = await post(protobuf(request([overflowing])), PROTO_HEADERS);
    expect(protoReply.status).toBe(200);
    expect((await stored(protoTrace)).body.roots).toHaveLength(1);
  });

  it('stores a deeply nested kvlist up to the depth limit', async () => {
    const traceId = newTraceId();
    const attributes = [{ key: 'deep', value: nested(40) }];
    expect(
      (await post(JSON.stringify(request([span(traceId, 0, { attributes })])), JSON_HEADERS))
        .status,
    ).toBe(200);
    const [root] = (await stored(traceId)).body.roots;
    expect(root.ingestWarnings).toContain('attribute_depth_truncated');
    let value = root.attributes.deep;
    for (let level = 39; level > 39 - 15; level -= 1) value = value[`level${level}`];
    expect(value).toBeDefined();
  });

  it('stores arrays and kvlists faithfully', async () => {
    const traceId = newTraceId();
    const attributes = [
      { key: 'list', value: { arrayValue: { values: [{ intValue: '1' }, { stringValue: 'b' }] } } },
      {
        key: 'map',
        value: { kvlistValue: { values: [{ key: 'k', value: { boolValue: true } }] } },
      },
    ];
    await post(JSON.stringify(request([span(traceId, 0, { attributes })])), JSON_HEADERS);
    const [root] = (await stored(traceId)).body.roots;
    expect(root.attributes.list).toEqual([1, 'b']);
    expect(root.attributes.map).toEqual({ k: true });
    expect(root.ingestWarnings).toEqual([]);
  });

  it('replaces invalid UTF-8 and marks the span', async () => {
    const traceId = newTraceId();
    const body = protobuf(
      request([
        span(traceId, 0, {
          name: 'MARKER',
          traceId: Buffer.from(traceId, 'hex'),
          spanId: Buffer.from(hex(8, 1), 'hex'),
        }),
      ]),
    );
    const at = body.indexOf('MARKER');
    body[at] = 0xff;
    body[at + 1] = 0xfe;
    expect((await post(body, PROTO_HEADERS)).status).toBe(200);
    const [root] = (await stored(traceId)).body.roots;
    expect(root.name).toBe('\uFFFD\uFFFDRKER');
    expect(root.ingestWarnings).toContain('invalid_utf8');
  });

  it('keeps a sent U+FFFD unmarked', async () => {
    const traceId = newTraceId();
    const sent = {
      name: 'price \uFFFD unknown',
      traceId: Buffer.from(traceId, 'hex'),
      spanId: Buffer.from(hex(8, 1), 'hex'),
    };
    expect((await post(protobuf(request([span(traceId, 0, sent)])), PROTO_HEADERS)).status).toBe(
      200,
    );
    const [root] = (await stored(traceId)).body.roots;
    expect(root.name).toBe('price \uFFFD unknown');
    expect(root.ingestWarnings).not.toContain('invalid_utf8');
  });

  it('keeps a sent U+FFFD in JSON unmarked', async () => {
    const traceId = newTraceId();
    const body = JSON.stringify(request([span(traceId, 0, { name: 'a \uFFFD b' })]));
    expect((await post(body, JSON_HEADERS)).status).toBe(200);
    const [root] = (await stored(traceId)).body.roots;
    expect(root.name).toBe('a \uFFFD b');
    expect(root.ingestWarnings).toEqual([]);
  });

  it('marks invalid UTF-8 in JSON', async () => {
    const traceId = newTraceId();
    const body = Buffer.from(JSON.stringify(request([span(traceId, 0, { name: 'MARKER' })])));
    body[body.indexOf('MARKER')] = 0xff;
    expect((await post(body, JSON_HEADERS)).status).toBe(200);
    const [root] = (await stored(traceId)).body.roots;
    expect(root.name).toBe('\uFFFDARKER');
    expect(root.ingestWarnings).toContain('invalid_utf8');
  });

  it('repairs end before start', async () => {
    const traceId = newTraceId();
    const body = request([
      span(traceId, 0, {
        startTimeUnixNano: '1800000000000000000',
        endTimeUnixNano: '1700000000000000000',
      }),
    ]);
    await post(JSON.stringify(body), JSON_HEADERS);
    const [root] = (await stored(traceId)).body.roots;
    expect(
      root.durationNs ?? BigInt(root.endTimeUnixNano) - BigInt(root.startTimeUnixNano),
    ).toEqual(root.durationNs === undefined ? 0n : '0');
    expect(root.ingestWarnings).toContain('end_before_start');
  });

  it('keeps spans with a zero or absurd start time and marks them', async () => {
    const traceId = newTraceId();
    const body = request([
      span(traceId, 0, { startTimeUnixNano: '0', endTimeUnixNano: '0' }),
      span(traceId, 1, { startTimeUnixNano: '5', endTimeUnixNano: '9' }),
    ]);
    expect((await post(JSON.stringify(body), JSON_HEADERS)).json).toEqual({});
    const { body: view } = await stored(traceId);
    const warnings = view.roots.map((root: any) => root.ingestWarnings).flat();
    expect(warnings).toEqual(
      expect.arrayContaining(['missing_start_time', 'start_time_out_of_range']),
    );
  });

  it('reads a request without a body by its content type', async () => {
    // As curl -X POST sends it: no Content-Length and no Transfer-Encoding.
    const { port } = new URL(faultline.otlpUrl);
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => {
        socket.end(
          'POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
            'Content-Type: application/json\r\nConnection: close\r\n\r\n',
        );
      });
      let text = '';
      socket.on('data', (chunk) => (text += chunk.toString()));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(raw.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(raw).toContain('invalid JSON');
  });

  it('keeps spans with times past 2262 and marks them', async () => {
    const traceId = newTraceId();
    const past2262 = String((1n << 63n) + 5n);
    const late = span(traceId, 1, {
      endTimeUnixNano: past2262,
      events: [{ timeUnixNano: past2262, name: 'late event' }],
    });
    const body = request([
      span(traceId, 0, { startTimeUnixNano: past2262, endTimeUnixNano: past2262 }),
      late,
      span(traceId, 2),
    ]);
    expect((await post(JSON.stringify(body), JSON_HEADERS)).json).toEqual({});
    const { body: view } = await stored(traceId);
    expect(view.spanCount).toBe(3);
    const warnings = view.roots.map((root: any) => root.ingestWarnings).flat();
    expect(warnings).toEqual(
      expect.arrayContaining(['invalid_timestamp', 'start_time_out_of_range', 'end_before_start']),
    );
  });

  it('keeps NaN and infinite doubles', async () => {
    const traceId = newTraceId();
    const attributes = [
      { key: 'not.a.number', value: { doubleValue: 'NaN' } },
      { key: 'above', value: { doubleValue: 'Infinity' } },
      { key: 'below', value: { doubleValue: '-Infinity' } },
      { key: 'plain', value: { doubleValue: 0.1 } },
      { key: 'list', value: { arrayValue: { values: [{ doubleValue: 'NaN' }] } } },
    ];
    await post(JSON.stringify(request([span(traceId, 0, { attributes })])), JSON_HEADERS);
    const [root] = (await stored(traceId)).body.roots;
    expect(root.attributes['not.a.number']).toBe('NaN');
    expect(root.attributes.above).toBe('Infinity');
    expect(root.attributes.below).toBe('-Infinity');
    expect(root.attributes.plain).toBe(0.1);
    expect(root.attributes.list).toEqual(['NaN']);

    const { body: otlp } = await getJson(faultline.queryUrl, `/api/traces/${traceId}?format=otlp`);
    const sent = otlp.resourceSpans[0].scopeSpans[0].spans[0].attributes;
    expect(sent).toEqual(expect.arrayContaining(attributes));

    const tags = encodeURIComponent('{"not.a.number":"NaN","below":"-Infinity"}');
    const { body: found } = await getJson(
      faultline.queryUrl,
      `/api/traces?service=malformed-suite&tags=${tags}`,
    );
    expect(found.data.map((item: any) => item.traceId)).toEqual([traceId]);
  });

  it('keeps NaN and infinite protobuf doubles', async () => {
    const traceId = newTraceId();
    const attributes = [
      { key: 'not.a.number', value: { doubleValue: NaN } },
      { key: 'above', value: { doubleValue: Infinity } },
      { key: 'below', value: { doubleValue: -Infinity } },
    ];
    const ids = { traceId: Buffer.from(traceId, 'hex'), spanId: Buffer.from(hex(8, 1), 'hex') };
    const body = request([
      span(traceId, 0, {
        ...ids,
        attributes,
        events: [{ name: 'retry', timeUnixNano: String(Date.now() * 1e6), attributes }],
        links: [{ ...ids, attributes }],
      }),
    ]);
    body.resourceSpans[0].resource.attributes.push(...(attributes as never[]));
    expect((await post(protobuf(body), PROTO_HEADERS)).status).toBe(200);
    const [root] = (await stored(traceId)).body.roots;
    expect(root.attributes['not.a.number']).toBe('NaN');
    expect(root.attributes.above).toBe('Infinity');
    expect(root.attributes.below).toBe('-Infinity');

    // Resource, event and link attributes are stored as JSON text, which has no NaN.
    const { body: otlp } = await getJson(faultline.queryUrl, `/api/traces/${traceId}?format=otlp`);
    const expected = [
      { key: 'not.a.number', value: { doubleValue: 'NaN' } },
      { key: 'above', value: { doubleValue: 'Infinity' } },
      { key: 'below', value: { doubleValue: '-Infinity' } },
    ];
    const sent = otlp.resourceSpans[0];
    expect(sent.resource.attributes).toEqual(expect.arrayContaining(expected));
    expect(sent.scopeSpans[0].spans[0].events[0].attributes).toEqual(expected);
    expect(sent.scopeSpans[0].spans[0].links[0].attributes).toEqual(expected);
  });

  it('names a resource without service.name unknown_service', async () => {
    const traceId = newTraceId();
    await post(
      JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [span(traceId, 0)] }] }] }),
      JSON_HEADERS,
    );
    const [root] = (await stored(traceId)).body.roots;
    expect(root.resource['service.name'] ?? 'unknown_service').toBe('unknown_service');
    expect(root.ingestWarnings).toContain('missing_service_name');
  });

  it('stores a span sent twice in one request once', async () => {
    const traceId = newTraceId();
    const once = span(traceId, 0);
    await post(JSON.stringify(request([once, once])), JSON_HEADERS);
    const { body: view } = await stored(traceId);
    expect(view.spanCount).toBe(1);
  });

  it('stores 10,000 spans of one request', async () => {
    const traceId = newTraceId();
    const spans = Array.from({ length: 10_000 }, (_, index) => span(traceId, index));
    const reply = await post(zlib.gzipSync(JSON.stringify(request(spans))), {
      ...JSON_HEADERS,
      'content-encoding': 'gzip',
    });
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({});
    const { body: view } = await stored(traceId);
    expect(view.spanCount).toBe(10_000);
  });
});

describe('OTLP/JSON as real senders write it', () => {
  it('reads snake_case keys, enum names, base64 ids and ignores unknown fields', async () => {
    const traceId = newTraceId();
    const body = {
      resource_spans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { string_value: 'snake' } }] },
          scope_spans: [
            {
              spans: [
                {
                  trace_id: Buffer.from(traceId, 'hex').toString('base64'),
                  span_id: hex(8, 1).toUpperCase(),
                  name: 'snake-op',
                  kind: 'SPAN_KIND_CLIENT',
                  start_time_unix_nano: Number(BigInt(Date.now()) * 1_000_000n),
                  end_time_unix_nano: String(BigInt(Date.now()) * 1_000_000n + 5n),
                  status: { code: 'STATUS_CODE_ERROR', message: 'boom' },
                  some_future_field: { nested: true },
                },
              ],
            },
          ],
        },
      ],
    };
    expect((await post(JSON.stringify(body), JSON_HEADERS)).status).toBe(200);
    const [root] = (await stored(traceId)).body.roots;
    expect(root.name).toBe('snake-op');
    expect(root.kind).toBe('CLIENT');
    expect(root.status).toEqual({ code: 'ERROR', message: 'boom' });
    expect(root.resource['service.name']).toBe('snake');
  });
});

describe('Zipkin bad input', () => {
  it.each([
    ['a body that is not an array', '{"traceId":"1"}', 400, 'expected an array'],
    ['spans that all have bad ids', '[{"traceId":"xyz","id":"1"}]', 400, 'invalid trace id "xyz"'],
    ['JSON that does not parse', '[{', 400, 'invalid Zipkin v2 JSON'],
  ])('%s → %s', async (_name, body, status, message) => {
    const reply = await post(body, JSON_HEADERS, '/api/v2/spans');
    expect(reply.status).toBe(status);
    expect(reply.json.message).toContain(message);
    await expectStillServing();
  });

  it('stores spans with object field values', async () => {
    // JSON.parse gives an own toString that is not a function, where String() throws.
    const broken = { toString: [] };
    const traceId = hex(8, 79);
    const body = [
      {
        traceId,
        id: hex(8, 80),
        name: 'objects',
        timestamp: Date.now() * 1000,
        duration: broken,
        localEndpoint: { serviceName: 'objects' },
        remoteEndpoint: { serviceName: broken, port: broken },
        tags: { note: broken },
      },
    ];
    expect((await post(JSON.stringify(body), JSON_HEADERS, '/api/v2/spans')).status).toBe(202);
    const [root] = (await stored(traceId.padStart(32, '0'))).body.roots;
    expect(root.attributes.note).toBe('{"toString":[]}');
    await expectStillServing();
  });

  it('keeps client and server spans that share an id as two spans', async () => {
    const traceId = hex(8, 77);
    const shared = {
      traceId,
      id: hex(8, 78),
      name: 'rpc',
      timestamp: Date.now() * 1000,
      duration: 50,
    };
    const body = [
      { ...shared, kind: 'CLIENT', localEndpoint: { serviceName: 'caller' } },
      { ...shared, kind: 'SERVER', shared: true, localEndpoint: { serviceName: 'callee' } },
    ];
    expect((await post(JSON.stringify(body), JSON_HEADERS, '/api/v2/spans')).status).toBe(202);
    const { body: view } = await stored(traceId.padStart(32, '0'));
    expect(view.spanCount).toBe(2);
    expect([...view.services].sort()).toEqual(['callee', 'caller']);
  });
});

describe('OTLP/gRPC bad input', () => {
  let client: grpc.Client;
  const call = (bytes: Buffer) =>
    new Promise<{ error: grpc.ServiceError | null; reply?: Buffer }>((resolve) => {
      client.makeUnaryRequest(
        '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
        (value: Buffer) => value,
        (value: Buffer) => value,
        bytes,
        (error, reply) => resolve({ error, reply }),
      );
    });

  beforeAll(() => {
    client = new grpc.Client(
      `127.0.0.1:${faultline.app.collector!.grpcPort}`,
      grpc.credentials.createInsecure(),
    );
  });

  afterAll(() => client.close());

  it('answers INVALID_ARGUMENT to an undecodable message', async () => {
    const { error } = await call(Buffer.from([0x0a, 0xff, 0xff]));
    expect(error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error?.details).toContain('FL_UNDECODABLE_BODY');
  });

  it('returns partial success for spans with bad ids', async () => {
    const traceId = newTraceId();
    const body = protobuf({
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                { traceId: Buffer.from(traceId, 'hex'), spanId: Buffer.from(hex(8, 1), 'hex') },
                { traceId: Buffer.from(traceId, 'hex'), spanId: Buffer.alloc(8) },
              ],
            },
          ],
        },
      ],
    });
    const { error, reply } = await call(body);
    expect(error).toBeNull();
    const decoded = ExportTraceServiceResponse.toObject(ExportTraceServiceResponse.decode(reply!), {
      longs: String,
    });
    expect(decoded.partialSuccess.rejectedSpans).toBe('1');
    expect(decoded.partialSuccess.errorMessage).toContain('invalid span id "0000000000000000"');
  });

  it('applies the attribute limits', async () => {
    const traceId = newTraceId();
    const { error } = await call(protobuf(request([overLimits(traceId)])));
    expect(error).toBeNull();
    const [root] = (await stored(traceId)).body.roots;
    expect(Object.keys(root.attributes)).toHaveLength(LIMITS.maxAttributesPerSpan);
    expect(root.attributes.payload).toHaveLength(LIMITS.maxAttributeValueLength);
    expect(root.ingestWarnings).toEqual(['attribute_value_truncated', 'attributes_dropped']);
  });

  it('answers RESOURCE_EXHAUSTED to a message over the size limit', async () => {
    const { error } = await call(Buffer.alloc(LIMITS.maxDecompressedBytes + 10, 0));
    expect(error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });
});
