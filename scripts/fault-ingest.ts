/**
 * Fault suite of durable ingest, with real processes and real signals. Bounded in time
 * and loopback only: `npm run fault:ingest -- --seconds 60`.
 *
 * It runs `faultline start` as a child process on a fresh data folder, with real OTLP
 * exporters sending numbered spans. Meanwhile it kills the collector with SIGKILL at
 * random moments and restarts it, makes inserts fail for a while (fault hook), and
 * appends a torn record to the write-ahead log while the process is down. Then it loads
 * the collector past capacity with healthy storage, and finally pushes past the log's
 * budget with storage failing. At the end every span that got a 2xx must be queryable
 * exactly once. It prints one JSON summary line and exits 1 on any loss.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { context, trace } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { listSegments } from '../lib/wal/segments';

const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 60;
const SPANS_PER_EXPORT = 20;
const SENDERS = 4;
const root = path.resolve(__dirname, '..');

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class CollectorProcess {
  child?: ChildProcess;
  peakRssKb = 0;
  private sampler?: NodeJS.Timeout;

  constructor(private readonly args: string[]) {}

  async start(): Promise<void> {
    const child = spawn(
      process.execPath,
      [path.join(root, 'bin/faultline.js'), 'start', ...this.args],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.child = child;
    let output = '';
    // Only the start-up lines are kept; later logs are dropped to keep this process small.
    const keep = (chunk: Buffer) => {
      if (output.length < 100_000) output += chunk;
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const deadline = Date.now() + 60_000;
    while (!output.includes('faultline started')) {
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(`start failed:\n${output}`);
      await sleep(50);
    }
    this.sampler = setInterval(() => this.sampleRss(), 200);
  }

  private sampleRss(): void {
    if (!this.child?.pid || this.child.exitCode !== null) return;
    try {
      const rss = Number(
        execFileSync('ps', ['-o', 'rss=', '-p', String(this.child.pid)]).toString(),
      );
      this.peakRssKb = Math.max(this.peakRssKb, rss);
    } catch {
      // The process ended between the check and ps.
    }
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    clearInterval(this.sampler);
    const child = this.child!;
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  }
}

interface Tally {
  sent: number;
  acked: Map<string, number>;
  refused: Record<string, number>;
}

/** Sends numbered spans through a real OTLP/HTTP protobuf exporter, one export at a time. */
async function sender(
  url: string,
  index: number,
  until: () => boolean,
  tally: Tally,
  spansPerExport = SPANS_PER_EXPORT,
): Promise<void> {
  const exporter = new OTLPTraceExporter({ url, timeoutMillis: 5000 });
  const recorder = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': `fault-sender-${index}` }),
    spanProcessors: [new SimpleSpanProcessor(recorder)],
  });
  const tracer = provider.getTracer('fault-suite');
  let sequence = 0;
  while (!until()) {
    recorder.reset();
    // The spans of one export form one trace, so the final check reads one trace an export.
    const parent = tracer.startSpan('batch');
    const parentContext = trace.setSpan(context.active(), parent);
    for (let n = 1; n < spansPerExport; n += 1) {
      tracer
        .startSpan(`span ${sequence++}`, { attributes: { seq: sequence } }, parentContext)
        .end();
    }
    parent.end();
    const spans: ReadableSpan[] = recorder.getFinishedSpans();
    tally.sent += spans.length;
    const code = await new Promise<number>((resolve) =>
      exporter.export(spans, (result) => resolve(result.code)),
    );
    if (code === ExportResultCode.SUCCESS) {
      for (const span of spans) {
        const { traceId, spanId } = span.spanContext();
        tally.acked.set(`${traceId}/${spanId}`, 0);
      }
    } else {
      tally.refused[index] = (tally.refused[index] ?? 0) + spans.length;
    }
  }
  await exporter.shutdown();
}

/** Appends half a record to the newest segment, as a write torn by power loss leaves it. */
function tearWalTail(walDir: string): boolean {
  const segments = listSegments(walDir);
  const last = segments[segments.length - 1];
  if (!last) return false;
  const header = Buffer.alloc(12);
  header.writeUInt32BE(0x464c5731, 0);
  header.writeUInt32BE(4096, 4);
  fs.appendFileSync(last.file, Buffer.concat([header, Buffer.from('{"t":1,"s":[{"traceId":')]));
  return true;
}

const TRACES_PER_LOOKUP = 100;

/** Counts how often each acknowledged span appears in query results, 100 traces a request. */
async function countStored(queryUrl: string, acked: Map<string, number>): Promise<void> {
  const traces = [...new Set([...acked.keys()].map((key) => key.split('/')[0]))];
  for (let index = 0; index < traces.length; index += TRACES_PER_LOOKUP) {
    const url = new URL('/jaeger/api/traces', queryUrl);
    for (const traceId of traces.slice(index, index + TRACES_PER_LOOKUP)) {
      url.searchParams.append('traceID', traceId);
    }
    const response = await fetch(url);
    if (response.status !== 200) throw new Error(`trace lookup failed: HTTP ${response.status}`);
    const body = (await response.json()) as {
      data: { traceID: string; spans: { spanID: string }[] }[];
    };
    for (const found of body.data) {
      for (const span of found.spans) {
        const key = `${found.traceID}/${span.spanID}`;
        if (acked.has(key)) acked.set(key, acked.get(key)! + 1);
      }
    }
  }
}

async function waitDrained(httpUrl: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const metrics = await (await fetch(`${httpUrl}/metrics`)).text();
    if (/^faultline_queue_spans 0$/m.test(metrics)) return;
    await sleep(200);
  }
  throw new Error('write-ahead log did not drain');
}

async function main(): Promise<void> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'faultline-fault-'));
  const httpPort = await freePort();
  const queryPort = await freePort();
  const args = [
    '--data-dir',
    dataDir,
    '--otlp-http-port',
    String(httpPort),
    '--otlp-grpc-port',
    '0',
    '--query-port',
    String(queryPort),
    '--fault-hooks',
    'on',
    '--insert-retry-max-ms',
    '500',
    '--wal-max-bytes',
    String(64 * 1024 * 1024),
    // Below the default, so that the load phase reaches it on two cores.
    '--wal-max-queued-spans',
    '100000',
    '--log-level',
    'info',
  ];
  const httpUrl = `http://127.0.0.1:${httpPort}`;
  const collector = new CollectorProcess(args);
  await collector.start();

  const tally: Tally = { sent: 0, acked: new Map(), refused: {} };
  const events: string[] = [];
  const chaosEnd = Date.now() + seconds * 1000 * 0.7;
  const senders = Array.from({ length: SENDERS }, (_, index) =>
    sender(`${httpUrl}/v1/traces`, index, () => Date.now() > chaosEnd, tally),
  );

  let kills = 0;
  let peakRssKb = 0;
  const hook = path.join(dataDir, 'fail-inserts');
  while (Date.now() < chaosEnd - 2000) {
    await sleep(1000 + Math.random() * 2000);
    const action = kills % 3;
    if (action === 1) {
      fs.writeFileSync(hook, '');
      events.push('storage failing 3 s');
      await sleep(3000);
      fs.rmSync(hook);
    }
    await collector.kill('SIGKILL');
    kills += 1;
    peakRssKb = Math.max(peakRssKb, collector.peakRssKb);
    if (action === 2 && tearWalTail(path.join(dataDir, 'wal'))) events.push('torn wal tail');
    events.push('kill -9');
    await sleep(300);
    await collector.start();
  }
  await Promise.all(senders);

  // Load past capacity with healthy storage: large exports from many senders outrun the
  // inserts until the log reaches its budget, so the collector responds 429 instead of growing.
  const load = { sent: 0, acked: new Map<string, number>(), refused: {} as Record<string, number> };
  const loadEnd = Date.now() + seconds * 1000 * 0.2;
  await Promise.all(
    Array.from({ length: SENDERS * 4 }, (_, index) =>
      sender(`${httpUrl}/v1/traces`, 200 + index, () => Date.now() > loadEnd, load, 1000),
    ),
  );
  const metricsAfterLoad = await (await fetch(`${httpUrl}/metrics`)).text();
  peakRssKb = Math.max(peakRssKb, collector.peakRssKb);
  for (const [key] of load.acked) tally.acked.set(key, 0);
  tally.sent += load.sent;

  // Overload: storage failing and a flood of exports until the log refuses them.
  fs.writeFileSync(hook, '');
  const flood = {
    sent: 0,
    acked: new Map<string, number>(),
    refused: {} as Record<string, number>,
  };
  const floodEnd = Date.now() + seconds * 1000 * 0.15;
  await Promise.all(
    Array.from({ length: SENDERS * 4 }, (_, index) =>
      sender(`${httpUrl}/v1/traces`, 100 + index, () => Date.now() > floodEnd, flood, 1000),
    ),
  );
  const metricsDuringOutage = await (await fetch(`${httpUrl}/metrics`)).text();
  fs.rmSync(hook);
  for (const [key] of flood.acked) tally.acked.set(key, 0);
  tally.sent += flood.sent;

  await waitDrained(httpUrl, 120_000);
  await countStored(`http://127.0.0.1:${queryPort}`, tally.acked);
  peakRssKb = Math.max(peakRssKb, collector.peakRssKb);
  await collector.kill('SIGTERM');

  const counts = [...tally.acked.values()];
  const summary = {
    seconds,
    kills,
    events: events.filter((event) => event !== 'kill -9'),
    spansSent: tally.sent,
    spansAcknowledged: counts.length,
    acknowledgedStored: counts.filter((count) => count >= 1).length,
    acknowledgedMissing: counts.filter((count) => count === 0).length,
    duplicatesInQueries: counts.filter((count) => count > 1).length,
    loadSpansSent: load.sent,
    loadSpansAcknowledged: load.acked.size,
    loadRefused429: /reason="overloaded"\} (\d+)/.exec(metricsAfterLoad)?.[1] ?? '0',
    refusedDuringOverload: Object.values(flood.refused).reduce((sum, value) => sum + value, 0),
    walFullRefusals: /reason="wal_full"\} (\d+)/.exec(metricsDuringOutage)?.[1] ?? '0',
    quarantineFiles: fs.existsSync(path.join(dataDir, 'wal', 'quarantine'))
      ? fs.readdirSync(path.join(dataDir, 'wal', 'quarantine')).length
      : 0,
    peakRssMiB: Math.round(peakRssKb / 1024),
  };
  console.log(JSON.stringify(summary));
  fs.rmSync(dataDir, { recursive: true, force: true });
  process.exit(summary.acknowledgedMissing === 0 && summary.duplicatesInQueries === 0 ? 0 : 1);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
