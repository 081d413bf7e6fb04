import fs from 'node:fs';
import path from 'node:path';
import { createAnalyzerApp } from '../analyzer/analyzer';
import { loadConfig } from '../lib/config';
import { FaultlineError } from '../lib/errors';
import { listen, type ListeningServer } from '../lib/http-server';
import { silentLogger } from '../lib/logger';
import { makeTempDir, startTestFaultline, type TestFaultline } from './helpers/faultline';
import { sendCheckoutTrace } from './helpers/trace-fixture';

const TOKEN = 'query-token-0123456789abcdef';
const ORIGIN = 'https://grafana.example.com';

let faultline: TestFaultline;

beforeAll(async () => {
  faultline = await startTestFaultline({
    queryTokens: `${TOKEN}, second-token-0123456789`,
    corsOrigins: ORIGIN,
    queryMaxRangeHours: 2,
    queryMaxResults: 50,
  });
  await sendCheckoutTrace(faultline.otlpUrl, Date.now() - 60_000);
  await faultline.flush();
});

afterAll(async () => {
  await faultline.stop();
});

function get(pathAndQuery: string, headers: Record<string, string> = {}) {
  return fetch(`${faultline.queryUrl}${pathAndQuery}`, { headers });
}

const withToken = { Authorization: `Bearer ${TOKEN}` };

async function json(response: Response): Promise<any> {
  return response.json();
}

describe('query tokens', () => {
  it('rejects a request without a token', async () => {
    const response = await get('/api/services');
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="faultline"');
    const body = await json(response);
    expect(body.error.code).toBe('FL_UNAUTHORIZED');
    expect(body.error.message).toContain('missing query token');
  });

  it('rejects a wrong token', async () => {
    const response = await get('/api/services', { Authorization: 'Bearer not-the-token' });
    expect(response.status).toBe(401);
    expect((await json(response)).error.message).toContain('invalid query token');
  });

  it('accepts each configured token', async () => {
    for (const token of [TOKEN, 'second-token-0123456789']) {
      const response = await get('/api/services', { Authorization: `Bearer ${token}` });
      expect([token, response.status]).toEqual([token, 200]);
      expect(await json(response)).toEqual({ data: ['frontend', 'payment'] });
    }
  });

  it('guards Jaeger and Zipkin in their own error shapes', async () => {
    const jaeger = await get('/jaeger/api/services');
    expect(jaeger.status).toBe(401);
    expect((await json(jaeger)).errors[0]).toEqual({
      code: 401,
      msg: expect.stringContaining('FL_UNAUTHORIZED'),
    });
    const v3 = await get('/jaeger/api/v3/services');
    expect(v3.status).toBe(401);
    expect((await json(v3)).error.httpCode).toBe(401);
    const zipkin = await get('/zipkin/api/v2/services');
    expect(zipkin.status).toBe(401);
    expect(await zipkin.text()).toContain('FL_UNAUTHORIZED');
    const allowed = await get('/jaeger/api/services', withToken);
    expect(allowed.status).toBe(200);
  });

  it('leaves health and the UI shell open', async () => {
    expect((await get('/healthz')).status).toBe(200);
    const shell = await get('/search');
    expect([200, 503]).toContain(shell.status);
  });
});

describe('CORS', () => {
  it('answers a preflight from an allowed origin', async () => {
    const response = await fetch(`${faultline.queryUrl}/jaeger/api/services`, {
      method: 'OPTIONS',
      headers: {
        Origin: ORIGIN,
        'Access-Control-Request-Method': 'GET',
        'Access-Control-Request-Headers': 'authorization',
      },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(response.headers.get('access-control-allow-headers')).toBe('authorization');
    expect(response.headers.get('access-control-allow-methods')).toBe('GET, HEAD, OPTIONS');
    expect(response.headers.get('vary')).toContain('Origin');
  });

  it('adds the origin to allowed requests only', async () => {
    const allowed = await get('/api/services', { ...withToken, Origin: ORIGIN });
    expect(allowed.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    const other = await get('/api/services', { ...withToken, Origin: 'https://evil.example' });
    expect(other.status).toBe(200);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('query limits', () => {
  it.each([
    ['/api/traces?limit=51', 'limit 51 is over the limit of 50 traces'],
    [`/api/dependencies?start=${Date.now() - 3 * 3_600_000}`, 'over the limit of 2h'],
    ['/api/report?start=0', 'over the limit of 2h'],
    ['/jaeger/api/traces?service=frontend&lookback=3h', 'over the limit of 2h'],
    ['/jaeger/api/traces?service=frontend&limit=100', 'limit 100 is over the limit of 50'],
    ['/zipkin/api/v2/traces?lookback=86400000', 'over the limit of 2h'],
  ])('rejects %s', async (pathAndQuery, message) => {
    const response = await get(pathAndQuery, withToken);
    expect(response.status).toBe(400);
    const text = await response.text();
    expect(text).toContain('FL_QUERY_LIMIT');
    expect(text).toContain(message);
  });
});

describe('bound parameters', () => {
  it('treats quotes in values as data', async () => {
    const hostile = "frontend' OR 1=1 --";
    const search = await get(`/api/traces?service=${encodeURIComponent(hostile)}`, withToken);
    expect(search.status).toBe(200);
    expect((await json(search)).data).toEqual([]);
    const tags = encodeURIComponent(JSON.stringify({ "x') OR ('1'='1": "y' OR '1'='1" }));
    const jaeger = await get(`/jaeger/api/traces?service=frontend&tags=${tags}`, withToken);
    expect(jaeger.status).toBe(200);
    expect((await json(jaeger)).data).toEqual([]);
  });
});

describe('access settings', () => {
  it('reject short tokens without printing them', () => {
    let error: unknown;
    try {
      loadConfig({ queryTokens: 'short-secret', corsOrigins: 'grafana.local/path' }, {});
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(FaultlineError);
    const message = (error as Error).message;
    expect(message).toContain(
      '--query-tokens=<redacted>: expected tokens of at least 16 characters',
    );
    expect(message).not.toContain('short-secret');
    expect(message).toContain('--cors-origins="grafana.local/path"');
  });

  it('name the expected form of a bad port', () => {
    expect(() => loadConfig({ queryPort: 'abc' }, {})).toThrow(
      'expected a port number from 0 to 65535',
    );
  });

  it('read lists from the environment', () => {
    const config = loadConfig(
      {},
      {
        FAULTLINE_QUERY_TOKENS: ' aaaaaaaaaaaaaaaa , bbbbbbbbbbbbbbbb ',
        FAULTLINE_CORS_ORIGINS: '*',
      },
    );
    expect(config.queryTokens).toEqual(['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb']);
    expect(config.corsOrigins).toEqual(['*']);
    expect(config.queryMaxRangeHours).toBe(168);
    expect(config.queryMaxResults).toBe(1000);
  });
});

describe('web UI without a build', () => {
  let server: ListeningServer;
  const emptyDist = makeTempDir('ui');

  beforeAll(async () => {
    const app = createAnalyzerApp(
      faultline.app.storage,
      silentLogger,
      { queryTokens: [], corsOrigins: [], queryMaxRangeHours: 1, queryMaxResults: 10 },
      path.join(emptyDist, 'dist'),
    );
    server = await listen(app, '127.0.0.1', 0, {
      env: 'FAULTLINE_QUERY_PORT',
      flag: '--query-port',
    });
  });

  afterAll(async () => {
    await server.close();
    fs.rmSync(emptyDist, { recursive: true, force: true });
  });

  it('names the build command', async () => {
    const response = await fetch(`http://127.0.0.1:${server.port}/`);
    expect(response.status).toBe(503);
    const text = await response.text();
    expect(text).toContain('FL_UI_NOT_BUILT');
    expect(text).toContain('npm run build:ui');
  });

  it('keeps API routes out of the app fallback', async () => {
    const response = await fetch(`http://127.0.0.1:${server.port}/api/nothing`);
    expect(response.status).toBe(404);
    expect((await json(response)).error.code).toBe('FL_NOT_FOUND');
  });
});

describe('listening', () => {
  it('names the setting of a port in use', async () => {
    const setting = { env: 'FAULTLINE_QUERY_PORT', flag: '--query-port' };
    const first = await listen((_request, response) => response.end(), '127.0.0.1', 0, setting);
    try {
      const second = listen(
        (_request, response) => response.end(),
        '127.0.0.1',
        first.port,
        setting,
      );
      await expect(second).rejects.toMatchObject({ code: 'FL_PORT_IN_USE' });
      await expect(second).rejects.toThrow(
        `port ${first.port} on 127.0.0.1 is already in use: stop the process that holds it, or choose another port with FAULTLINE_QUERY_PORT or --query-port (0 picks a free port)`,
      );
    } finally {
      await first.close();
    }
  });
});
