import fs from 'node:fs';
import path from 'node:path';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { syntheticTraces, takeSpans } from '../bench/synthetic';
import { decodeSpansFast } from '../lib/otlp/fast-decode';
import { DEFAULT_FLATTEN_LIMITS } from '../lib/otlp/flatten';
import { silentLogger } from '../lib/logger';
import type { SpanRecord } from '../lib/model/span';
import { readNativeRows, writeNativeBlock } from '../lib/storage/native';
import {
  hexToDecimal,
  joinSpanRows,
  spanRowsJson,
  splitSpanRows,
  toJsonSpanRows,
  toSpanRows,
  type SpanRows,
} from '../lib/storage/span-rows';
import { readTraceSpans } from '../lib/storage/span-reader';
import { encodeRecord, scanRecords } from '../lib/wal/record';
import { WalShipper, type ShipperOptions } from '../lib/wal/shipper';
import { encodeEntry, listSegments, readSegment, segmentFile } from '../lib/wal/segments';
import { WriteAheadLog } from '../lib/wal/wal';
import { WalSink } from '../collector/sinks';
import { FAIL_INSERTS_FILE } from '../collector/storage-writer';
import { getJson, makeTempDir, startTestFaultline } from './helpers/faultline';
import { makeSpan, spanId } from './helpers/spans';

/** Rows of a single column, so the log can be checked without whole spans. */
const walDirs: string[] = [];

/** Creates a temporary log folder that is removed after the tests of this file. */
function makeWalDir(): string {
  const dir = makeTempDir('wal');
  walDirs.push(dir);
  return dir;
}

afterAll(() => {
  for (const dir of walDirs) fs.rmSync(dir, { recursive: true, force: true });
});

function fakeRows(...ids: number[]): SpanRows {
  const text = ids.map((id) => `[${id}]\n`).join('');
  return {
    format: 'JSONCompactEachRow',
    columns: ['span_id'],
    chunks: [Buffer.from(text)],
    count: ids.length,
  };
}

/**
 * Native rows of the spans whose kind column is text, with the kind of one span outside
 * the column's Enum8, so that ClickHouse rejects that row when it converts the block.
 */
function nativeRowsWithBogusKind(spans: SpanRecord[], bogus: number): SpanRows {
  const { columns, types, rows } = readNativeRows(toSpanRows(spans).chunks[0]);
  const kind = columns.indexOf('kind');
  types[kind] = 'String';
  rows[bogus][kind] = 'BOGUS';
  return {
    ...toSpanRows([]),
    chunks: [writeNativeBlock(columns, types, rows)],
    count: rows.length,
  };
}

/** JSONCompactEachRow rows of the spans, as earlier versions logged, with one bogus kind. */
function jsonRowsWithBogusKind(spans: SpanRecord[], bogus: number): SpanRows {
  const lines = splitSpanRows(toJsonSpanRows(spans));
  const rejected = Buffer.from(lines[bogus].chunks[0].toString().replace('"INTERNAL"', '"BOGUS"'));
  lines[bogus] = { ...lines[bogus], chunks: [rejected] };
  return joinSpanRows(lines);
}

/** Builds a shipper with short waits that finds storage reachable and rejecting rows, unless `options` override them. */
function testShipper(
  wal: WriteAheadLog,
  options: Pick<ShipperOptions, 'write'> & Partial<ShipperOptions>,
): WalShipper {
  return new WalShipper({
    wal,
    isStorageReachable: async () => true,
    rejectsRows: () => true,
    batchMaxSpans: 100,
    batchMaxAgeMs: 5,
    retryMaxMs: 5,
    logger: silentLogger,
    ...options,
  });
}

/** First value of every line of some rows. */
function rowIds(rows: SpanRows): number[] {
  return spanRowsJson(rows).map((line) => (JSON.parse(line) as number[])[0]);
}

async function openWal(
  dir: string,
  maxBytes = 1 << 30,
  segmentBytes = 1 << 20,
  keptEntryBytes?: number,
) {
  return WriteAheadLog.open({
    dir,
    maxBytes,
    segmentBytes,
    logger: silentLogger,
    retryAfterMs: 100,
    keptEntryBytes,
  });
}

/** Span ids in every segment of a folder, in append order. */
async function storedSpanIds(dir: string): Promise<number[]> {
  const segments = await Promise.all(listSegments(dir).map(({ file }) => readSegment(file)));
  return segments.flat().flatMap((entry) => rowIds(entry.rows));
}

describe('write-ahead log', () => {
  it('replays every appended record after a reopen', async () => {
    const dir = makeWalDir();
    const { wal } = await openWal(dir);
    await Promise.all([1, 2, 3].map((index) => wal.append(fakeRows(index))));
    await wal.close();
    const { wal: reopened, replay } = await openWal(dir);
    expect(replay).toEqual({ segments: 1, spans: 3, quarantinedBytes: 0 });
    expect(reopened.spans).toBe(3);
    await reopened.close();
  });

  it('writes concurrent appends with shared syncs', async () => {
    const dir = makeWalDir();
    const { wal } = await openWal(dir);
    await Promise.all(Array.from({ length: 200 }, (_, index) => wal.append(fakeRows(index))));
    expect(wal.syncs).toBeLessThan(20);
    expect(wal.spans).toBe(200);
    await wal.close();
  });

  it('quarantines a truncated tail and keeps the valid prefix', async () => {
    const dir = makeWalDir();
    const { wal } = await openWal(dir);
    await wal.append(fakeRows(1));
    await wal.append(fakeRows(2));
    await wal.close();
    const [segment] = listSegments(dir);
    const size = fs.statSync(segment.file).size;
    fs.truncateSync(segment.file, size - 7);
    const { wal: reopened, replay } = await openWal(dir);
    expect(replay.spans).toBe(1);
    expect(replay.quarantinedBytes).toBeGreaterThan(0);
    expect(fs.readdirSync(path.join(dir, 'quarantine'))).toHaveLength(1);
    await reopened.close();
  });

  it('detects a flipped byte by its checksum', async () => {
    const dir = makeWalDir();
    const { wal } = await openWal(dir);
    await wal.append(fakeRows(1));
    await wal.append(fakeRows(2));
    await wal.close();
    const [segment] = listSegments(dir);
    const bytes = fs.readFileSync(segment.file);
    bytes[bytes.length - 3] ^= 0xff;
    fs.writeFileSync(segment.file, bytes);
    const { wal: reopened, replay } = await openWal(dir);
    expect(replay.spans).toBe(1);
    await reopened.close();
  });

  it('recovers after a write failure', async () => {
    const dir = makeWalDir();
    const { wal } = await openWal(dir);
    await wal.append(fakeRows(1));
    // Writes to a descriptor number that no file has fail like writes to a failing disk.
    const internals = wal as unknown as { fd: number };
    const descriptor = internals.fd;
    internals.fd = 1_000_000;
    fs.closeSync(descriptor);
    await expect(wal.append(fakeRows(2))).rejects.toMatchObject({ code: 'FL_WAL_UNAVAILABLE' });
    await expect(wal.append(fakeRows(3))).rejects.toMatchObject({ code: 'FL_WAL_UNAVAILABLE' });
    expect(wal.error?.code).toBe('FL_WAL_UNAVAILABLE');

    await new Promise((resolve) => setTimeout(resolve, 150));
    await wal.append(fakeRows(4));
    expect(wal.error).toBeUndefined();
    expect(wal.spans).toBe(2);
    await wal.close();
    expect(await storedSpanIds(dir)).toEqual([1, 4]);
  });

  it('rejects appends when rotation fails', async () => {
    const dir = makeWalDir();
    const { wal } = await openWal(dir, 1 << 30, 10);
    await wal.append(fakeRows(1));
    // A folder where the third segment goes makes its open fail, like a lack of descriptors.
    fs.mkdirSync(segmentFile(dir, 3));
    await wal.append(fakeRows(2));
    await expect(wal.append(fakeRows(3))).rejects.toMatchObject({ code: 'FL_WAL_UNAVAILABLE' });
    expect(wal.error?.message).toMatch(/EISDIR/);

    fs.rmdirSync(segmentFile(dir, 3));
    await new Promise((resolve) => setTimeout(resolve, 150));
    await wal.append(fakeRows(4));
    expect(wal.error).toBeUndefined();
    await wal.close();
    expect(await storedSpanIds(dir)).toEqual([1, 2, 4]);
  });

  it('rejects appends without a folder', async () => {
    const dir = makeWalDir();
    const { wal } = await openWal(dir, 1 << 30, 10);
    await wal.append(fakeRows(1));
    // The second segment is open, but its name cannot reach the disk without the folder.
    fs.rmSync(dir, { recursive: true });
    await expect(wal.append(fakeRows(2))).rejects.toMatchObject({ code: 'FL_WAL_UNAVAILABLE' });
    expect(wal.error?.message).toMatch(/ENOENT/);

    await new Promise((resolve) => setTimeout(resolve, 150));
    await wal.append(fakeRows(3));
    expect(wal.error).toBeUndefined();
    await wal.close();
    expect(await storedSpanIds(dir)).toEqual([3]);
  });

  it('replays old span-record entries as rows', async () => {
    const dir = makeWalDir();
    const spans = [makeSpan(1, '', 1000, 1005), makeSpan(2, 1, 1001, 1004)];
    const legacy = encodeRecord([Buffer.from(JSON.stringify({ t: 1234, s: spans }))]);
    fs.writeFileSync(segmentFile(dir, 7), Buffer.concat(legacy));
    const { wal, replay } = await openWal(dir);
    expect(replay).toEqual({ segments: 1, spans: 2, quarantinedBytes: 0 });
    const [entry] = await readSegment(segmentFile(dir, 7));
    expect(entry.appendedMs).toBe(1234);
    expect(Buffer.concat(entry.rows.chunks)).toEqual(Buffer.concat(toSpanRows(spans).chunks));
    expect(entry.rows.columns).toEqual(toSpanRows(spans).columns);
    await wal.append(fakeRows(3));
    await wal.close();
    expect((await storedSpanIds(dir)).slice(-1)).toEqual([3]);
  });

  it('replays old span records the encoder rejects', async () => {
    const dir = makeWalDir();
    const outOfRange = makeSpan(2, 1, 1001, 1004, {
      attributes: [{ key: 'count', value: { intValue: '99999999999999999999' } }],
    });
    const records = [
      { t: 1, s: [makeSpan(1, '', 1000, 1005)] },
      { t: 2, s: [outOfRange] },
      { t: 3, s: [makeSpan(3, 1, 1001, 1004)] },
    ].map((record) => encodeRecord([Buffer.from(JSON.stringify(record))]));
    fs.writeFileSync(segmentFile(dir, 7), Buffer.concat(records.flat()));
    // Then one record of the current form.
    fs.appendFileSync(
      segmentFile(dir, 7),
      Buffer.concat(
        encodeRecord(
          encodeEntry({
            appendedMs: 4,
            rows: toSpanRows([makeSpan(4, 1, 1001, 1004)]),
          }),
        ),
      ),
    );

    const { wal, replay } = await openWal(dir);
    expect(replay).toEqual({ segments: 1, spans: 4, quarantinedBytes: 0 });

    const entries = await readSegment(segmentFile(dir, 7));
    expect(entries.map((entry) => entry.appendedMs)).toEqual([1, 2, 3, 4]);
    expect(entries.map((entry) => entry.rows.format)).toEqual([
      'Native',
      'JSONCompactEachRow',
      'Native',
      'Native',
    ]);
    expect(spanRowsJson(entries[1].rows)).toEqual(spanRowsJson(toJsonSpanRows([outOfRange])));
    await wal.close();
  });

  it('seals the active segment while appends continue', async () => {
    const dir = makeWalDir();
    const { wal } = await openWal(dir);
    await wal.append(fakeRows(0));
    let sealed = false;
    let appended = 0;
    // Four writers keep appends pending, so the sync loop never pauses on its own.
    const writers = Array.from({ length: 4 }, async () => {
      while (!sealed && appended < 5000) {
        appended += 1;
        await wal.append(fakeRows(appended));
      }
    });
    const segment = await wal.nextSegment();
    sealed = true;
    const appendedWhenSealed = appended;
    await Promise.all(writers);
    expect(segment).toBeDefined();
    expect(appendedWhenSealed).toBeLessThan(5000);
    expect(wal.spans).toBe(appended + 1);
    await wal.close();
    expect((await storedSpanIds(dir)).sort((a, b) => a - b)).toEqual(
      Array.from({ length: appended + 1 }, (_, index) => index),
    );
  });

  it('refuses appends past its disk budget', async () => {
    const dir = makeWalDir();
    const { wal } = await openWal(dir, 300);
    await wal.append(fakeRows(1));
    await expect(
      wal.append(fakeRows(...Array.from({ length: 100 }, (_, index) => index))),
    ).rejects.toMatchObject({
      code: 'FL_WAL_FULL',
    });
    await wal.close();
  });
});

describe('write-ahead log shipper', () => {
  it('retries a failing insert and deletes segments only after success', async () => {
    const dir = makeWalDir();
    const { wal } = await openWal(dir);
    const stored: number[] = [];
    let failuresLeft = 2;
    const shipper = testShipper(wal, {
      write: async (rows) => {
        if (failuresLeft-- > 0) throw new Error('storage down');
        stored.push(...rowIds(rows));
      },
      isStorageReachable: async () => false,
      retryMaxMs: 20,
    });
    await wal.append(fakeRows(1, 2));
    shipper.start();
    while (wal.spans > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(stored).toEqual([1, 2]);
    // The stop waits for the deletion of the stored segment.
    await shipper.stop(0);
    expect(listSegments(dir).every((segment) => fs.statSync(segment.file).size === 0)).toBe(true);
    await wal.close();
  });

  /** Deletes the files that `pick` returns, then ships the log and returns the stored ids. */
  async function shipAfterDeleting(
    wal: WriteAheadLog,
    dir: string,
    pick: (files: string[]) => string[],
  ): Promise<number[]> {
    const stored: number[] = [];
    const shipper = testShipper(wal, {
      write: async (rows) => {
        stored.push(...rowIds(rows));
      },
    });
    for (const file of pick(listSegments(dir).map((segment) => segment.file))) fs.rmSync(file);
    shipper.start();
    while (wal.spans > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    await shipper.stop(0);
    await wal.close();
    return stored;
  }

  it('skips a deleted recovered segment', async () => {
    const dir = makeWalDir();
    const before = await openWal(dir, 1 << 30, 10);
    await before.wal.append(fakeRows(1));
    await before.wal.append(fakeRows(2));
    await before.wal.close();
    const { wal } = await openWal(dir, 1 << 30, 10);
    expect(await shipAfterDeleting(wal, dir, (files) => files.slice(0, 1))).toEqual([2]);
  });

  it('reads segments past the memory budget from disk', async () => {
    const dir = makeWalDir();
    const { wal } = await openWal(dir, 1 << 30, 10, 1);
    await wal.append(fakeRows(1));
    await wal.append(fakeRows(2));
    expect(await shipAfterDeleting(wal, dir, (files) => files.slice(0, 1))).toEqual([2]);
  });

  it('ships appended segments from memory', async () => {
    const dir = makeWalDir();
    const { wal } = await openWal(dir, 1 << 30, 10);
    await wal.append(fakeRows(1));
    await wal.append(fakeRows(2));
    expect(await shipAfterDeleting(wal, dir, (files) => files)).toEqual([1, 2]);
  });

  it('keeps undecodable records aside', async () => {
    const dir = makeWalDir();
    const entry = (id: number) => encodeRecord(encodeEntry({ appendedMs: id, rows: fakeRows(id) }));
    const bad = Buffer.from('not a log entry');
    const records = [...entry(1), ...encodeRecord([bad]), ...entry(3)];
    fs.writeFileSync(segmentFile(dir, 1), Buffer.concat(records));
    const { wal } = await openWal(dir);
    const stored: number[] = [];
    const shipper = testShipper(wal, {
      write: async (rows) => {
        stored.push(...rowIds(rows));
      },
    });
    shipper.start();
    while (wal.spans > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    await shipper.stop(0);
    await wal.close();
    expect(stored).toEqual([1, 3]);
    const quarantined = path.join(dir, 'quarantine', 'segment-0000000000000001.wal.undecodable');
    expect(scanRecords(fs.readFileSync(quarantined)).payloads).toEqual([bad]);
  });

  it('splits inserts by column list', async () => {
    const dir = makeWalDir();
    const { wal } = await openWal(dir);
    const inserts: { columns: readonly string[]; ids: number[] }[] = [];
    const shipper = testShipper(wal, {
      write: async (rows) => {
        inserts.push({ columns: rows.columns, ids: rowIds(rows) });
      },
    });
    const older = (id: number): SpanRows => ({ ...fakeRows(id), columns: ['span_id', 'name'] });
    await wal.append(fakeRows(1));
    await wal.append(fakeRows(2));
    await wal.append(older(3));
    await wal.append(fakeRows(4));
    shipper.start();
    while (wal.spans > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(inserts).toEqual([
      { columns: ['span_id'], ids: [1, 2] },
      { columns: ['span_id', 'name'], ids: [3] },
      { columns: ['span_id'], ids: [4] },
    ]);
    await shipper.stop(0);
    await wal.close();
  });

  it('quarantines a span storage refuses while storing the rest', async () => {
    const dir = makeWalDir();
    const { wal } = await openWal(dir);
    const stored: number[] = [];
    const shipper = testShipper(wal, {
      write: async (rows) => {
        if (rowIds(rows).includes(3)) throw new Error('bad row');
        stored.push(...rowIds(rows));
      },
    });
    await wal.append(fakeRows(1, 2, 3, 4, 5));
    shipper.start();
    while (wal.spans > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(stored.sort()).toEqual([1, 2, 4, 5]);
    const refused = fs.readdirSync(path.join(dir, 'quarantine'));
    expect(refused).toHaveLength(1);
    const text = fs.readFileSync(path.join(dir, 'quarantine', refused[0]), 'utf8');
    expect(
      text
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line)),
    ).toEqual([{ reason: 'bad row', columns: ['span_id'], row: [3] }]);
    await shipper.stop(0);
    await wal.close();
  });
});

describe('write-ahead log shipper with a failing server', () => {
  it('retries a batch whole, unsplit', async () => {
    const dir = makeWalDir();
    const { wal } = await openWal(dir);
    const batches: number[][] = [];
    let failuresLeft = 12;
    const shipper = testShipper(wal, {
      write: async (rows) => {
        batches.push(rowIds(rows));
        if (failuresLeft-- > 0) throw new Error('too many parts');
      },
      rejectsRows: () => false,
    });
    await wal.append(fakeRows(1, 2, 3, 4, 5));
    shipper.start();
    while (wal.spans > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    await shipper.stop(0);
    await wal.close();
    expect(batches).toHaveLength(13);
    expect(batches.every((ids) => ids.length === 5)).toBe(true);
    expect(fs.existsSync(path.join(dir, 'quarantine'))).toBe(false);
  });
});

describe('write-ahead log sink', () => {
  it('rejects past the queue limit', async () => {
    const dir = makeWalDir();
    const { wal } = await openWal(dir);
    const shipper = { failing: false } as WalShipper;
    const sink = new WalSink(wal, shipper, 1 << 30, 3);
    await wal.append(fakeRows(1, 2));
    expect(sink.admissionError()).toBeUndefined();

    await wal.append(fakeRows(3));
    const refusal = sink.admissionError();
    expect(refusal?.code).toBe('FL_OVERLOADED');
    expect(refusal?.retryAfterSeconds).toBe(1);
    expect(refusal?.message).toContain('FAULTLINE_WAL_MAX_QUEUED_SPANS=3');
    expect(sink.notReadyReason()).toBe(refusal?.message);

    // While inserts fail, the log takes spans up to its disk budget instead.
    (shipper as { failing: boolean }).failing = true;
    expect(sink.admissionError()).toBeUndefined();
    await wal.close();
  });
});

describe('write-ahead log sink with protobuf exports', () => {
  const traces = syntheticTraces({ seed: 8, startMs: Date.now() - 60_000, traceIntervalMs: 3 });
  const bodies = [40, 60, 30, 50].map((count) =>
    Buffer.from(ProtobufTraceSerializer.serializeRequest(takeSpans(traces, count))!),
  );
  const options = { limits: DEFAULT_FLATTEN_LIMITS, oldestNs: 0n };
  const noCheck = () => undefined;

  it('logs the exports that arrive together as one entry', async () => {
    const dir = makeWalDir();
    const { wal } = await openWal(dir);
    const sink = new WalSink(wal, { failing: false } as WalShipper, 1 << 30, 1 << 30);
    const first = bodies.slice(0, 3).map((body) => sink.acceptProtobuf(body, options, noCheck)!);
    await Promise.all(first.map((accepted) => accepted.logged));
    const last = sink.acceptProtobuf(bodies[3], options, noCheck)!;
    await last.logged;
    await wal.close();

    const entries = (
      await Promise.all(listSegments(dir).map(({ file }) => readSegment(file)))
    ).flat();
    expect(entries.map((entry) => entry.rows.count)).toEqual([
      first.reduce((sum, accepted) => sum + accepted.spans, 0),
      last.spans,
    ]);
    const records = bodies.flatMap((body) => decodeSpansFast(body).spans);
    expect(entries.flatMap((entry) => readNativeRows(entry.rows.chunks[0]).rows)).toEqual(
      readNativeRows(toSpanRows(records).chunks[0]).rows,
    );
  });

  it('refuses every export of a group that the log has no room for', async () => {
    const dir = makeWalDir();
    const { wal } = await openWal(dir, 1000);
    const sink = new WalSink(wal, { failing: false } as WalShipper, 1000, 1 << 30);
    const group = bodies.slice(0, 2).map((body) => sink.acceptProtobuf(body, options, noCheck)!);
    for (const accepted of group) {
      await expect(accepted.logged).rejects.toMatchObject({
        code: 'FL_OVERLOADED',
        message: expect.stringContaining('FAULTLINE_WAL_MAX_BYTES=1000'),
      });
    }
    expect(wal.spans).toBe(0);
    await wal.close();
  });
});

describe('collector with the write-ahead log', () => {
  const start = BigInt(Date.now()) * 1_000_000n;
  const body = (traceId: string, count: number) =>
    JSON.stringify({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'wal-suite' } }] },
          scopeSpans: [
            {
              spans: Array.from({ length: count }, (_, index) => ({
                traceId,
                spanId: (index + 1).toString(16).padStart(16, '0'),
                name: 'op',
                startTimeUnixNano: String(start),
                endTimeUnixNano: String(start + 1000n),
              })),
            },
          ],
        },
      ],
    });

  const postSpans = (otlpUrl: string, traceId: string, count: number) =>
    fetch(`${otlpUrl}/v1/traces`, {
      method: 'POST',
      body: body(traceId, count),
      headers: { 'content-type': 'application/json' },
    });

  it('stores line breaks, NUL and U+2028 unchanged', async () => {
    const faultline = await startTestFaultline();
    try {
      const texts = [
        'a\nb\r\nc',
        'x\u2028y\u2029z',
        'n\u0000ul',
        '\\"q"\t',
        'big\n'.repeat(50_000),
      ];
      const traceId = 'd3'.repeat(16);
      const spans = texts.map((text, index) => ({
        traceId,
        spanId: spanId(index + 1),
        name: text,
        startTimeUnixNano: String(start),
        endTimeUnixNano: String(start + 1000n),
        status: { code: 2, message: text },
        events: [{ name: text, timeUnixNano: String(start) }],
      }));
      const response = await fetch(`${faultline.otlpUrl}/v1/traces`, {
        method: 'POST',
        body: JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans }] }] }),
        headers: { 'content-type': 'application/json' },
      });
      expect(response.status).toBe(200);
      await faultline.flush();
      const stored = await readTraceSpans(faultline.app.storage, traceId);
      const byId = new Map(stored.map((span) => [span.spanId, span]));
      texts.forEach((text, index) => {
        const span = byId.get(spanId(index + 1));
        expect(span?.name).toBe(text);
        expect(span?.statusMessage).toBe(text);
        expect(span?.events[0]?.name).toBe(text);
      });
    } finally {
      await faultline.stop();
    }
  });

  it('keeps spans while ClickHouse has too many parts', async () => {
    const faultline = await startTestFaultline({ insertRetryMaxMs: 20 });
    try {
      expect((await postSpans(faultline.otlpUrl, 'd1'.repeat(16), 5)).status).toBe(200);
      await faultline.flush();
      const { client, database } = faultline.app.storage;
      // With one part in the partition, each insert into spans fails with TOO_MANY_PARTS
      // while ClickHouse responds to pings.
      await client.command({
        query: `ALTER TABLE ${database}.spans MODIFY SETTING parts_to_throw_insert = 1`,
      });
      expect((await postSpans(faultline.otlpUrl, 'd2'.repeat(16), 20)).status).toBe(200);
      let retries = 0;
      for (let attempt = 0; attempt < 200 && retries < 20; attempt += 1) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        const text = await (await fetch(`${faultline.otlpUrl}/metrics`)).text();
        retries = Number(/faultline_insert_retries_total (\d+)/.exec(text)?.[1] ?? 0);
      }
      expect(retries).toBeGreaterThanOrEqual(20);

      await client.command({
        query: `ALTER TABLE ${database}.spans RESET SETTING parts_to_throw_insert`,
      });
      await faultline.flush();
      const { body: view } = await getJson(faultline.queryUrl, `/api/traces/${'d2'.repeat(16)}`);
      expect(view.spanCount).toBe(20);
      expect(fs.existsSync(path.join(faultline.dataDir, 'wal', 'quarantine'))).toBe(false);
    } finally {
      await faultline.stop();
    }
  });

  it.each([
    ['Native', nativeRowsWithBogusKind],
    ['JSONCompactEachRow', jsonRowsWithBogusKind],
  ])('quarantines a rejected %s row and stores the rest', async (_format, withBogusKind) => {
    const walDir = makeWalDir();
    const traceId = 'e1'.repeat(16);
    const now = Date.now();
    const spans = [1, 2, 3, 4].map((id) => makeSpan(id, '', now, now + 1, { traceId }));
    const rows = withBogusKind(spans, 1);
    const record = encodeRecord(encodeEntry({ appendedMs: now, rows }));
    fs.writeFileSync(segmentFile(walDir, 1), Buffer.concat(record));

    const faultline = await startTestFaultline({ walDir, insertRetryMaxMs: 20 });
    try {
      await faultline.flush();
      const { body: view } = await getJson(faultline.queryUrl, `/api/traces/${traceId}`);
      expect(view.spanCount).toBe(3);
      const quarantine = path.join(walDir, 'quarantine');
      const files = fs.readdirSync(quarantine);
      expect(files).toHaveLength(1);
      const entries = fs
        .readFileSync(path.join(quarantine, files[0]), 'utf8')
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line));
      expect(entries).toHaveLength(1);
      expect(entries[0].reason).toMatch(/UNKNOWN_ELEMENT_OF_ENUM|BOGUS/);
      expect(entries[0].row[entries[0].columns.indexOf('span_id')]).toBe(hexToDecimal(spanId(2)));
    } finally {
      await faultline.stop();
      fs.rmSync(walDir, { recursive: true, force: true });
    }
  });

  it('stores every record of a mixed segment', async () => {
    const walDir = makeWalDir();
    const traceId = 'e2'.repeat(16);
    const now = Date.now();
    const span = (id: number, attributes: SpanRecord['attributes'] = []) =>
      makeSpan(id, id === 1 ? '' : 1, now, now + 1, { traceId, attributes });
    const int = (value: string) => [{ key: 'count', value: { intValue: value } }];
    const legacy = (spans: SpanRecord[]) =>
      encodeRecord([Buffer.from(JSON.stringify({ t: now, s: spans }))]);
    const entry = (rows: SpanRows) => encodeRecord(encodeEntry({ appendedMs: now, rows }));
    const records = [
      entry(toJsonSpanRows([span(1), span(2)])),
      legacy([span(3)]),
      entry(toSpanRows([span(4), span(5)])),
      legacy([span(6, int('99999999999999999999'))]),
      legacy([span(7, int('not a number'))]),
      entry(toSpanRows([span(8)])),
      entry(toJsonSpanRows([span(9)])),
    ];
    fs.writeFileSync(segmentFile(walDir, 1), Buffer.concat(records.flat()));

    const faultline = await startTestFaultline({ walDir, insertRetryMaxMs: 20 });
    try {
      await faultline.flush();
      const stored = await readTraceSpans(faultline.app.storage, traceId);
      expect(stored.map((read) => read.spanId).sort()).toEqual(
        [1, 2, 3, 4, 5, 6, 8, 9].map(spanId),
      );
      const quarantine = path.join(walDir, 'quarantine');
      const lines = fs
        .readdirSync(quarantine)
        .flatMap((file) =>
          fs.readFileSync(path.join(quarantine, file), 'utf8').trimEnd().split('\n'),
        )
        .map((line) => JSON.parse(line));
      expect(lines).toHaveLength(1);
      expect(lines[0].row[lines[0].columns.indexOf('span_id')]).toBe(hexToDecimal(spanId(7)));
    } finally {
      await faultline.stop();
      fs.rmSync(walDir, { recursive: true, force: true });
    }
  });

  it('acknowledges while storage fails, stores after it recovers, then 503 past the budget', async () => {
    const faultline = await startTestFaultline({
      faultHooks: true,
      walMaxBytes: 40_000,
      insertRetryMaxMs: 50,
    });
    try {
      const hook = path.join(faultline.dataDir, FAIL_INSERTS_FILE);
      fs.writeFileSync(hook, '');
      const post = (traceId: string, count: number) =>
        fetch(`${faultline.otlpUrl}/v1/traces`, {
          method: 'POST',
          body: body(traceId, count),
          headers: { 'content-type': 'application/json' },
        });
      const accepted = await post('c1'.repeat(16), 20);
      expect(accepted.status).toBe(200);

      // 503 (not 429) needs the writer to have seen storage fail at least once.
      for (let attempt = 0; attempt < 100; attempt += 1) {
        const text = await (await fetch(`${faultline.otlpUrl}/metrics`)).text();
        if (/faultline_insert_retries_total [1-9]/.test(text)) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      let refused: Response | undefined;
      for (let attempt = 0; attempt < 50 && !refused; attempt += 1) {
        const reply = await post('c2'.repeat(16), 20);
        if (reply.status !== 200) refused = reply;
      }
      expect(refused?.status).toBe(503);
      expect(refused?.headers.get('retry-after')).toBe('10');
      expect((await fetch(`${faultline.otlpUrl}/readyz`)).status).toBe(503);

      const metrics = await (await fetch(`${faultline.otlpUrl}/metrics`)).text();
      expect(metrics).toMatch(/faultline_insert_retries_total [1-9]/);
      expect(metrics).toMatch(
        /faultline_requests_rejected_total\{protocol="otlp_http",reason="wal_full"\} [1-9]/,
      );
      expect(metrics).toMatch(/faultline_wal_oldest_unwritten_age_seconds 0\.\d*[1-9]/);

      fs.rmSync(hook);
      await faultline.app.collector!.flush(20_000);
      const { body: view } = await getJson(faultline.queryUrl, `/api/traces/${'c1'.repeat(16)}`);
      expect(view.spanCount).toBe(20);
      let ready = 503;
      for (let attempt = 0; attempt < 100 && ready !== 200; attempt += 1) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        ready = (await fetch(`${faultline.otlpUrl}/readyz`)).status;
      }
      expect(ready).toBe(200);
      const after = await (await fetch(`${faultline.otlpUrl}/metrics`)).text();
      expect(after).toMatch(/faultline_wal_bytes 0/);
    } finally {
      await faultline.stop();
    }
  });
});
