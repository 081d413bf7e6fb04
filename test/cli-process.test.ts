import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { buildProgram } from '../cli/main';
import { loadConfig } from '../lib/config';
import { openStorage } from '../lib/storage/clickhouse';
import { makeTempDir } from './helpers/faultline';

const BIN = path.join(__dirname, '..', 'bin', 'faultline.js');

interface RunningCli {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Spawns a process whose stdout and stderr are gathered into one text. */
function spawnWithOutput(command: string, args: string[]): RunningCli {
  const child = spawn(command, args, {
    cwd: path.join(__dirname, '..'),
    env: { ...process.env, FAULTLINE_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

function runCli(args: string[]): RunningCli {
  return spawnWithOutput(process.execPath, [BIN, ...args]);
}

/** Arguments of `start` on its own data folder, with every port chosen by the system. */
function startArgs(dataDir: string): string[] {
  return [
    'start',
    '--data-dir',
    dataDir,
    '--otlp-http-port',
    '0',
    '--otlp-grpc-port',
    '0',
    '--query-port',
    '0',
  ];
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for condition');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('faultline start process', () => {
  const dataDir = makeTempDir('cli');
  let first: RunningCli;

  beforeAll(async () => {
    first = runCli(startArgs(dataDir));
    await waitFor(() => first.output().includes('faultline started'), 30_000);
  });

  afterAll(async () => {
    if (first.child.exitCode === null) first.child.kill('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('logs where it listens and where data lives', () => {
    const line = first
      .output()
      .split('\n')
      .find((text) => text.includes('faultline started'))!;
    const record = JSON.parse(line);
    expect(record.otlpHttp).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\/traces$/);
    expect(record.queryApi).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api$/);
    expect(record.data).toBe(dataDir);
  });

  it('keeps a second process out of its data folder', async () => {
    const second = runCli(startArgs(dataDir));
    expect(await second.exited).toBe(1);
    expect(second.output()).toContain(
      `FL_DATA_DIR_LOCKED: data folder ${dataDir} is in use by process ${first.child.pid}`,
    );
  });

  it('rejects opening the folder in another process through the library', async () => {
    await expect(
      openStorage({ dataDir, url: '', database: 'faultline', retentionDays: 7 }),
    ).rejects.toThrow(/is in use by process/);
  });

  it('rejects a taken port before storage', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as net.AddressInfo).port;
    const portDataDir = makeTempDir('cli-port');
    try {
      const run = runCli([
        'start',
        '--data-dir',
        portDataDir,
        '--otlp-http-port',
        String(port),
        '--otlp-grpc-port',
        '0',
        '--query-port',
        '0',
      ]);
      expect(await run.exited).toBe(1);
      expect(run.output()).toContain(`FL_PORT_IN_USE: port ${port} on 127.0.0.1 is already in use`);
      expect(run.output()).toContain('FAULTLINE_OTLP_HTTP_PORT');
      expect(fs.existsSync(path.join(portDataDir, 'clickhouse'))).toBe(false);
    } finally {
      await new Promise((resolve) => holder.close(resolve));
      fs.rmSync(portDataDir, { recursive: true, force: true });
    }
  });

  it('rejects an unknown host', async () => {
    const hostDataDir = makeTempDir('cli-host');
    const run = runCli(['start', '--data-dir', hostDataDir, '--host', 'bad host']);
    expect(await run.exited).toBe(1);
    fs.rmSync(hostDataDir, { recursive: true, force: true });
    expect(run.output()).toContain('FL_INVALID_CONFIG: cannot listen on host "bad host"');
    expect(run.output()).toContain('FAULTLINE_HOST');
  });

  it('shuts down cleanly on SIGTERM and frees the folder', async () => {
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(first.output()).toContain('storage closed');
    expect(fs.existsSync(path.join(dataDir, 'faultline.lock'))).toBe(false);
  });
});

describe('npm start', () => {
  it('stops on SIGTERM to npm', async () => {
    const dataDir = makeTempDir('npm-start');
    const [, ...options] = startArgs(dataDir);
    const npm = spawnWithOutput('npm', ['start', '--', ...options]);
    await waitFor(() => npm.output().includes('faultline started'), 30_000);

    npm.child.kill('SIGTERM');
    await npm.exited;
    // The server is npm's child, so it must get the signal too and release its folder.
    const lock = path.join(dataDir, 'faultline.lock');
    try {
      await waitFor(() => !fs.existsSync(lock), 15_000);
    } finally {
      // A server left running would keep the test's output pipes open.
      if (fs.existsSync(lock)) process.kill(Number(fs.readFileSync(lock, 'utf8')), 'SIGKILL');
    }

    expect(npm.output()).toContain('storage closed');
    fs.rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);
});

describe('closed stderr', () => {
  it('exits on SIGINT after its log pipe closed', async () => {
    const dataDir = makeTempDir('cli-pipe');
    const run = runCli(startArgs(dataDir));
    await waitFor(() => run.output().includes('faultline started'), 30_000);

    // As when Ctrl-C on `faultline start | tee log` stops tee: the log's reader is gone.
    run.child.stdout!.destroy();
    run.child.stderr!.destroy();
    run.child.kill('SIGINT');
    const lock = path.join(dataDir, 'faultline.lock');
    try {
      await waitFor(() => run.child.exitCode !== null, 30_000);
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
    }

    expect(run.child.exitCode).toBe(0);
    expect(fs.existsSync(lock)).toBe(false);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);
});

describe('faultline configuration errors', () => {
  it('lists every invalid setting in one message', async () => {
    const run = runCli(['start', '--otlp-http-port', 'abc', '--database', 'bad-name']);
    expect(await run.exited).toBe(1);
    expect(run.output()).toContain('FL_INVALID_CONFIG');
    expect(run.output()).toContain('--otlp-http-port="abc"');
    expect(run.output()).toContain('--database="bad-name"');
  });
});

describe('setting messages', () => {
  const cases: [string, string, string][] = [
    ['FAULTLINE_WAL', 'maybe', 'expected on or off'],
    ['FAULTLINE_CLICKHOUSE_URL', 'notaurl', 'expected an http or https URL'],
    ['FAULTLINE_LOG_LEVEL', 'loud', 'expected fatal, error, warn, info, debug, trace or silent'],
    ['FAULTLINE_ANALYSIS_INTERVAL_MS', '-5', 'expected a whole number, 0 or more'],
    ['FAULTLINE_WEBHOOK_URLS', 'ftp://x', 'expected http or https URLs'],
  ];
  it.each(cases)('name what %s expects', (name, value, expected) => {
    expect(() => loadConfig({}, { [name]: value })).toThrow(
      `${name}=${JSON.stringify(value)}: ${expected}`,
    );
  });
});

describe('faultline help', () => {
  it('lists only the storage settings for report', () => {
    const report = buildProgram().commands.find((command) => command.name() === 'report')!;
    const help = report.helpInformation();
    expect(help).toContain('--data-dir');
    expect(help).toContain('--user-attribute');
    expect(help).not.toContain('--otlp-http-port');
    expect(help).not.toContain('--webhook-urls');
  });
});

describe('stale data folder lock', () => {
  it('is taken over when its process is gone', async () => {
    const dataDir = makeTempDir('stale');
    fs.writeFileSync(path.join(dataDir, 'faultline.lock'), '999999999\n');
    const storage = await openStorage({
      dataDir,
      url: '',
      database: 'faultline',
      retentionDays: 7,
    });
    expect(fs.readFileSync(path.join(dataDir, 'faultline.lock'), 'utf8').trim()).toBe(
      String(process.pid),
    );
    await storage.close();
    expect(fs.existsSync(path.join(dataDir, 'faultline.lock'))).toBe(false);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
});
