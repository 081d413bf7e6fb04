/**
 * Runs every benchmark in turn and prints one JSON line a figure:
 *   npm run bench                  full sizes: 1M and 10M spans stored, 60 s of load
 *   npm run bench -- --size small  reduced sizes that finish in a few minutes
 * Each benchmark is bounded in time and talks only to loopback or the embedded engine.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { runDecodeBenchmark } from './decode';
import { runEndToEndBenchmark } from './end-to-end';
import { report } from './measure';
import { runStorageBenchmark } from './storage';

const SIZES = {
  small: {
    decodeSeconds: 6,
    storedSpans: [100_000],
    lookups: 100,
    loadSeconds: 10,
    loadSpans: 300_000,
  },
  full: {
    decodeSeconds: 30,
    storedSpans: [1_000_000, 10_000_000],
    lookups: 500,
    loadSeconds: 60,
    loadSpans: 10_000_000,
  },
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: 'full' },
      concurrency: { type: 'string', default: '32' },
    },
  });
  const size = SIZES[values.size as keyof typeof SIZES];
  if (!size)
    throw new Error(`invalid --size ${JSON.stringify(values.size)}: expected small or full`);
  report('machine', {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    loadAverage: os.loadavg().map((value) => Math.round(value * 100) / 100),
    size: values.size,
  });
  runDecodeBenchmark(size.decodeSeconds, 500);
  await runEndToEndBenchmark(size.loadSeconds, Number(values.concurrency), 500, size.loadSpans);
  for (const spans of size.storedSpans) await runStorageBenchmark(spans, size.lookups, '');
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
