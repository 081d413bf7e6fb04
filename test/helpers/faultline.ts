import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startApp, type FaultlineApp } from '../../cli/app';
import { loadConfig, type FaultlineConfig } from '../../lib/config';
import { silentLogger } from '../../lib/logger';
import { openStorage, type Storage } from '../../lib/storage/clickhouse';

/** A Faultline instance on free loopback ports with embedded storage in a temp folder. */
export interface TestFaultline {
  app: FaultlineApp;
  config: FaultlineConfig;
  dataDir: string;
  otlpUrl: string;
  queryUrl: string;
  /** Resolves once every span acknowledged so far is stored and visible to queries. */
  flush(): Promise<void>;
  /** Stops the app and removes its data folder. */
  stop(): Promise<void>;
}

export function makeTempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `faultline-${prefix}-`));
}

/**
 * Opens embedded storage in a temporary folder before the tests of a file, writes its data
 * with `fill`, and closes and removes it after them. Returns a getter of the storage.
 */
export function useFilledStorage(
  prefix: string,
  fill: (storage: Storage) => Promise<void>,
): () => Storage {
  let storage: Storage;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = makeTempDir(prefix);
    storage = await openStorage({ dataDir, url: '', database: 'faultline', retentionDays: 7 });
    await fill(storage);
  }, 60_000);
  afterAll(async () => {
    await storage.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
  return () => storage;
}

export async function startTestFaultline(
  overrides: Record<string, unknown> = {},
): Promise<TestFaultline> {
  const dataDir = makeTempDir('data');
  const config = loadConfig(
    {
      dataDir,
      host: '127.0.0.1',
      otlpHttpPort: 0,
      otlpGrpcPort: 0,
      queryPort: 0,
      batchMaxAgeMs: 20,
      logLevel: 'silent',
      ...overrides,
    },
    {},
  );
  const app = await startApp(config, ['collector', 'analyzer'], silentLogger);
  return {
    app,
    config,
    dataDir,
    otlpUrl: `http://127.0.0.1:${app.collector!.httpPort}`,
    queryUrl: `http://127.0.0.1:${app.analyzer!.port}`,
    flush: () => app.collector!.flush(),
    async stop() {
      await app.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** GETs a query API path and returns the status and the parsed JSON body. */
export async function getJson<T = any>(
  baseUrl: string,
  pathAndQuery: string,
): Promise<{ status: number; body: T }> {
  const response = await fetch(`${baseUrl}${pathAndQuery}`);
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
}
