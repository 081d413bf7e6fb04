import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { openStorage } from '../lib/storage/clickhouse';
import { compareVersions, MIN_SERVER_VERSION } from '../lib/storage/server-version';
import { makeTempDir } from './helpers/faultline';

// Debian's clickhouse-server package (18.16) is a real server older than the schema
// needs. CI installs it and sets FAULTLINE_REQUIRE_CLICKHOUSE_SERVER, so there a missing
// binary fails the test instead of skipping it.
const SERVER_BINARY = ['/usr/sbin/clickhouse-server', '/usr/bin/clickhouse-server'].find((file) =>
  fs.existsSync(file),
);
const REQUIRED = process.env.FAULTLINE_REQUIRE_CLICKHOUSE_SERVER === '1';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function serverConfig(dir: string, httpPort: number, tcpPort: number): string {
  const users = path.join(dir, 'users.xml');
  fs.writeFileSync(
    users,
    `<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
`,
  );
  const config = path.join(dir, 'config.xml');
  fs.writeFileSync(
    config,
    `<?xml version="1.0"?>
<yandex>
  <logger><level>error</level><console>1</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>${httpPort}</http_port>
  <tcp_port>${tcpPort}</tcp_port>
  <path>${dir}/data/</path>
  <tmp_path>${dir}/tmp/</tmp_path>
  <user_files_path>${dir}/user_files/</user_files_path>
  <format_schema_path>${dir}/format_schemas/</format_schema_path>
  <users_config>${users}</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>5368709</mark_cache_size>
</yandex>
`,
  );
  return config;
}

async function waitForHttp(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const response = await fetch(`${url}/ping`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw new Error(`ClickHouse at ${url} did not start in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('compareVersions', () => {
  it.each([
    ['18.16.1', '22.8', -1],
    ['22.8', '22.8', 0],
    ['22.8.21.38', '22.8', 1],
    ['22.10.1', '22.8', 1],
    ['25.4.1.1', '22.8', 1],
  ])('compares %s with %s', (a, b, sign) => {
    expect(Math.sign(compareVersions(a, b))).toBe(sign);
  });
});

const describeServer = SERVER_BINARY || REQUIRED ? describe : describe.skip;
if (!SERVER_BINARY && !REQUIRED) {
  console.warn(
    'skipping the old-server test: clickhouse-server is not installed (apt-get install clickhouse-server)',
  );
}

describeServer('old ClickHouse server', () => {
  let dir: string;
  let server: ChildProcess;
  let url: string;

  beforeAll(async () => {
    if (!SERVER_BINARY) throw new Error('clickhouse-server is required here but not installed');
    dir = makeTempDir('clickhouse-18');
    const httpPort = await freePort();
    const config = serverConfig(dir, httpPort, await freePort());
    server = spawn(SERVER_BINARY, [`--config-file=${config}`], { stdio: 'ignore' });
    url = `http://127.0.0.1:${httpPort}`;
    await waitForHttp(url, 30_000);
  });

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is rejected with both versions', async () => {
    const opening = openStorage({ dataDir: '', url, database: 'faultline', retentionDays: 7 });
    await expect(opening).rejects.toMatchObject({ code: 'FL_UNSUPPORTED_SERVER' });
    await expect(opening).rejects.toThrow(/server 18\.16\.\d+ at http:\/\/127\.0\.0\.1:\d+/);
    await expect(opening).rejects.toThrow(`older than ${MIN_SERVER_VERSION}`);
  });

  it('creates no schema on it', async () => {
    const response = await fetch(`${url}/?query=${encodeURIComponent('SHOW DATABASES')}`);
    expect(await response.text()).not.toContain('faultline');
  });
});
