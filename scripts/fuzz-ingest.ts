/**
 * Fuzzes the ingest decoders and the validation behind them with fast-check, bounded in
 * time: `npm run fuzz:ingest -- --seconds 120`. A property fails when decoding throws
 * anything but a FaultlineError, when flattening throws at all, when a span it keeps
 * has an invalid id or cannot be serialised or converted into a Native block that reads
 * back, when the fast protobuf decoder's result or error differs from the generic
 * path's, or when the direct conversion into rows gives rows for a body that needs a
 * repair, or rows other than those of the records. Exits 1 with the counterexample.
 *
 * The protobuf inputs are random bytes, encoded requests with bytes changed and the tail
 * cut, and SDK-like requests before and after structural mutations. Those mutations
 * (protobuf-tree.ts) pad varints, repeat and move fields, change wire types, add unknown
 * fields, send a KeyValue's value twice, drop a resource's scope spans and make lengths run
 * past their message or stop short.
 */
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { FaultlineError } from '../lib/errors';
import { decodeJsonRequest, decodeProtobufRequest } from '../lib/otlp/decode';
import { decodeSpansFast } from '../lib/otlp/fast-decode';
import { flattenExportRequest, type FlattenResult } from '../lib/otlp/flatten';
import { ExportTraceServiceRequest } from '../lib/otlp/proto';
import type { OtlpExportRequest } from '../lib/otlp/request';
import type { SpanRecord } from '../lib/model/span';
import { readNativeRows, writeNativeBlock } from '../lib/storage/native';
import { protobufSpanRows, SpanBlockGroup } from '../lib/otlp/protobuf-rows';
import { toSpanRows } from '../lib/storage/span-rows';
import { parseZipkinJson, zipkinToOtlp } from '../lib/zipkin/convert';
import { encodeMessage, mutate, MUTATIONS, parseMessage } from './protobuf-tree';

const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 60;
const LIMITS = { maxAttributesPerSpan: 64, maxAttributeValueLength: 256 };

/** Decodes with `decode`; only a FaultlineError may escape, then the result is checked. */
function decodeAndCheck(decode: () => OtlpExportRequest): void {
  let request: OtlpExportRequest;
  try {
    request = decode();
  } catch (error) {
    if (error instanceof FaultlineError) return;
    throw error;
  }
  checkFlattened(request);
}

function checkFlattened(request: OtlpExportRequest): void {
  const result = flattenExportRequest(request, LIMITS);
  for (const span of result.spans) {
    if (!/^[0-9a-f]{32}$/.test(span.traceId) || /^0+$/.test(span.traceId)) {
      throw new Error(`kept a span with trace id ${span.traceId}`);
    }
    if (!/^[0-9a-f]{16}$/.test(span.spanId) || /^0+$/.test(span.spanId)) {
      throw new Error(`kept a span with span id ${span.spanId}`);
    }
    if (BigInt(span.durationNs) < 0n) throw new Error('negative duration');
    JSON.stringify(span);
  }
  checkNativeBlock(result.spans);
}

/** Fails when kept spans cannot become a Native block or the block does not read back. */
function checkNativeBlock(spans: SpanRecord[]): void {
  const block = toSpanRows(spans).chunks[0];
  const read = readNativeRows(block);
  if (read.rows.length !== spans.length) {
    throw new Error(`Native block read back ${read.rows.length} rows of ${spans.length}`);
  }
  if (!writeNativeBlock(read.columns, read.types, read.rows).equals(block)) {
    throw new Error('Native block written again differs from the first');
  }
}

/** Returns the result or the FaultlineError of a decoder, at a fixed clock. */
function outcome(decode: () => FlattenResult): unknown {
  const now = Date.now;
  Date.now = () => 1_700_000_100_000;
  try {
    return decode();
  } catch (error) {
    if (error instanceof FaultlineError) return { code: error.code, message: error.message };
    throw error;
  } finally {
    Date.now = now;
  }
}

/** Fails when the fast decoder and the generic path disagree on a body. */
function compareDecoders(bytes: Uint8Array): void {
  const generic = outcome(() => flattenExportRequest(decodeProtobufRequest(bytes), LIMITS));
  const fast = outcome(() => decodeSpansFast(bytes, LIMITS));
  if (!isDeepStrictEqual(fast, generic)) {
    throw new Error(`fast decoder differs: ${JSON.stringify(fast)} != ${JSON.stringify(generic)}`);
  }
  if ('spans' in (fast as object)) checkNativeBlock((fast as FlattenResult).spans);
  checkDirectRows(bytes, fast);
}

const DIRECT_OPTIONS = { limits: LIMITS, oldestNs: 0n, nowNs: 1_700_000_100_000n * 1_000_000n };

// Every body also goes into one group of GROUP_BODIES bodies, which must give the block of
// the records of the bodies it took. The single conversions between its bodies make it
// convert its bodies again each time.
const GROUP_BODIES = 8;
const group = new SpanBlockGroup();
let groupRecords: SpanRecord[] = [];
let groupBodies = 0;

function checkGroup(bytes: Uint8Array, records: SpanRecord[] | undefined): void {
  const spans = group.add(bytes, DIRECT_OPTIONS);
  if ((spans === undefined) !== (records === undefined)) {
    throw new Error(
      'SpanBlockGroup and protobufSpanRows differ on whether a body needs the records',
    );
  }
  if (!records) return;
  groupRecords.push(...records);
  groupBodies += 1;
  if (groupBodies < GROUP_BODIES) return;
  const rows = group.take()!;
  if (!Buffer.concat(rows.chunks).equals(Buffer.concat(toSpanRows(groupRecords).chunks))) {
    throw new Error('SpanBlockGroup returned a block that differs from toSpanRows of the records');
  }
  groupRecords = [];
  groupBodies = 0;
}

/**
 * Fails when the direct conversion gives rows for a body whose records needed a repair or
 * a rejection, or rows other than those of the records, alone or in a group.
 */
function checkDirectRows(bytes: Uint8Array, fast: unknown): void {
  const rows = protobufSpanRows(bytes, DIRECT_OPTIONS);
  if (rows === undefined) {
    checkGroup(bytes, undefined);
    return;
  }
  if (!('spans' in (fast as object)))
    throw new Error('protobufSpanRows returned rows for a body that the decoders reject');
  const result = fast as FlattenResult;
  if (result.rejectedSpans > 0 || result.spans.some((span) => span.ingestWarnings.length > 0)) {
    throw new Error(
      'protobufSpanRows returned rows for a body that needs a repair or rejects a span',
    );
  }
  if (!Buffer.concat(rows.chunks).equals(Buffer.concat(toSpanRows(result.spans).chunks))) {
    throw new Error('protobufSpanRows returned rows that differ from toSpanRows of the records');
  }
  checkGroup(bytes, result.spans);
}

const id = (bytes: number) =>
  fc.oneof(
    fc.uint8Array({ minLength: bytes, maxLength: bytes }),
    // OTLP/JSON sends ids as hex; protobufjs reads a string id as base64.
    fc
      .uint8Array({ minLength: bytes, maxLength: bytes })
      .map((value) => Buffer.from(value).toString('hex')),
    fc.uint8Array({ maxLength: bytes + 2 }),
    fc.string(),
    fc.constant(undefined),
  );

const anyValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.record({ stringValue: fc.string() }),
    fc.record({ intValue: fc.oneof(fc.bigInt().map(String), fc.integer(), fc.string()) }),
    fc.record({ doubleValue: fc.oneof(fc.double(), fc.string()) }),
    fc.record({ boolValue: fc.anything() }),
    fc.record({ arrayValue: fc.record({ values: fc.array(tie('value'), { maxLength: 3 }) }) }),
    fc.record({ kvlistValue: fc.record({ values: fc.array(tie('keyValue'), { maxLength: 3 }) }) }),
    fc.anything(),
  ),
  keyValue: fc.record({ key: fc.oneof(fc.string(), fc.anything()), value: tie('value') }),
}));

/** A dropped count or flags value, including those past UInt32 that OTLP/JSON allows. */
const count = fc.oneof(
  fc.nat(),
  fc.constantFrom(4_294_967_295, 4_294_967_296, 5e9, 1e300, -1),
  fc.double(),
  fc.bigInt().map(String),
  fc.anything(),
);

const span = fc.record(
  {
    traceId: id(16),
    spanId: id(8),
    parentSpanId: id(8),
    name: fc.oneof(fc.string(), fc.anything()),
    kind: fc.oneof(fc.integer(), fc.string(), fc.anything()),
    startTimeUnixNano: fc.oneof(fc.bigInt().map(String), fc.double(), fc.string(), fc.anything()),
    endTimeUnixNano: fc.oneof(fc.bigInt().map(String), fc.double(), fc.string()),
    traceState: fc.oneof(fc.string(), fc.anything()),
    flags: count,
    attributes: fc.oneof(fc.array(anyValue.keyValue, { maxLength: 5 }), fc.anything()),
    droppedAttributesCount: count,
    events: fc.oneof(
      fc.array(
        fc.record(
          { name: fc.string(), timeUnixNano: fc.anything(), droppedAttributesCount: count },
          { requiredKeys: ['name', 'timeUnixNano'] },
        ),
      ),
      fc.anything(),
    ),
    droppedEventsCount: count,
    links: fc.oneof(
      fc.array(
        fc.record(
          { traceId: id(16), spanId: id(8), flags: count, droppedAttributesCount: count },
          { requiredKeys: ['traceId', 'spanId'] },
        ),
      ),
      fc.anything(),
    ),
    droppedLinksCount: count,
    status: fc.oneof(fc.record({ code: fc.anything(), message: fc.anything() }), fc.anything()),
  },
  { requiredKeys: [] },
);

const request = fc.record({
  resourceSpans: fc.array(
    fc.record({
      resource: fc.record(
        {
          attributes: fc.array(anyValue.keyValue, { maxLength: 3 }),
          droppedAttributesCount: count,
        },
        { requiredKeys: ['attributes'] },
      ),
      scopeSpans: fc.array(
        fc.record(
          {
            scope: fc.record({ name: fc.string(), droppedAttributesCount: count }),
            spans: fc.array(span, { maxLength: 4 }),
          },
          { requiredKeys: ['spans'] },
        ),
        { maxLength: 2 },
      ),
    }),
    { maxLength: 2 },
  ),
});

/*
 * Requests as SDKs send them: valid ids and times, a service name, scalar span attributes.
 * Most need no repair, so the direct conversion into rows takes them. Values at the limits
 * and the mutations below make the rest.
 */
const startNs = fc.bigInt({ min: 1_699_000_000_000_000_000n, max: 1_700_000_100_000_000_000n });
const scalarValue = fc.oneof(
  fc.record({ stringValue: fc.oneof(fc.string(), fc.string({ unit: 'binary', maxLength: 300 })) }),
  fc.record({ intValue: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String) }),
  fc.record({ doubleValue: fc.double() }),
  fc.record({ boolValue: fc.boolean() }),
);
const conventionKey = fc.constantFrom(
  'http.response.status_code',
  'http.status_code',
  'peer.service',
  'db.system',
  'db.name',
  'messaging.system',
  'server.address',
  'server.port',
  'url.full',
);
const plainAttributes = fc.uniqueArray(
  fc.record({ key: fc.oneof(fc.string(), conventionKey), value: scalarValue }),
  { maxLength: 8, selector: (attribute) => attribute.key },
);
const plainSpan = fc
  .record({
    traceId: fc.uint8Array({ minLength: 16, maxLength: 16 }),
    spanId: fc.uint8Array({ minLength: 8, maxLength: 8 }),
    parentSpanId: fc.oneof(fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.constant(undefined)),
    name: fc.string({ unit: 'binary' }),
    kind: fc.integer({ min: -1, max: 7 }),
    start: startNs,
    duration: fc.bigInt({ min: 0n, max: 10n ** 12n }),
    traceState: fc.string(),
    flags: fc.nat(),
    attributes: plainAttributes,
    droppedAttributesCount: fc.nat(),
    events: fc.array(
      fc.record({
        name: fc.string(),
        offset: fc.bigInt({ min: -(10n ** 12n), max: 10n ** 12n }),
        attributes: fc.array(anyValue.keyValue, { maxLength: 3 }),
      }),
      { maxLength: 3 },
    ),
    links: fc.array(
      fc.record({
        traceId: fc.uint8Array({ minLength: 16, maxLength: 16 }),
        spanId: fc.uint8Array({ minLength: 8, maxLength: 8 }),
        traceState: fc.string(),
        flags: fc.nat(),
        attributes: plainAttributes,
      }),
      { maxLength: 2 },
    ),
    status: fc.record({ code: fc.integer({ min: -1, max: 4 }), message: fc.string() }),
  })
  .map(({ start, duration, events, ...fields }) => ({
    ...fields,
    startTimeUnixNano: String(start),
    endTimeUnixNano: String(start + duration),
    events: events.map(({ offset, ...event }) => ({
      ...event,
      timeUnixNano: String(start + offset),
    })),
  }));

const plainRequest = fc.record({
  resourceSpans: fc.array(
    fc.record({
      resource: fc.record({
        attributes: fc
          .tuple(fc.string({ minLength: 1 }), fc.array(anyValue.keyValue, { maxLength: 3 }))
          .map(([service, rest]) => [
            { key: 'service.name', value: { stringValue: service } },
            ...rest.filter((attribute) => (attribute as { key?: unknown }).key !== 'service.name'),
          ]),
      }),
      scopeSpans: fc.array(
        fc.record(
          {
            scope: fc.record({ name: fc.string(), version: fc.string() }),
            spans: fc.array(plainSpan, { maxLength: 4 }),
          },
          { requiredKeys: ['spans'] },
        ),
        { maxLength: 2 },
      ),
    }),
    { minLength: 1, maxLength: 2 },
  ),
});

function encodable(value: unknown): Buffer | undefined {
  try {
    const message = ExportTraceServiceRequest.fromObject(value as object);
    return Buffer.from(ExportTraceServiceRequest.encode(message).finish());
  } catch {
    return undefined;
  }
}

/** An encoded request with up to 8 bytes changed and up to 3 cut from its end. */
const mutatedRequest = fc
  .tuple(
    request,
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
    fc.nat(),
  )
  .map(([value, flips, cut]) => {
    const bytes = encodable(value);
    if (!bytes) return undefined;
    for (const [at, byte] of flips) if (bytes.length > 0) bytes[at % bytes.length] = byte;
    return bytes.subarray(0, bytes.length - (cut % 4));
  });

/**
 * An SDK-like request with 1-4 structural mutations: padded varints, repeated or moved
 * fields, changed wire types, unknown fields, a second value in a KeyValue, a resource
 * without scope spans, or a length that does not match its contents.
 */
const structurallyMutatedRequest = fc
  .tuple(
    plainRequest,
    fc.array(fc.record({ kind: fc.constantFrom(...MUTATIONS), pick: fc.nat(), seed: fc.nat() }), {
      minLength: 1,
      maxLength: 4,
    }),
  )
  .map(([value, mutations]) => {
    const bytes = encodable(value);
    const tree = bytes && parseMessage(bytes, 'request');
    if (!tree) return undefined;
    for (const mutation of mutations) mutate(tree, mutation);
    return encodeMessage(tree);
  });

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each property has its own input tuple
const properties: [string, fc.IProperty<any>][] = [
  [
    'protobuf decoder on random bytes',
    fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) =>
      decodeAndCheck(() => decodeProtobufRequest(bytes)),
    ) as never,
  ],
  [
    'protobuf decoder on mutated valid requests',
    fc.property(mutatedRequest, (bytes) => {
      if (bytes) decodeAndCheck(() => decodeProtobufRequest(bytes));
    }) as never,
  ],
  [
    'fast protobuf decoder against the generic path on random bytes',
    fc.property(fc.uint8Array({ maxLength: 2048 }), compareDecoders) as never,
  ],
  [
    'fast protobuf decoder against the generic path on mutated valid requests',
    fc.property(mutatedRequest, (bytes) => {
      if (bytes) compareDecoders(bytes);
    }) as never,
  ],
  [
    'direct rows against the records on SDK-like requests',
    fc.property(plainRequest, (value) => {
      const bytes = encodable(value);
      if (bytes) compareDecoders(bytes);
    }) as never,
  ],
  [
    'decoders and direct rows on structurally mutated requests',
    fc.property(structurallyMutatedRequest, (bytes) => {
      if (bytes) compareDecoders(bytes);
    }) as never,
  ],
  [
    'JSON decoder on structured requests',
    fc.property(request, (value) =>
      decodeAndCheck(() => decodeJsonRequest(Buffer.from(JSON.stringify(value) ?? ''))),
    ) as never,
  ],
  [
    'JSON decoder on any JSON',
    fc.property(fc.json(), (text) =>
      decodeAndCheck(() => decodeJsonRequest(Buffer.from(text))),
    ) as never,
  ],
  [
    'JSON decoder on random bytes',
    fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) =>
      decodeAndCheck(() => decodeJsonRequest(bytes)),
    ) as never,
  ],
  [
    'flattener on any decoded shape',
    fc.property(fc.anything(), (value) =>
      checkFlattened({ resourceSpans: [value as never] }),
    ) as never,
  ],
  [
    'Zipkin converter on any JSON',
    fc.property(fc.json(), (text) =>
      decodeAndCheck(() => zipkinToOtlp(parseZipkinJson(Buffer.from(text)))),
    ) as never,
  ],
];

let failed = false;
const perProperty = (seconds * 1000) / properties.length;
for (const [name, property] of properties) {
  const started = Date.now();
  let runs = 0;
  const result = fc.check(property, {
    numRuns: Number.MAX_SAFE_INTEGER,
    interruptAfterTimeLimit: perProperty,
    markInterruptAsFailure: false,
  }) as fc.RunDetails<unknown>;
  runs = result.numRuns;
  const ms = Date.now() - started;
  if (result.failed) {
    failed = true;
    console.log(`FAIL ${name} after ${runs} runs: ${fc.defaultReportMessage(result)}`);
  } else {
    console.log(`ok   ${name}: ${runs} runs in ${(ms / 1000).toFixed(1)} s`);
  }
}
process.exit(failed ? 1 : 0);
