import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { syntheticTraces, takeSpans } from '../bench/synthetic';
import { FaultlineError } from '../lib/errors';
import { decodeProtobufRequest } from '../lib/otlp/decode';
import { decodeSpansFast } from '../lib/otlp/fast-decode';
import {
  DEFAULT_FLATTEN_LIMITS,
  flattenExportRequest,
  type FlattenLimits,
  type FlattenResult,
} from '../lib/otlp/flatten';
import { ExportTraceServiceRequest } from '../lib/otlp/proto';
import { protobufSpanRows, SpanBlockGroup } from '../lib/otlp/protobuf-rows';
import { toSpanRows, type SpanRows } from '../lib/storage/span-rows';
import { deepAnyValue, field } from './helpers/protobuf-bytes';

const TRACE_ID = Buffer.from('5b8efff798038103d269b633813fc60c', 'hex');
const SPAN_ID = Buffer.from('eee19b7ec3c1b174', 'hex');
const PARENT_ID = Buffer.from('eee19b7ec3c1b173', 'hex');
const SMALL_LIMITS: FlattenLimits = { maxAttributesPerSpan: 3, maxAttributeValueLength: 8 };
/** A fixed clock, so that spans repaired to the receive time compare equal. */
const NOW_MS = 1_700_000_100_000;

let clock: jest.SpyInstance;
beforeEach(() => {
  clock = jest.spyOn(Date, 'now').mockReturnValue(NOW_MS);
});
afterEach(() => clock.mockRestore());

function reference(body: Uint8Array, limits = DEFAULT_FLATTEN_LIMITS): FlattenResult {
  return flattenExportRequest(decodeProtobufRequest(body), limits);
}

function outcome(decode: () => FlattenResult): FlattenResult | { code: string; message: string } {
  try {
    return decode();
  } catch (error) {
    if (!(error instanceof FaultlineError)) throw error;
    return { code: error.code, message: error.message };
  }
}

/**
 * Converts a body straight into rows. Where that gives rows, checks that the records carry
 * no repair and no rejected span, and that the rows are those of the records.
 */
function directRows(
  body: Uint8Array,
  limits: FlattenLimits,
  expected: ReturnType<typeof outcome>,
  oldestNs = 0n,
): SpanRows | undefined {
  const rows = protobufSpanRows(body, { limits, oldestNs });
  if (rows === undefined) return undefined;
  expect(expected).toHaveProperty('spans');
  const result = expected as FlattenResult;
  expect(result.rejectedSpans).toBe(0);
  expect(result.spans.flatMap((record) => record.ingestWarnings)).toEqual([]);
  expect(rows.count).toBe(result.spans.length);
  expect(Buffer.concat(rows.chunks)).toEqual(Buffer.concat(toSpanRows(result.spans).chunks));
  return rows;
}

/**
 * Checks that the fast decoder returns what the generic path returns, or the same error,
 * and that a direct conversion into rows gives the rows of those records.
 */
function expectReference(body: Uint8Array, limits = DEFAULT_FLATTEN_LIMITS) {
  const expected = outcome(() => reference(body, limits));
  expect(outcome(() => decodeSpansFast(body, limits))).toEqual(expected);
  directRows(body, limits, expected);
  return expected;
}

function encode(object: Record<string, unknown>): Buffer {
  return Buffer.from(
    ExportTraceServiceRequest.encode(ExportTraceServiceRequest.fromObject(object)).finish(),
  );
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

function request(
  spans: Record<string, unknown>[],
  resource?: Record<string, unknown>,
  scope: Record<string, unknown> = { name: 'scope', version: '1.0' },
) {
  return encode({
    resourceSpans: [
      {
        resource: resource ?? {
          attributes: [{ key: 'service.name', value: { stringValue: 'checkout' } }],
        },
        scopeSpans: [{ scope, spans }],
      },
    ],
  });
}

function text(key: string, value: string) {
  return { key, value: { stringValue: value } };
}

function attributes(count: number, prefix = 'a') {
  return Array.from({ length: count }, (_, index) => text(`${prefix}${index}`, `v${index}`));
}

/** Builds an AnyValue of `depth` nested kvlists (or arrays) around a string. */
function nested(depth: number, kind: 'kvlist' | 'array' = 'kvlist', leaf = 'leaf') {
  let value: Record<string, unknown> = { stringValue: leaf };
  for (let level = 0; level < depth; level += 1) {
    value =
      kind === 'kvlist'
        ? { kvlistValue: { values: [{ key: `level${level}`, value }] } }
        : { arrayValue: { values: [value] } };
  }
  return value;
}

/** Replaces each occurrence of an ASCII marker with bytes of the same length. */
function replaceBytes(body: Buffer, marker: string, bytes: number[]): Buffer {
  expect(bytes).toHaveLength(marker.length);
  let at = body.indexOf(marker);
  expect(at).toBeGreaterThanOrEqual(0);
  while (at >= 0) {
    Buffer.from(bytes).copy(body, at);
    at = body.indexOf(marker, at + 1);
  }
  return body;
}

/** A link with valid ids, a trace state, flags and an attribute. */
const LINK = {
  traceId: TRACE_ID,
  spanId: PARENT_ID,
  traceState: 'a=b',
  flags: 1,
  attributes: [{ key: 'k', value: { intValue: 2 } }],
};

/** Attributes of each scalar type, with the int64 extremes and the doubles JSON has no number for. */
const SCALAR_ATTRIBUTES = [
  { key: 'flag', value: { boolValue: true } },
  { key: 'negative', value: { intValue: '-9223372036854775808' } },
  { key: 'big', value: { intValue: '9223372036854775807' } },
  { key: 'past 2^53', value: { intValue: '9007199254740993' } },
  { key: 'minus one', value: { intValue: '-1' } },
  { key: 'ratio', value: { doubleValue: 0.25 } },
  { key: 'not a number', value: { doubleValue: NaN } },
  { key: 'infinite', value: { doubleValue: -Infinity } },
];

/** Bytes that are not UTF-8: a lone continuation byte and a truncated sequence. */
const INVALID = [0x42, 0x80, 0x41, 0xe2, 0x82];

describe('fast protobuf decoder', () => {
  it('equals the reference on exporter output', () => {
    const traces = syntheticTraces({ seed: 3, startMs: 1_700_000_000_000, traceIntervalMs: 7 });
    const body = ProtobufTraceSerializer.serializeRequest(takeSpans(traces, 2000))!;
    const fast = decodeSpansFast(body);
    expect(fast.spans.length).toBeGreaterThanOrEqual(2000);
    expect(fast).toEqual(reference(body));
  });

  it('equals the reference with small limits', () => {
    const traces = syntheticTraces({ seed: 4, startMs: 1_700_000_000_000, traceIntervalMs: 7 });
    const body = ProtobufTraceSerializer.serializeRequest(takeSpans(traces, 300))!;
    const result = expectReference(body, SMALL_LIMITS) as FlattenResult;
    const warnings = new Set(result.spans.flatMap((record) => record.ingestWarnings));
    expect(warnings).toContain('attributes_dropped');
    expect(warnings).toContain('attribute_value_truncated');
  });

  const cases: [string, Uint8Array][] = [
    ['short trace id', request([span({ traceId: Buffer.alloc(8, 1) })])],
    ['zero trace id', request([span({ traceId: Buffer.alloc(16) })])],
    ['missing trace id', request([span({ traceId: undefined })])],
    ['long trace id', request([span({ traceId: Buffer.alloc(60, 0xab) })])],
    ['missing span id', request([span({ spanId: undefined }), span({ name: 'kept' })])],
    ['zero span id', request([span({ spanId: Buffer.alloc(8) })])],
    ['long span id', request([span({ spanId: Buffer.alloc(41, 0xcd) })])],
    ['zero parent id', request([span({ parentSpanId: Buffer.alloc(8) })])],
    ['empty parent id', request([span({ parentSpanId: Buffer.alloc(0) })])],
    ['short parent id', request([span({ parentSpanId: Buffer.alloc(3, 7) })])],
    ['absent parent id', request([span({ parentSpanId: undefined })])],
    ['missing service name', request([span({})], { attributes: [] })],
    ['absent resource', encode({ resourceSpans: [{ scopeSpans: [{ spans: [span({})] }] }] })],
    ['end before start', request([span({ endTimeUnixNano: '1' })])],
    ['missing start', request([span({ startTimeUnixNano: undefined })])],
    ['missing times', request([span({ startTimeUnixNano: undefined, endTimeUnixNano: '0' })])],
    ['huge timestamps', request([span({ endTimeUnixNano: '18446744073709551615' })])],
    ['start past 2106', request([span({ startTimeUnixNano: '5000000000000000000' })])],
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
            text('text', 'héllo'),
            ...SCALAR_ATTRIBUTES,
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
            { key: 'empty list', value: { arrayValue: {} } },
            { key: 'empty map', value: { kvlistValue: {} } },
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
          attributes: [text('peer.service', 'payment')],
          events: [
            {
              timeUnixNano: '1700000000100000000',
              name: 'exception',
              attributes: [text('exception.type', 'Timeout')],
              droppedAttributesCount: 1,
            },
            { timeUnixNano: '18446744073709551615', name: 'past 2262' },
            {},
          ],
          links: [
            LINK,
            { traceId: Buffer.alloc(3), spanId: PARENT_ID, attributes: attributes(5) },
            { spanId: PARENT_ID, attributes: [text('dropped link', 'x'.repeat(20))] },
          ],
        }),
      ]),
    ],
    [
      'several scopes and resources',
      encode({
        resourceSpans: [
          {
            resource: { attributes: [text('service.name', 'a'), text('service.version', '1')] },
            scopeSpans: [
              { scope: { name: 'one' }, spans: [span({ name: 'first' })] },
              { spans: [span({ name: 'second', traceId: Buffer.alloc(16) })] },
              { scope: { name: 'three', attributes: attributes(2) }, spans: [span({})] },
            ],
          },
          {
            resource: {
              attributes: [text('service.name', 'b'), text('deployment.environment', 'prod')],
            },
            scopeSpans: [{ spans: [span({ spanId: Buffer.alloc(2) }), span({})] }],
          },
        ],
      }),
    ],
  ];

  it.each(cases)('equals the reference: %s', (_name, body) => {
    expectReference(body);
    expectReference(body, SMALL_LIMITS);
  });

  it('quotes a long id as the reference does', () => {
    const body = request([span({ traceId: Buffer.alloc(60, 0xab) })]);
    const result = expectReference(body) as FlattenResult;
    expect(result.rejectedSpans).toBe(1);
    expect(result.errorMessage).toContain(`"${'ab'.repeat(40)}..."`);
  });

  it('reads a span without parent_span_id as a root', () => {
    const result = expectReference(request([span({ parentSpanId: undefined })])) as FlattenResult;
    expect(result.spans[0].parentSpanId).toBe('');
    expect(result.spans[0].ingestWarnings).toEqual([]);
  });

  describe('limits', () => {
    const long = 'x'.repeat(20);
    const limitCases: [string, Uint8Array, string[]][] = [
      [
        'attribute count on every part',
        request(
          [
            span({
              attributes: attributes(5),
              events: [{ name: 'e', attributes: attributes(4, 'e') }],
              links: [{ traceId: TRACE_ID, spanId: PARENT_ID, attributes: attributes(6, 'l') }],
            }),
          ],
          { attributes: [text('service.name', 'svc'), ...attributes(4, 'r')] },
          { name: 's', attributes: attributes(4, 's') },
        ),
        ['attributes_dropped'],
      ],
      [
        'long values on every part',
        request(
          [
            span({
              attributes: [text('long', long), text('short', 'ok')],
              events: [{ name: long, attributes: [text('event', long)] }],
              links: [{ traceId: TRACE_ID, spanId: PARENT_ID, attributes: [text('link', long)] }],
              status: { code: 2, message: long },
            }),
          ],
          { attributes: [text('service.name', long)] },
          { name: long, attributes: [text('scope', long)] },
        ),
        ['attribute_value_truncated'],
      ],
      [
        'long values nested',
        request([
          span({
            attributes: [
              { key: 'list', value: { arrayValue: { values: [{ stringValue: long }] } } },
              { key: 'map', value: { kvlistValue: { values: [text('inner', long)] } } },
            ],
          }),
        ]),
        ['attribute_value_truncated'],
      ],
      [
        'values at the length limit',
        request([span({ attributes: [text('eight', '12345678'), text('accent', 'ééééééé')] })]),
        [],
      ],
    ];

    it.each(limitCases)('equals the reference: %s', (_name, body, warnings) => {
      const result = expectReference(body, SMALL_LIMITS) as FlattenResult;
      for (const warning of warnings) {
        expect(result.spans[0].ingestWarnings).toContain(warning);
      }
      if (warnings.length === 0) expect(result.spans[0].ingestWarnings).toEqual([]);
    });

    it.each([
      ['kvlist', 15],
      ['kvlist', 16],
      ['kvlist', 17],
      ['array', 16],
      ['array', 17],
      ['kvlist', 40],
      ['array', 300],
    ] as const)('equals the reference: %s nested %i levels', (kind, depth) => {
      const body = request([span({ attributes: [{ key: 'deep', value: nested(depth, kind) }] })]);
      const result = expectReference(body) as FlattenResult;
      const truncated = result.spans[0].ingestWarnings.includes('attribute_depth_truncated');
      expect(truncated).toBe(depth > 16);
    });

    it('marks only the kept oneof member', () => {
      // AnyValue sets string_value after array_value, so the string wins and the deep
      // array's repairs are dropped with it.
      const body = request([
        span({
          attributes: [
            {
              key: 'both',
              value: { arrayValue: nested(20, 'array').arrayValue, stringValue: 'short' },
            },
          ],
        }),
      ]);
      const result = expectReference(body, SMALL_LIMITS) as FlattenResult;
      expect(result.spans[0].ingestWarnings).toEqual([]);
    });

    it.each([100, 1000, 25_000])('equals the reference on a kvlist nested %i levels', (depth) => {
      const keyValue = field(2, deepAnyValue(depth), Buffer.from([0x0a, 0x01, 0x6b]));
      const body = wrapSpan(
        Buffer.concat([field(1, TRACE_ID), field(2, SPAN_ID), field(9, keyValue)]),
      );
      const expected = expectReference(body);
      if (depth === 25_000) {
        expect(expected).toEqual(expect.objectContaining({ code: 'FL_UNDECODABLE_BODY' }));
      } else {
        expect((expected as FlattenResult).spans[0].ingestWarnings).toContain(
          'attribute_depth_truncated',
        );
      }
    });
  });

  describe('invalid UTF-8', () => {
    const invalidCases: [string, Buffer][] = [
      ['span name', request([span({ name: 'MARKR' })])],
      ['attribute key', request([span({ attributes: [text('MARKR', 'v')] })])],
      ['attribute value', request([span({ attributes: [text('k', 'MARKR')] })])],
      [
        'nested attribute value',
        request([
          span({
            attributes: [
              { key: 'list', value: { arrayValue: { values: [{ stringValue: 'MARKR' }] } } },
            ],
          }),
        ]),
      ],
      ['resource attribute', request([span({})], { attributes: [text('service.name', 'MARKR')] })],
      ['scope name', request([span({})], undefined, { name: 'MARKR' })],
      ['status message', request([span({ status: { code: 2, message: 'MARKR' } })])],
      ['trace state', request([span({ traceState: 'MARKR' })])],
      ['event name', request([span({ events: [{ name: 'MARKR' }] })])],
      [
        'link trace state',
        request([span({ links: [{ traceId: TRACE_ID, spanId: PARENT_ID, traceState: 'MARKR' }] })]),
      ],
    ];

    it.each(invalidCases)('equals the reference: %s', (_name, body) => {
      const result = expectReference(replaceBytes(body, 'MARKR', INVALID)) as FlattenResult;
      expect(result.spans[0].ingestWarnings).toContain('invalid_utf8');
    });

    it('quotes invalid UTF-8 in rejections', () => {
      const body = request([span({ name: 'MARKR', spanId: Buffer.alloc(8) })]);
      const result = expectReference(replaceBytes(body, 'MARKR', INVALID)) as FlattenResult;
      expect(result.errorMessage).toContain('\uFFFD');
    });

    it('leaves a sent U+FFFD unmarked', () => {
      const sent = 'a\uFFFDb';
      const body = request(
        [span({ name: sent, attributes: [text(sent, sent)], status: { message: sent } })],
        { attributes: [text('service.name', sent)] },
        { name: sent },
      );
      const result = expectReference(body) as FlattenResult;
      expect(result.spans[0].name).toBe(sent);
      expect(result.spans[0].ingestWarnings).toEqual([]);
    });

    it('marks valid text also sent invalid', () => {
      // The generic path marks every occurrence of a text once one occurrence was invalid,
      // here in a span of a later resource.
      const repaired = 'B\uFFFDA\uFFFD';
      const spans = (value: string) => [
        {
          resource: { attributes: [text('service.name', 'svc')] },
          scopeSpans: [{ spans: [span({ attributes: [text('k', value)] })] }],
        },
      ];
      const body = encode({ resourceSpans: [...spans(repaired), ...spans('MARKR')] });
      const result = expectReference(replaceBytes(body, 'MARKR', INVALID)) as FlattenResult;
      expect(result.spans.map((record) => record.attributes[0].value)).toEqual([
        { stringValue: repaired },
        { stringValue: repaired },
      ]);
      expect(result.spans[0].ingestWarnings).toEqual(['invalid_utf8']);
    });

    it('marks only the kept repeated text', () => {
      const spanType = ExportTraceServiceRequest.lookupType('opentelemetry.proto.trace.v1.Span');
      const encodeSpan = (fields: Record<string, unknown>) =>
        Buffer.from(spanType.encode(spanType.fromObject(span(fields))).finish());
      // A second name field after the invalid one replaces it.
      const secondName = Buffer.from([(5 << 3) | 2, 2, 0x6f, 0x6b]);
      const invalidName = replaceBytes(encodeSpan({ name: 'MARKR' }), 'MARKR', INVALID);
      const renamed = expectReference(wrapSpan(Buffer.concat([invalidName, secondName])));
      expect((renamed as FlattenResult).spans[0].name).toBe('ok');
      expect((renamed as FlattenResult).spans[0].ingestWarnings).not.toContain('invalid_utf8');

      const invalidKey = replaceBytes(
        encodeSpan({ name: 'MARKR', attributes: [text('MARKR', 'x')] }),
        'MARKR',
        INVALID,
      );
      const keyed = expectReference(wrapSpan(Buffer.concat([invalidKey, secondName])));
      expect((keyed as FlattenResult).spans[0].ingestWarnings).toContain('invalid_utf8');
    });
  });

  it('orders warnings as the reference', () => {
    const body = request(
      [
        span({
          parentSpanId: Buffer.alloc(5, 1),
          name: 'MARKR',
          startTimeUnixNano: '5',
          endTimeUnixNano: '1',
          attributes: [
            text('MARKR', 'x'.repeat(20)),
            ...attributes(4),
            { key: 'deep', value: nested(20) },
          ],
          events: [
            { name: 'MARKR', timeUnixNano: '18446744073709551615', attributes: attributes(5) },
          ],
          links: [
            { traceId: Buffer.alloc(2), spanId: SPAN_ID },
            { traceId: TRACE_ID, spanId: SPAN_ID, traceState: 'MARKR', attributes: attributes(4) },
          ],
        }),
      ],
      { attributes: [text('host', 'x'.repeat(9))] },
      { name: 'MARKR', attributes: attributes(5) },
    );
    const result = expectReference(replaceBytes(body, 'MARKR', INVALID), SMALL_LIMITS);
    expect((result as FlattenResult).spans[0].ingestWarnings.length).toBeGreaterThanOrEqual(10);
  });

  it('orders key warnings before value warnings', () => {
    const body = replaceBytes(
      request([span({ attributes: [text('MARKR', 'x'.repeat(20))] })]),
      'MARKR',
      INVALID,
    );
    const result = expectReference(body, SMALL_LIMITS) as FlattenResult;
    expect(result.spans[0].ingestWarnings).toEqual(['invalid_utf8', 'attribute_value_truncated']);
  });

  describe('malformed bodies', () => {
    it('rejects a truncated body like the reference', () => {
      const body = cases.find(([name]) => name === 'events and links')![1];
      for (let length = 0; length < body.length; length += 1) {
        expectReference(body.subarray(0, length));
      }
    });

    it.each([
      ['a string past the end', Buffer.from([0x0a, 0x05, 0x12, 0x03, 0x1a, 0x09, 0x41])],
      ['an invalid wire type', Buffer.from([0x0f, 0x01])],
      ['a varint past the end', Buffer.from([0x08, 0xff, 0xff])],
      ['an end group without a start', Buffer.from([0x0c])],
      ['a group', Buffer.from([0x0b, 0x08, 0x01, 0x0c])],
      ['unknown fields', Buffer.from([0x10, 0x01, 0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x25, 1, 2, 3, 4])],
      ['bytes of 0xff', Buffer.alloc(32, 0xff)],
      ['an empty body', Buffer.alloc(0)],
    ])('equals the reference on %s', (_name, body) => {
      expectReference(body);
    });

    it('ignores wire types like the reference', () => {
      const spanBytes = Buffer.concat([
        Buffer.from([0x0a, 16]),
        TRACE_ID,
        Buffer.from([0x12, 8]),
        SPAN_ID,
        // name (field 5) sent as a varint, kind (field 6) sent length-delimited.
        Buffer.from([5 << 3, 0x03, 0x61, 0x62, 0x63, (6 << 3) | 2, 0x02]),
      ]);
      const body = wrapSpan(spanBytes);
      expectReference(body);
    });

    it('equals the reference on a malformed entity reference', () => {
      const resource = Buffer.from([0x1a, 0x04, 0x0a, 0x09, 0x41, 0x42]);
      const resourceSpans = Buffer.concat([Buffer.from([0x0a, resource.length]), resource]);
      const body = Buffer.concat([Buffer.from([0x0a, resourceSpans.length]), resourceSpans]);
      const expected = expectReference(body);
      expect(expected).toEqual(expect.objectContaining({ code: 'FL_UNDECODABLE_BODY' }));
    });

    it('equals the reference on mutated bodies', () => {
      const valid = Buffer.concat(cases.map(([, body]) => body));
      fc.assert(
        fc.property(
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
          fc.nat(),
          (flips, cut) => {
            const body = Buffer.from(valid);
            for (const [at, byte] of flips) body[at % body.length] = byte;
            expectReference(body.subarray(0, body.length - (cut % 8)), SMALL_LIMITS);
          },
        ),
        { seed: 7, numRuns: 400 },
      );
    });
  });

  describe('direct conversion into rows', () => {
    const named = new Map(cases.map(([name, body]) => [name, body]));

    it('takes exporter output', () => {
      const traces = syntheticTraces({ seed: 5, startMs: 1_700_000_000_000, traceIntervalMs: 7 });
      const body = ProtobufTraceSerializer.serializeRequest(takeSpans(traces, 2000))!;
      const expected = outcome(() => decodeSpansFast(body));
      expect(directRows(body, DEFAULT_FLATTEN_LIMITS, expected)?.count).toBeGreaterThanOrEqual(
        2000,
      );
    });

    it.each([
      'zero parent id',
      'empty parent id',
      'absent parent id',
      'unknown kind',
      'negative kind',
      'error status',
      'unknown status',
      'flags and counts',
    ])('takes the body with %s', (name) => {
      const body = named.get(name)!;
      expect(directRows(body, DEFAULT_FLATTEN_LIMITS, reference(body))).toBeDefined();
    });

    const directBodies: [string, Uint8Array][] = [
      [
        'scalar values',
        request([
          span({
            kind: 3,
            attributes: [
              text('text', 'héllo wörld ✓'),
              text('empty', ''),
              ...SCALAR_ATTRIBUTES,
              { key: 'off', value: { boolValue: false } },
              { key: 'http.response.status_code', value: { intValue: 503 } },
              { key: 'server.address', value: { stringValue: 'payments.internal' } },
              { key: 'server.port', value: { intValue: 8443 } },
              text('ключ', 'значение'),
            ],
          }),
        ]),
      ],
      [
        'events and links with any values',
        request([
          span({
            kind: 4,
            attributes: [
              text('messaging.system', 'kafka'),
              text('messaging.destination', 'orders'),
            ],
            events: [
              {
                timeUnixNano: '1699999999000000000',
                name: 'before the start',
                attributes: [
                  text('exception.type', 'Timeout'),
                  { key: 'list', value: { arrayValue: { values: [{ intValue: 1 }, {}] } } },
                  { key: 'raw', value: { bytesValue: Buffer.from([0, 1, 254]) } },
                  { key: 'ratio', value: { doubleValue: Infinity } },
                ],
                droppedAttributesCount: 1,
              },
              {
                name: 'scalars only',
                attributes: [
                  text('exception.message', 'card "4242"\n\\ déclinée\u0001'),
                  { key: 'quote"key', value: { intValue: '-5' } },
                  { key: 'big', value: { intValue: '-9223372036854775808' } },
                  { key: 'retry', value: { boolValue: false } },
                  { key: 'ok', value: { boolValue: true } },
                  { key: 'nan', value: { doubleValue: NaN } },
                  { key: 'ratio', value: { doubleValue: -0.5 } },
                ],
              },
              {},
            ],
            links: [
              { ...LINK, droppedAttributesCount: 3 },
              { traceId: Buffer.alloc(16), spanId: Buffer.alloc(8) },
            ],
          }),
        ]),
      ],
      [
        'several scopes and resources',
        encode({
          resourceSpans: [
            {
              resource: {
                attributes: [text('service.name', 'a'), text('service.version', '1')],
                droppedAttributesCount: 2,
              },
              scopeSpans: [
                { scope: { name: 'one', version: '2' }, spans: [span({ name: 'first' })] },
                { spans: [span({ name: 'second' })] },
                {
                  scope: { name: 'three', attributes: attributes(2), droppedAttributesCount: 1 },
                  spans: [span({}), span({ spanId: PARENT_ID })],
                },
              ],
            },
            {
              resource: {
                attributes: [
                  text('service.name', 'b'),
                  text('deployment.environment.name', 'prod'),
                  { key: 'host.cpus', value: { arrayValue: { values: [{ intValue: 4 }] } } },
                ],
              },
              scopeSpans: [{ spans: [span({})] }],
            },
          ],
        }),
      ],
    ];

    it('takes spans with more distinct keys than its key table', () => {
      const spans = Array.from({ length: 400 }, (_, index) =>
        span({
          spanId: Buffer.from(`span${String(index).padStart(4, '0')}`),
          attributes: attributes(25, `key${index}.`),
        }),
      );
      const body = request(spans);
      expect(directRows(body, DEFAULT_FLATTEN_LIMITS, reference(body))?.count).toBe(400);
    });

    it.each(directBodies)('takes the body with %s', (_name, body) => {
      expect(directRows(body, DEFAULT_FLATTEN_LIMITS, reference(body))).toBeDefined();
    });

    const recordPath: [string, Uint8Array][] = [
      ...[
        'short trace id',
        'zero trace id',
        'missing span id',
        'short parent id',
        'missing service name',
        'absent resource',
        'end before start',
        'missing start',
        'huge timestamps',
        'start past 2106',
        'every value type',
      ].map((name): [string, Uint8Array] => [name, named.get(name)!]),
      ['a repeated key', request([span({ attributes: [text('k', 'first'), text('k', 'last')] })])],
      ['an empty value', request([span({ attributes: [{ key: 'k', value: {} }] })])],
      [
        'a value past the length limit',
        request([span({ attributes: [text('k', 'x'.repeat(9))] })]),
      ],
      ['too many attributes', request([span({ attributes: attributes(4) })])],
      ['too many event attributes', request([span({ events: [{ attributes: attributes(4) }] })])],
      [
        'an invalid link',
        request([span({ links: [{ traceId: Buffer.alloc(3), spanId: PARENT_ID }] })]),
      ],
      [
        'an event past 2262',
        request([span({ events: [{ timeUnixNano: '18446744073709551615' }] })]),
      ],
      ['invalid UTF-8', replaceBytes(request([span({ name: 'MARKR' })]), 'MARKR', INVALID)],
    ];

    it.each(recordPath)('leaves the body with %s to the records', (_name, body) => {
      expect(protobufSpanRows(body, { limits: SMALL_LIMITS, oldestNs: 0n })).toBeUndefined();
      expectReference(body, SMALL_LIMITS);
    });

    it('leaves a span older than the retention to the records', () => {
      const body = request([span({})]);
      expect(directRows(body, DEFAULT_FLATTEN_LIMITS, reference(body))).toBeDefined();
      const oldestNs = 1_700_000_000_000_000_001n;
      expect(protobufSpanRows(body, { limits: DEFAULT_FLATTEN_LIMITS, oldestNs })).toBeUndefined();
    });

    it('leaves a resource sent after its spans to the records', () => {
      const resourceSpans = Buffer.concat([
        field(
          2,
          field(
            2,
            ExportTraceServiceRequest.lookupType('opentelemetry.proto.trace.v1.Span')
              .encode(span({}))
              .finish() as Buffer,
          ),
        ),
        field(1, field(1, field(1, Buffer.from([0x0a, 0x0c, ...Buffer.from('service.name')])))),
      ]);
      const body = field(1, resourceSpans);
      expect(
        protobufSpanRows(body, { limits: DEFAULT_FLATTEN_LIMITS, oldestNs: 0n }),
      ).toBeUndefined();
      expectReference(body);
    });

    describe('bodies that protobufjs reads in its own way', () => {
      const spanType = ExportTraceServiceRequest.lookupType('opentelemetry.proto.trace.v1.Span');
      const spanBytes = (fields: Record<string, unknown> = {}) =>
        Buffer.from(spanType.encode(spanType.fromObject(span(fields))).finish());
      const keyValue = (key: string, ...values: Buffer[]) =>
        Buffer.concat([field(1, Buffer.from(key)), ...values.map((value) => field(2, value))]);
      const stringValue = (value: string | Buffer) => field(1, Buffer.from(value));
      const serviceResource = field(1, keyValue('service.name', stringValue('checkout')));
      /** A request of one ResourceSpans with these Resource bytes and one span. */
      const withResource = (resource: Buffer, spanMessage: Buffer) =>
        field(1, Buffer.concat([field(1, resource), field(2, field(2, spanMessage))]));
      /** Bytes that fail in protobufjs: a field of wire type 4 without a group. */
      const UNDECODABLE = Buffer.from([0x44]);
      /** An unknown field 8 whose length of 2 runs past the end of its message. */
      const OVERRUN = Buffer.from([(8 << 3) | 2, 0x02]);
      const repaired = Buffer.from(INVALID).toString('utf8');

      it('reads a six-byte varint as protobufjs', () => {
        // protobufjs reads 5 bytes of a longer varint and steps over the next 5, so the
        // name field after the kind is never read.
        const body = withResource(
          serviceResource,
          Buffer.concat([
            spanBytes(),
            Buffer.from([6 << 3, 0x82, 0x80, 0x80, 0x80, 0x80, 0x00]),
            field(5, Buffer.from('ok')),
          ]),
        );
        const result = expectReference(body) as FlattenResult;
        expect(result.spans[0].name).toBe('GET /cart');
        expect(result.spans[0].kind).toBe('SERVER');
        expect(directRows(body, DEFAULT_FLATTEN_LIMITS, result)).toBeDefined();
      });

      const recordBodies: [string, Buffer][] = [
        [
          'a resource without spans that does not decode',
          Buffer.concat([field(1, field(1, field(1, UNDECODABLE))), request([span({})])]),
        ],
        [
          'a resource without spans with invalid UTF-8 sent valid elsewhere',
          replaceBytes(
            encode({
              resourceSpans: [
                { resource: { attributes: [text('service.name', 'MARKR')] } },
                {
                  resource: { attributes: [text('service.name', 'checkout')] },
                  scopeSpans: [{ spans: [span({ attributes: [text('k', repaired)] })] }],
                },
              ],
            }),
            'MARKR',
            INVALID,
          ),
        ],
        [
          'an attribute value sent twice, the first undecodable',
          withResource(
            serviceResource,
            Buffer.concat([spanBytes(), field(9, keyValue('k', UNDECODABLE, stringValue('ok')))]),
          ),
        ],
        [
          'an attribute value sent twice, the first invalid UTF-8 sent valid elsewhere',
          withResource(
            serviceResource,
            Buffer.concat([
              spanBytes({ name: repaired }),
              field(9, keyValue('k', stringValue(Buffer.from(INVALID)), stringValue('ok'))),
            ]),
          ),
        ],
        [
          'an attribute key sent twice, the first invalid UTF-8',
          withResource(
            serviceResource,
            Buffer.concat([
              spanBytes(),
              field(
                9,
                Buffer.concat([field(1, Buffer.from(INVALID)), keyValue('k', stringValue('ok'))]),
              ),
            ]),
          ),
        ],
        [
          'an event attribute value sent twice, the first undecodable',
          withResource(
            serviceResource,
            Buffer.concat([
              spanBytes(),
              field(11, field(3, keyValue('k', UNDECODABLE, stringValue('ok')))),
            ]),
          ),
        ],
        [
          // The KeyValue ends in an unknown field 8 of 2 bytes with none left in it, so
          // protobufjs reads the dropped count 7 after it as that field, then a count of 0.
          'a resource attribute that runs past its message',
          withResource(
            Buffer.concat([
              field(1, Buffer.concat([keyValue('service.name', stringValue('checkout')), OVERRUN])),
              Buffer.from([0x10, 0x07, 0x00, 0x00]),
            ]),
            spanBytes(),
          ),
        ],
        [
          // The first attribute, a list, makes the event's attributes go through the reader
          // of any value.
          'an event attribute that runs past its message',
          withResource(
            serviceResource,
            Buffer.concat([
              spanBytes(),
              field(
                11,
                Buffer.concat([
                  field(3, keyValue('list', field(5, Buffer.alloc(0)))),
                  field(3, Buffer.concat([keyValue('k', stringValue('v')), OVERRUN])),
                  Buffer.from([0x20, 0x07, 0x00, 0x00]),
                ]),
              ),
            ]),
          ),
        ],
      ];

      it.each(recordBodies)('leaves the body with %s to the records', (_name, body) => {
        expect(
          protobufSpanRows(body, { limits: DEFAULT_FLATTEN_LIMITS, oldestNs: 0n }),
        ).toBeUndefined();
        expectReference(body);
      });
    });
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
      .encode(resource.fromObject({ attributes: [text('service.name', 'old')] }))
      .finish();
    const last = resource
      .encode(resource.fromObject({ attributes: [text('service.name', 'new')] }))
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
});

describe('SpanBlockGroup', () => {
  const traces = syntheticTraces({ seed: 5, startMs: 1_700_000_000_000, traceIntervalMs: 7 });
  const bodies = [120, 80, 200].map((count) =>
    Buffer.from(ProtobufTraceSerializer.serializeRequest(takeSpans(traces, count))!),
  );
  const options = { limits: DEFAULT_FLATTEN_LIMITS, oldestNs: 0n };
  /** The block that the records of every body give when written as one. */
  const expectedBlock = () =>
    Buffer.concat(toSpanRows(bodies.flatMap((body) => reference(body).spans)).chunks);

  it('gives the block of the records of all its bodies', () => {
    const group = new SpanBlockGroup();
    const counts = bodies.map((body) => group.add(body, options));
    const rows = group.take()!;
    expect(counts).toEqual(bodies.map((body) => reference(body).spans.length));
    expect(rows.chunks).toHaveLength(1);
    expect(rows.count).toBe(counts.reduce((sum, count) => sum! + count!, 0));
    expect(rows.chunks[0]).toEqual(expectedBlock());
    expect(group.take()).toBeUndefined();
  });

  it('skips record-path and rejected bodies', () => {
    const group = new SpanBlockGroup();
    group.add(bodies[0], options);
    const oldSpan = request([span({})]);
    expect(group.add(oldSpan, { ...options, oldestNs: 1_700_000_000_000_000_001n })).toBe(
      undefined,
    );
    const tooMany = new FaultlineError('FL_TOO_MANY_SPANS', 'too many');
    expect(() =>
      group.add(bodies[1], options, () => {
        throw tooMany;
      }),
    ).toThrow(tooMany);
    group.add(bodies[1], options);
    group.add(bodies[2], options);
    expect(group.take()!.chunks[0]).toEqual(expectedBlock());
  });

  it('keeps its bodies when a single body is converted meanwhile', () => {
    const group = new SpanBlockGroup();
    group.add(bodies[0], options);
    expect(protobufSpanRows(bodies[2], options)!.count).toBe(reference(bodies[2]).spans.length);
    group.add(bodies[1], options);
    const other = new SpanBlockGroup();
    other.add(bodies[0], options);
    group.add(bodies[2], options);
    expect(group.take()!.chunks[0]).toEqual(expectedBlock());
    expect(other.take()!.count).toBe(reference(bodies[0]).spans.length);
  });
});

/** Wraps the bytes of one Span message in ScopeSpans, ResourceSpans and the request. */
function wrapSpan(spanBytes: Buffer): Buffer {
  return field(1, field(2, field(2, spanBytes)));
}
