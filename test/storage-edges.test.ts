import fs from 'node:fs';
import { edgeCallsQuery, edgeRangeParams, readDependencies } from '../analyzer/dependencies';
import { countTraceSpans, readTraceSummary } from '../analyzer/trace-summary';
import type { SpanRecord } from '../lib/model/span';
import { flattenExportRequest } from '../lib/otlp/flatten';
import type { OtlpExportRequest } from '../lib/otlp/request';
import { BacklogReporter } from '../collector/backlog-reporter';
import { silentLogger } from '../lib/logger';
import { readBacklog, reportBacklog } from '../lib/storage/collector-backlog';
import { openStorage, type Storage } from '../lib/storage/clickhouse';
import { readTraceSpans, readTraces } from '../lib/storage/span-reader';
import { writeSpans } from '../lib/storage/span-writer';
import { makeTempDir } from './helpers/faultline';
import { makeSpan } from './helpers/spans';

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** A trace id of 32 hex digits from a number, distinct from other test files' ids. */
const traceHex = (n: number) => `beef${n.toString(16).padStart(28, '0')}`;

async function rows<T>(storage: Storage, query: string, params = {}): Promise<T[]> {
  const result = await storage.client.query({ query, query_params: params, format: 'JSONEachRow' });
  return result.json<T>();
}

/** Flattens one OTLP/JSON span with the given start and end as sent. */
function flattenOne(traceId: string, start: string, end: string): SpanRecord {
  const request = {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'clock' } }] },
        scopeSpans: [
          {
            spans: [
              {
                traceId,
                spanId: '00000000000000a1',
                name: 'tick',
                kind: 2,
                startTimeUnixNano: start,
                endTimeUnixNano: end,
              },
            ],
          },
        ],
      },
    ],
  } as unknown as OtlpExportRequest;
  const result = flattenExportRequest(request);
  expect(result.rejectedSpans).toBe(0);
  return result.spans[0];
}

let storage: Storage;
let dataDir: string;

beforeAll(async () => {
  dataDir = makeTempDir('storage-edges');
  storage = await openStorage({ dataDir, url: '', database: 'faultline', retentionDays: 7 });
});

afterAll(async () => {
  await storage.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('trace lookup bounds', () => {
  it('reads a trace across midnight from two inserts', async () => {
    const traceId = traceHex(1);
    const midnight = Math.floor(Date.now() / DAY_MS) * DAY_MS;
    const root = makeSpan(1, '', midnight - 2_000, midnight + 3_000, { traceId });
    const child = makeSpan(2, 1, midnight + 1_000, midnight + 2_000, { traceId });
    await writeSpans(storage, [root]);
    await writeSpans(storage, [child]);

    expect((await readTraceSpans(storage, traceId)).map((span) => span.spanId)).toEqual([
      root.spanId,
      child.spanId,
    ]);
    expect(await countTraceSpans(storage, traceId)).toBe(2);
    expect((await readTraceSummary(storage, traceId, 10)).spanCount).toBe(2);
    expect((await readTraces(storage, [traceId])).get(traceId)).toHaveLength(2);
  });

  it('reads hundreds of traces hours apart at once', async () => {
    const baseMs = Date.now() - 5 * HOUR_MS;
    const ids = Array.from({ length: 300 }, (_, index) => traceHex(1000 + index));
    const spans = ids.map((traceId, index) => {
      const startMs = baseMs + index * 53_000;
      return makeSpan(1, '', startMs, startMs + 5, { traceId });
    });
    await writeSpans(storage, spans.slice(0, 150));
    await writeSpans(storage, spans.slice(150));

    const traces = await readTraces(storage, ids);
    expect(traces.size).toBe(300);
    expect([...traces.values()].every((trace) => trace.length === 1)).toBe(true);
  });

  it('keeps spans that start after 2106', async () => {
    // Inside DateTime64(9), but past the DateTime that the partition and TTL convert to.
    for (const [index, start] of ['5000000000000000000', '9223372036854000000'].entries()) {
      const traceId = traceHex(2 + index * 100);
      const span = flattenOne(traceId, start, (BigInt(start) + 5n).toString());
      expect(span.ingestWarnings).toContain('start_time_out_of_range');
      await writeSpans(storage, [span]);
      expect(await readTraceSpans(storage, traceId)).toHaveLength(1);

      await storage.client.command({ query: 'OPTIMIZE TABLE faultline.spans FINAL' });
      const [stored] = await readTraceSpans(storage, traceId);
      expect(stored?.attributes.map((attribute) => attribute.key)).toContain(
        'faultline.original_start_time_unix_nano',
      );
    }
  });
});

describe('ingest of scattered start times', () => {
  it('inserts one batch spread over 120 hours', async () => {
    const baseMs = Date.now() - 5 * DAY_MS;
    const spans = Array.from({ length: 120 }, (_, index) =>
      makeSpan(index + 1, '', baseMs + index * HOUR_MS, baseMs + index * HOUR_MS + 5, {
        traceId: traceHex(3),
        kind: 'CLIENT',
      }),
    );
    await expect(writeSpans(storage, spans)).resolves.toBeUndefined();
    expect(await readTraceSpans(storage, traceHex(3))).toHaveLength(120);
  });
});

describe('dependency edges', () => {
  /** Edges of `range` joined straight from spans, as readDependencies must return them. */
  async function rawEdges(range: { startMs: number; endMs: number }) {
    const edges = await rows<{ caller: string; callee: string; calls: string }>(
      storage,
      `SELECT caller, callee, count() AS calls
       FROM (${edgeCallsQuery('faultline', 'spans')}) WHERE caller = 'orders'
       GROUP BY caller, callee ORDER BY caller, callee`,
      edgeRangeParams(range),
    );
    return edges.map((edge) => [edge.caller, edge.callee, Number(edge.calls)]);
  }

  it('match the raw join for a consumer 80 s after its block', async () => {
    // A closed block two hours ago: the producer starts 10 s before the block ends and its
    // consumer 80 s after the block ends, as a queue with a backlog delivers it.
    const blockEndMs = Math.floor((Date.now() - 2 * HOUR_MS) / 600_000) * 600_000;
    const traceId = traceHex(4);
    const producer = makeSpan(1, '', blockEndMs - 10_000, blockEndMs - 9_990, {
      traceId,
      kind: 'PRODUCER',
      serviceName: 'orders',
      remoteService: 'kafka',
    });
    const consumer = makeSpan(2, 1, blockEndMs + 80_000, blockEndMs + 80_050, {
      traceId,
      kind: 'CONSUMER',
      serviceName: 'billing',
    });
    await writeSpans(storage, [producer]);
    await writeSpans(storage, [consumer]);

    const range = { startMs: blockEndMs - 30 * MINUTE_MS, endMs: blockEndMs + 30 * MINUTE_MS };
    const expected = await rawEdges(range);
    expect(expected).toEqual([['orders', 'billing', 1]]);
    const edges = (await readDependencies(storage, range)).filter(
      (edge) => edge.caller === 'orders',
    );
    expect(edges.map((edge) => [edge.caller, edge.callee, edge.calls])).toEqual(expected);
  });
  it('stay open while spans wait', async () => {
    const blockStartMs = Math.floor((Date.now() - 3 * HOUR_MS) / 600_000) * 600_000;
    const traceId = traceHex(5);
    const client = makeSpan(1, '', blockStartMs + 60_000, blockStartMs + 60_020, {
      traceId,
      kind: 'CLIENT',
      serviceName: 'orders',
    });
    const server = makeSpan(2, 1, blockStartMs + 60_005, blockStartMs + 60_015, {
      traceId,
      kind: 'SERVER',
      serviceName: 'stock',
    });
    await writeSpans(storage, [client, server]);
    const range = { startMs: blockStartMs, endMs: blockStartMs + 10 * MINUTE_MS - 1 };
    const resolved = async () =>
      (
        await rows<{ minutes: string }>(
          storage,
          `SELECT count() AS minutes FROM faultline.dependency_resolved_minutes
           WHERE minute >= toDateTime({start:UInt32}) AND minute < toDateTime({end:UInt32})`,
          { start: blockStartMs / 1000, end: blockStartMs / 1000 + 600 },
        )
      ).map((row) => Number(row.minutes))[0];
    const stockCalls = async () =>
      (await readDependencies(storage, range))
        .filter((edge) => edge.caller === 'orders' && edge.callee === 'stock')
        .map((edge) => edge.calls);

    // A span appended during the block still waits in the log: the block is read live.
    storage.unstoredSince = () => blockStartMs + 5 * MINUTE_MS;
    try {
      expect(await stockCalls()).toEqual([1]);
      expect(await resolved()).toBe(0);
    } finally {
      storage.unstoredSince = undefined;
    }

    expect(await stockCalls()).toEqual([1]);
    expect(await resolved()).toBe(10);
  });

  it('stay open while a collector elsewhere reports waiting spans', async () => {
    const blockStartMs = Math.floor((Date.now() - 4 * HOUR_MS) / 600_000) * 600_000;
    const traceId = traceHex(6);
    await writeSpans(storage, [
      makeSpan(1, '', blockStartMs + 60_000, blockStartMs + 60_020, {
        traceId,
        kind: 'CLIENT',
        serviceName: 'cart',
      }),
      makeSpan(2, 1, blockStartMs + 60_005, blockStartMs + 60_015, {
        traceId,
        kind: 'SERVER',
        serviceName: 'pricing',
      }),
    ]);
    const range = { startMs: blockStartMs, endMs: blockStartMs + 10 * MINUTE_MS - 1 };
    const resolved = async () => {
      const [row] = await rows<{ minutes: string }>(
        storage,
        `SELECT count() AS minutes FROM faultline.dependency_resolved_minutes
         WHERE minute >= toDateTime({start:UInt32}) AND minute < toDateTime({end:UInt32})`,
        { start: blockStartMs / 1000, end: blockStartMs / 1000 + 600 },
      );
      return Number(row.minutes);
    };

    storage.unstoredSince = () => readBacklog(storage);
    try {
      await reportBacklog(storage, 'other-host:1', blockStartMs + 5 * MINUTE_MS);
      await reportBacklog(storage, 'other-host:2', undefined);
      expect(await readBacklog(storage)).toBe(blockStartMs + 5 * MINUTE_MS);
      await readDependencies(storage, range);
      expect(await resolved()).toBe(0);

      // The latest report of each collector counts: this one has stored its spans.
      await reportBacklog(storage, 'other-host:1', undefined);
      expect(await readBacklog(storage)).toBeUndefined();
      await readDependencies(storage, range);
      expect(await resolved()).toBe(10);
    } finally {
      storage.unstoredSince = undefined;
    }
  });

  it('follow the reports of a running collector', async () => {
    let oldest: number | undefined = Date.now() - HOUR_MS;
    const reporter = new BacklogReporter(storage, () => oldest, silentLogger, 20);
    try {
      const until = Date.now() + 5_000;
      while ((await readBacklog(storage)) !== oldest && Date.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(await readBacklog(storage)).toBe(oldest);
    } finally {
      oldest = undefined;
      await reporter.stop();
    }
    // The last report, sent at the stop, reports no waiting span.
    expect(await readBacklog(storage)).toBeUndefined();
  });

  it('ignore a collector silent for ten minutes', async () => {
    const nowMs = Date.now();
    await reportBacklog(storage, 'gone-host:1', nowMs - HOUR_MS, nowMs - 11 * MINUTE_MS);
    expect(await readBacklog(storage, nowMs)).toBeUndefined();
    expect(await readBacklog(storage, nowMs - 5 * MINUTE_MS)).toBe(nowMs - HOUR_MS);
  });
});
