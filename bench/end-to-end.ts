/**
 * End-to-end ingest: starts `faultline start` as a child process on embedded storage in
 * a temp folder, sends pre-encoded OTLP/HTTP protobuf requests from this process over
 * loopback with a fixed number of requests in flight, then stops the child (SIGTERM
 * stores everything it accepted, however long that takes) and counts the spans stored. Reports the sustained rate
 * (stored spans over the time from the first request to the end of the flush), loss,
 * the child's CPU per 10k spans/s and by thread name, its peak RSS, and the CPU of the
 * generator itself.
 *   npx tsx bench/end-to-end.ts [--seconds 20] [--concurrency 4] [--spans-per-request 500]
 *     [--max-spans 8000000] [--profile-dir DIR]
 * The generator encodes `--max-spans` spans before the load starts and stops early when
 * it has sent them all, which the report shows as `bodiesUsedUp`.
 * With --profile-dir, the child writes a V8 CPU profile (node --cpu-prof) into DIR when it
 * stops, for Chrome DevTools or any .cpuprofile reader.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { openStorage } from '../lib/storage/clickhouse';
import { makeTempDir } from '../test/helpers/faultline';
import { report, round, statCpuSeconds, threadCpuSeconds } from './measure';
import { syntheticTraces, takeSpans } from './synthetic';

const BIN = path.join(__dirname, '..', 'bin', 'faultline.js');

interface Child {
  process: ChildProcess;
  otlpUrl: string;
}

async function startFaultline(dataDir: string, profileDir?: string): Promise<Child> {
  const child = spawn(
    process.execPath,
    [
      ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
      BIN,
      'start',
      '--data-dir',
      dataDir,
      '--otlp-http-port',
      '0',
      '--query-port',
      '0',
    ],
    {
      // The stop stores the whole write-ahead log, so that what was accepted is counted
      // as stored and the time it takes counts against the rate.
      env: { ...process.env, FAULTLINE_LOG_LEVEL: 'info', FAULTLINE_SHUTDOWN_TIMEOUT_MS: '900000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  const otlpUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('faultline did not start in 60 s')), 60_000);
    const onOutput = (chunk: Buffer) => {
      output += chunk.toString();
      const line = output.split('\n').find((text) => text.includes('faultline started'));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line).otlpHttp as string);
      }
    };
    // pino writes to stdout; anything else (warnings, crashes) to stderr.
    child.stdout!.on('data', onOutput);
    child.stderr!.on('data', onOutput);
    child.once('exit', (code) => reject(new Error(`faultline exited with ${code}: ${output}`)));
  }).catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error;
  });
  return { process: child, otlpUrl };
}

/** Reads the count and total seconds of the collector's inserts so far from its metrics. */
async function insertFigures(otlpUrl: string): Promise<{ count: number; seconds: number }> {
  const text = await (await fetch(new URL('/metrics', otlpUrl))).text();
  const value = (name: string) =>
    Number(new RegExp(`^${name}\\{outcome="ok"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return {
    count: value('faultline_insert_duration_seconds_count'),
    seconds: value('faultline_insert_duration_seconds_sum'),
  };
}

/** User plus system CPU seconds of a process. */
function cpuSeconds(pid: number): number {
  return statCpuSeconds(`/proc/${pid}/stat`);
}

/** Returns the cores that each thread name used between two readings, largest first. */
function threadCores(
  before: Map<string, number>,
  after: Map<string, number>,
  seconds: number,
): Record<string, number> {
  const cores: [string, number][] = [];
  for (const [name, cpu] of after) {
    const used = (cpu - (before.get(name) ?? 0)) / seconds;
    if (used >= 0.005) cores.push([name, round(used, 2)]);
  }
  cores.sort((a, b) => b[1] - a[1]);
  return Object.fromEntries(cores);
}

function peakRssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmHWM:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) / 1024 : NaN;
}

function encodeBodies(count: number, spansPerRequest: number): { body: Buffer; spans: number }[] {
  const traces = syntheticTraces({ seed: 21, startMs: Date.now() - 60_000, traceIntervalMs: 1 });
  const bodies: { body: Buffer; spans: number }[] = [];
  for (let index = 0; index < count; index += 1) {
    const spans = takeSpans(traces, spansPerRequest);
    bodies.push({
      body: Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!),
      spans: spans.length,
    });
  }
  return bodies;
}

/** Posts an OTLP/HTTP protobuf body; resolves with the status and Retry-After header. */
function post(
  agent: http.Agent,
  url: string,
  body: Buffer,
): Promise<{ status: number; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/x-protobuf', 'content-length': body.length },
      },
      (response) => {
        response.resume();
        response.on('end', () => {
          const retryAfter = response.headers['retry-after'];
          resolve({ status: response.statusCode ?? 0, retryAfter });
        });
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

async function sendAll(
  url: string,
  bodies: { body: Buffer; spans: number }[],
  seconds: number,
  concurrency: number,
) {
  // node:http with kept-alive sockets, as the OpenTelemetry JS exporter sends. fetch()
  // used about six times the generator's CPU, which the collector then lacked.
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  let next = 0;
  let acceptedSpans = 0;
  let failedRequests = 0;
  let refusedRequests = 0;
  const deadline = performance.now() + seconds * 1000;
  // A refused export is sent again after its Retry-After, as the OpenTelemetry exporters
  // do, so refusals slow the sender down instead of using up the bodies.
  const worker = async () => {
    let pending: { body: Buffer; spans: number } | undefined;
    while (performance.now() < deadline) {
      if (!pending && next >= bodies.length) break;
      const { body, spans } = (pending ??= bodies[next++]);
      const response = await post(agent, url, body);
      if (response.status >= 200 && response.status < 300) {
        acceptedSpans += spans;
        pending = undefined;
      } else if (response.status === 429 || response.status === 503) {
        refusedRequests += 1;
        const waitSeconds = Number(response.retryAfter ?? 1);
        await new Promise((resolve) => setTimeout(resolve, Math.min(waitSeconds, 10) * 1000));
      } else {
        failedRequests += 1;
        pending = undefined;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent.destroy();
  return {
    acceptedSpans,
    failedRequests,
    refusedRequests,
    requests: next,
    bodiesUsedUp: next >= bodies.length,
  };
}

async function countStored(dataDir: string): Promise<number> {
  const storage = await openStorage({ dataDir, url: '', database: 'faultline', retentionDays: 7 });
  try {
    const result = await storage.client.query({
      query:
        'SELECT count() AS spans FROM (SELECT DISTINCT trace_id, span_id, kind FROM faultline.spans)',
      format: 'JSONEachRow',
    });
    const [row] = await result.json<{ spans: string }>();
    return Number(row.spans);
  } finally {
    await storage.close();
  }
}

export async function runEndToEndBenchmark(
  seconds: number,
  concurrency: number,
  spansPerRequest: number,
  maxSpans: number,
  profileDir?: string,
) {
  const dataDir = makeTempDir('bench-e2e');
  const bodies = encodeBodies(Math.ceil(maxSpans / spansPerRequest), spansPerRequest);
  const child = await startFaultline(dataDir, profileDir);
  const pid = child.process.pid!;
  try {
    const cpuStart = cpuSeconds(pid);
    const threadsStart = threadCpuSeconds(pid);
    const generatorStart = process.cpuUsage();
    const start = performance.now();
    const sent = await sendAll(child.otlpUrl, bodies, seconds, concurrency);
    const loadSeconds = (performance.now() - start) / 1000;
    const cpuLoad = cpuSeconds(pid) - cpuStart;
    const threads = threadCores(threadsStart, threadCpuSeconds(pid), loadSeconds);
    const generator = process.cpuUsage(generatorStart);
    const inserts = await insertFigures(child.otlpUrl);
    const generatorCpu = (generator.user + generator.system) / 1e6;
    const rssMiB = peakRssMiB(pid);
    const exited = new Promise((resolve) => child.process.once('exit', resolve));
    child.process.kill('SIGTERM');
    await exited;
    const totalSeconds = (performance.now() - start) / 1000;
    const stored = await countStored(dataDir);
    const rate = stored / totalSeconds;
    report('endToEnd', {
      seconds: round(loadSeconds),
      bodiesUsedUp: sent.bodiesUsedUp,
      flushSeconds: round(totalSeconds - loadSeconds),
      concurrency,
      spansPerRequest,
      acceptedSpans: sent.acceptedSpans,
      refusedRequests: sent.refusedRequests,
      failedRequests: sent.failedRequests,
      storedSpans: stored,
      lostSpans: sent.acceptedSpans - stored,
      sustainedSpansPerSecond: Math.round(rate),
      collectorCoresDuringLoad: round(cpuLoad / loadSeconds, 2),
      // By thread name. `main` runs JavaScript, and `node` names libuv's and V8's helper
      // threads. In chDB, MergeMutate threads merge parts and the pipeline threads insert.
      collectorThreadCores: threads,
      coresPer10kSpansPerSecond: round(
        cpuLoad / loadSeconds / (sent.acceptedSpans / loadSeconds / 10_000),
        2,
      ),
      peakRssMiB: round(rssMiB),
      // Share of the load time that the writer spent in inserts: near 1, storage limits the rate.
      insertBusyDuringLoad: round(inserts.seconds / loadSeconds, 2),
      inserts: inserts.count,
      // The load generator shares the machine's cores with the collector.
      generatorCoresDuringLoad: round(generatorCpu / loadSeconds, 2),
    });
  } finally {
    if (child.process.exitCode === null) child.process.kill('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '20' },
      concurrency: { type: 'string', default: '4' },
      'spans-per-request': { type: 'string', default: '500' },
      'max-spans': { type: 'string', default: '8000000' },
      'profile-dir': { type: 'string' },
    },
  });
  runEndToEndBenchmark(
    Number(values.seconds),
    Number(values.concurrency),
    Number(values['spans-per-request']),
    Number(values['max-spans']),
    values['profile-dir'],
  ).catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
