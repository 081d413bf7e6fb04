import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ProxyTracerProvider, trace } from '@opentelemetry/api';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import {
  createExportRequestFilter,
  parseKeyValueList,
  resolveTracingConfig,
  startTracing,
  type SdkLogger,
  type TracingHandle,
} from '@faultline/sdk';

/** OTLP JSON shapes, reduced to the fields these tests read. */
interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: number | string; boolValue?: boolean };
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: OtlpAttribute[];
  status?: { code?: number; message?: string };
  events?: Array<{ name: string }>;
}
interface OtlpRequestBody {
  resourceSpans: Array<{
    resource: { attributes: OtlpAttribute[] };
    scopeSpans: Array<{ spans: OtlpSpan[] }>;
  }>;
}

interface ReceivedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: OtlpRequestBody;
}

interface Receiver {
  /** Base URL, such as http://127.0.0.1:40123. */
  url: string;
  requests: ReceivedRequest[];
  close(): Promise<void>;
}

const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;
const REPOSITORY_ROOT = path.resolve(__dirname, '..');

/** Starts a loopback OTLP/HTTP receiver that stores every request body. */
function startReceiver(): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      requests.push({
        method: request.method ?? '',
        path: request.url ?? '',
        headers: request.headers,
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpRequestBody,
      });
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{}');
    });
  });

  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        requests,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}

function resourceAttributes(request: ReceivedRequest): Record<string, unknown> {
  return attributeMap(request.body.resourceSpans[0].resource.attributes);
}

function attributeMap(attributes: OtlpAttribute[] = []): Record<string, unknown> {
  return Object.fromEntries(
    attributes.map((attribute) => {
      const { stringValue, intValue, boolValue } = attribute.value;
      return [attribute.key, stringValue ?? intValue ?? boolValue];
    }),
  );
}

function allSpans(requests: ReceivedRequest[]): OtlpSpan[] {
  return requests.flatMap((request) =>
    request.body.resourceSpans.flatMap((resourceSpans) =>
      resourceSpans.scopeSpans.flatMap((scopeSpans) => scopeSpans.spans),
    ),
  );
}

function createCapturingLogger(): SdkLogger & { warnings: string[]; errors: string[] } {
  const warnings: string[] = [];
  const errors: string[] = [];
  return {
    warnings,
    errors,
    warn: (message) => warnings.push(message),
    error: (message) => errors.push(message),
  };
}

const OTEL_VARIABLES = [
  'OTEL_SERVICE_NAME',
  'OTEL_RESOURCE_ATTRIBUTES',
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  'OTEL_EXPORTER_OTLP_HEADERS',
  'OTEL_EXPORTER_OTLP_TRACES_HEADERS',
  'OTEL_TRACES_SAMPLER',
  'OTEL_TRACES_SAMPLER_ARG',
  'OTEL_SDK_DISABLED',
];
const savedEnvironment = Object.fromEntries(
  OTEL_VARIABLES.map((name) => [name, process.env[name]]),
);

function restoreEnvironment(): void {
  for (const name of OTEL_VARIABLES) {
    const value = savedEnvironment[name];
    if (value === undefined) {
      delete process.env[name];
    } else {
      process.env[name] = value;
    }
  }
}

/**
 * Code run before each child script: it loads the SDK from source and defines `logger`, which
 * stores messages, and `report(extra)`, which prints them with `extra` as one JSON line.
 */
const CHILD_PRELUDE = `
const { startTracing } = require(process.env.SDK_ENTRY);
const warnings = [];
const errors = [];
const logger = { warn: (message) => warnings.push(message), error: (message) => errors.push(message) };
const report = (extra) => process.stdout.write(JSON.stringify({ warnings, errors, ...extra }) + '\\n');
const receiverUrl = process.env.RECEIVER_URL;
`;

interface ChildReport {
  warnings: string[];
  errors: string[];
  [key: string]: unknown;
}

interface ChildOutcome {
  code: number | null;
  stderr: string;
  report: ChildReport | undefined;
}

/**
 * Runs `script` after CHILD_PRELUDE in a new Node process. Exports need it: the OTLP exporter
 * loads `http` with a dynamic import(), which jest's module sandbox rejects, and the
 * instrumentations patch modules through Node's own require, which jest bypasses. The child gets
 * no OTEL_* variables except those in `env`.
 */
/**
 * Checks a child that served one express request: no error output, a 200 and no
 * warnings, a server span of that name, and a handler span below it with the route.
 * Returns every exported span and the server span.
 */
function expectExpressSpans(
  outcome: ChildOutcome,
  requests: Receiver['requests'],
  serverName: string,
  route: string,
) {
  expect(outcome.stderr).toBe('');
  expect(outcome.report?.status).toBe(200);
  expect(outcome.report?.warnings).toEqual([]);
  const spans = allSpans(requests);
  const server = spans.find((span) => span.kind === SPAN_KIND_SERVER);
  expect(server?.name).toBe(serverName);
  const handler = spans.find((span) => span.name === 'request handler');
  expect(handler?.parentSpanId).toBe(server?.spanId);
  expect(attributeMap(handler?.attributes)['http.route']).toBe(route);
  return { spans, server };
}

function runChild(script: string, env: Record<string, string>): Promise<ChildOutcome> {
  return collectChild(['--require', require.resolve('tsx/cjs'), '-e', CHILD_PRELUDE + script], env);
}

/**
 * Runs an ES module service the way the README starts one: `node --import tsx --import
 * <tracing> <service>`, where the tracing module starts the SDK with the child's logger and
 * the service module runs `script` with a `report` function.
 */
function runModuleChild(
  tracing: string,
  script: string,
  env: Record<string, string>,
  files: Record<string, string> = {},
): Promise<ChildOutcome> {
  // Under node_modules, so that the service resolves tsx and express as an installed service would.
  const cache = path.join(REPOSITORY_ROOT, 'node_modules', '.cache');
  fs.mkdirSync(cache, { recursive: true });
  const dir = fs.mkdtempSync(path.join(cache, 'faultline-sdk-esm-'));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  fs.writeFileSync(
    path.join(dir, 'tracing.mjs'),
    `import sdk from ${JSON.stringify(pathToFileURL(path.join(REPOSITORY_ROOT, 'sdk/src/index.ts')).href)};
const { startTracing } = sdk;
globalThis.warnings = [];
globalThis.errors = [];
const logger = { warn: (message) => warnings.push(message), error: (message) => errors.push(message) };
const receiverUrl = process.env.RECEIVER_URL;
${tracing}`,
  );
  fs.writeFileSync(
    path.join(dir, 'service.mjs'),
    `const report = (extra) => process.stdout.write(JSON.stringify({ warnings, errors, ...extra }) + '\\n');
${script}`,
  );
  const child = collectChild(
    ['--import', 'tsx', '--import', './tracing.mjs', './service.mjs'],
    env,
    dir,
  );
  return child.finally(() => fs.rmSync(dir, { recursive: true, force: true }));
}

/** Runs Node.js with `args` and returns its exit code, stderr and the last line it printed. */
function collectChild(
  args: string[],
  env: Record<string, string>,
  cwd = REPOSITORY_ROOT,
): Promise<ChildOutcome> {
  const baseEnvironment = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('OTEL_')),
  );
  const child = spawn(process.execPath, args, {
    cwd,
    env: {
      ...baseEnvironment,
      SDK_ENTRY: path.join(REPOSITORY_ROOT, 'sdk/src/index.ts'),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').pop();
      resolve({ code, stderr, report: line ? (JSON.parse(line) as ChildReport) : undefined });
    });
  });
}

/**
 * Builds child code that serves `route` with express, requests `requestPath` once, then
 * shuts tracing down and reports the status. It expects `http`, `express` and `handle`.
 */
function serveOnce(route: string, requestPath: string): string {
  return `
      const app = express();
      app.get('${route}', (request, response) => response.json({ ok: true }));
      const server = app.listen(0, '127.0.0.1', () => {
        http.get('http://127.0.0.1:' + server.address().port + '${requestPath}', (response) => {
          response.resume();
          response.on('end', async () => {
            server.close();
            await handle.shutdown();
            report({ status: response.statusCode });
          });
        });
      });
      `;
}

describe('startTracing in a child process', () => {
  let receiver: Receiver;

  beforeEach(async () => {
    receiver = await startReceiver();
  });

  afterEach(async () => {
    await receiver.close();
  });

  it('exports a span with resource attributes', async () => {
    const outcome = await runChild(
      `
      const handle = startTracing({
        serviceName: 'sdk-test',
        serviceVersion: '2.3.4',
        environment: 'test',
        endpoint: receiverUrl,
        logger,
      });
      handle.getTracer().startSpan('unit of work').end();
      const first = handle.shutdown();
      const sameWhileRunning = handle.shutdown() === first;
      first.then(() => report({ sameWhileRunning, sameAfter: handle.shutdown() === first,
        isActive: handle.isActive }));
      `,
      { RECEIVER_URL: receiver.url },
    );

    expect(outcome.stderr).toBe('');
    expect(outcome.code).toBe(0);
    expect(outcome.report?.warnings).toEqual([]);
    expect(outcome.report?.errors).toEqual([]);
    expect(outcome.report?.sameWhileRunning).toBe(true);
    expect(outcome.report?.sameAfter).toBe(true);
    expect(outcome.report?.isActive).toBe(false);

    expect(receiver.requests).toHaveLength(1);
    const [request] = receiver.requests;
    expect(request.method).toBe('POST');
    expect(request.path).toBe('/v1/traces');
    expect(request.headers['content-type']).toBe('application/json');
    const attributes = resourceAttributes(request);
    expect(attributes['service.name']).toBe('sdk-test');
    expect(attributes['service.version']).toBe('2.3.4');
    expect(attributes['deployment.environment.name']).toBe('test');
    expect(allSpans(receiver.requests).map((span) => span.name)).toEqual(['unit of work']);
  });

  it('re-exported API records exceptions and statuses', async () => {
    const outcome = await runChild(
      `
      const { trace, SpanStatusCode } = require(process.env.SDK_ENTRY);
      const handle = startTracing({ serviceName: 'api-test', endpoint: receiverUrl, logger });
      const span = trace.getTracer('checkout').startSpan('charge card');
      span.recordException(new Error('card declined'));
      span.setStatus({ code: SpanStatusCode.ERROR, message: 'card declined' });
      span.end();
      handle.shutdown().then(() => report({}));
      `,
      { RECEIVER_URL: receiver.url },
    );

    expect(outcome.report?.warnings).toEqual([]);
    const [span] = allSpans(receiver.requests);
    expect(span.name).toBe('charge card');
    expect(span.status).toEqual({ code: 2, message: 'card declined' });
    expect(span.events?.map((event) => event.name)).toEqual(['exception']);
  });

  it('warns about an API copy that ignores it', async () => {
    const api = 'node_modules/@opentelemetry/api';
    const outcome = await runModuleChild(
      `globalThis.handle = startTracing({ serviceName: 'copy-test', endpoint: receiverUrl, logger });`,
      `await handle.shutdown();
report({});`,
      { RECEIVER_URL: receiver.url },
      {
        [`${api}/package.json`]: JSON.stringify({
          name: '@opentelemetry/api',
          version: '1.10.0',
          main: 'index.js',
        }),
        [`${api}/index.js`]: '',
      },
    );

    expect(outcome.stderr).toBe('');
    expect(outcome.report?.warnings).toHaveLength(1);
    expect(outcome.report?.warnings[0]).toContain('loads @opentelemetry/api 1.10.0');
    expect(outcome.report?.warnings[0]).toContain(
      'Import trace and SpanStatusCode from @faultline/sdk',
    );
  });

  it('forceFlush exports without shutdown', async () => {
    const outcome = await runChild(
      `
      const handle = startTracing({ serviceName: 'sdk-test', endpoint: receiverUrl, logger });
      handle.getTracer().startSpan('flushed').end();
      handle.forceFlush().then(() => {
        report({ isActive: handle.isActive });
        process.exit(0);
      });
      `,
      { RECEIVER_URL: receiver.url },
    );

    expect(outcome.code).toBe(0);
    expect(outcome.report?.isActive).toBe(true);
    expect(allSpans(receiver.requests).map((span) => span.name)).toEqual(['flushed']);
  });

  it('starts again after shutdown', async () => {
    const outcome = await runChild(
      `
      const first = startTracing({ serviceName: 'first', endpoint: receiverUrl, logger });
      first.shutdown().then(() => {
        const second = startTracing({ serviceName: 'second', endpoint: receiverUrl, logger });
        second.getTracer().startSpan('after restart').end();
        return second.shutdown();
      }).then(() => report({}));
      `,
      { RECEIVER_URL: receiver.url },
    );

    expect(outcome.report?.warnings).toEqual([]);
    expect(receiver.requests).toHaveLength(1);
    expect(resourceAttributes(receiver.requests[0])['service.name']).toBe('second');
    expect(allSpans(receiver.requests).map((span) => span.name)).toEqual(['after restart']);
  });

  it('bad endpoint is logged and replaced', async () => {
    const outcome = await runChild(
      `
      const handle = startTracing({ serviceName: 'sdk-test', endpoint: 'not a url', logger });
      handle.getTracer().startSpan('still exported').end();
      handle.shutdown().then(() => report({ tracesUrl: handle.tracesUrl }));
      `,
      { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url },
    );

    expect(outcome.code).toBe(0);
    expect(outcome.report?.warnings).toEqual([
      'invalid option endpoint: expected an http or https URL such as http://localhost:4318, ' +
        `got "not a url". Using ${receiver.url}/v1/traces instead.`,
    ]);
    expect(outcome.report?.tracesUrl).toBe(`${receiver.url}/v1/traces`);
    expect(allSpans(receiver.requests).map((span) => span.name)).toEqual(['still exported']);
  });

  it('environment variables fill absent options', async () => {
    const outcome = await runChild(
      `
      const handle = startTracing({ logger });
      handle.getTracer().startSpan('from env').end();
      handle.shutdown().then(() => report({}));
      `,
      {
        OTEL_SERVICE_NAME: 'env-service',
        OTEL_RESOURCE_ATTRIBUTES:
          'service.name=ignored,service.version=9.9.9,deployment.environment.name=staging,' +
          'team=checkout%20crew',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/custom/traces`,
        OTEL_EXPORTER_OTLP_HEADERS: 'x-faultline-token=secret%20value',
      },
    );

    expect(outcome.report?.warnings).toEqual([]);
    expect(receiver.requests).toHaveLength(1);
    const [request] = receiver.requests;
    expect(request.path).toBe('/custom/traces');
    expect(request.headers['x-faultline-token']).toBe('secret value');
    const attributes = resourceAttributes(request);
    expect(attributes['service.name']).toBe('env-service');
    expect(attributes['service.version']).toBe('9.9.9');
    expect(attributes['deployment.environment.name']).toBe('staging');
    expect(attributes.team).toBe('checkout crew');
  });

  it('options win over environment variables', async () => {
    const outcome = await runChild(
      `
      const handle = startTracing({
        serviceName: 'option-service',
        serviceVersion: '1.0.0',
        endpoint: receiverUrl,
        logger,
      });
      handle.getTracer().startSpan('from options').end();
      handle.shutdown().then(() => report({}));
      `,
      {
        RECEIVER_URL: receiver.url,
        OTEL_SERVICE_NAME: 'env-service',
        OTEL_RESOURCE_ATTRIBUTES: 'service.version=9.9.9',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:9/unused',
      },
    );

    expect(outcome.report?.warnings).toEqual([]);
    expect(receiver.requests).toHaveLength(1);
    expect(receiver.requests[0].path).toBe('/v1/traces');
    const attributes = resourceAttributes(receiver.requests[0]);
    expect(attributes['service.name']).toBe('option-service');
    expect(attributes['service.version']).toBe('1.0.0');
  });

  it('failed export is logged, not thrown', async () => {
    const closed = await startReceiver();
    await closed.close();

    const outcome = await runChild(
      `
      const handle = startTracing({
        serviceName: 'sdk-test',
        endpoint: receiverUrl,
        exportTimeoutMs: 500,
        shutdownTimeoutMs: 500,
        logger,
      });
      handle.getTracer().startSpan('lost').end();
      handle.shutdown().then(() => {
        report({});
        process.exit(0);
      });
      `,
      { RECEIVER_URL: closed.url },
    );

    expect(outcome.code).toBe(0);
    expect(outcome.report?.errors).toHaveLength(1);
    expect(outcome.report?.errors[0]).toMatch(/^failed to flush spans at shutdown: /);
  });

  it('instrumented express server exports linked spans', async () => {
    const outcome = await runChild(
      `
      const handle = startTracing({
        serviceName: 'child-service',
        serviceVersion: '3.1.4',
        environment: 'test',
        endpoint: receiverUrl,
        logger,
      });
      const http = require('node:http');
      const express = require('express');
      ${serveOnce('/hello', '/hello')}`,
      { RECEIVER_URL: receiver.url },
    );

    const { spans, server } = expectExpressSpans(
      outcome,
      receiver.requests,
      'GET /hello',
      '/hello',
    );
    const client = spans.find((span) => span.kind === SPAN_KIND_CLIENT);
    expect(client?.name).toBe('GET');
    expect(server?.traceId).toBe(client?.traceId);
    expect(server?.parentSpanId).toBe(client?.spanId);
    expect(attributeMap(server?.attributes)['http.response.status_code']).toBe(200);

    const clientUrls = spans
      .filter((span) => span.kind === SPAN_KIND_CLIENT)
      .map((span) => String(attributeMap(span.attributes)['url.full']));
    expect(clientUrls.filter((url) => url.includes('/v1/traces'))).toEqual([]);

    const attributes = resourceAttributes(receiver.requests[0]);
    expect(attributes['service.name']).toBe('child-service');
    expect(attributes['service.version']).toBe('3.1.4');
    expect(attributes['deployment.environment.name']).toBe('test');
  });

  it('instruments express in ES modules', async () => {
    const outcome = await runModuleChild(
      `globalThis.handle = startTracing({ serviceName: 'module-service', endpoint: receiverUrl, logger });`,
      `
      import http from 'node:http';
      import express from 'express';
      ${serveOnce('/hello/:name', '/hello/ada')}`,
      { RECEIVER_URL: receiver.url },
    );

    expectExpressSpans(outcome, receiver.requests, 'GET /hello/:name', '/hello/:name');
  });

  it('fetch calls join the trace of the server they reach', async () => {
    const outcome = await runChild(
      `
      const handle = startTracing({ serviceName: 'fetch-service', endpoint: receiverUrl, logger });
      const http = require('node:http');
      const server = http.createServer((request, response) => response.end('ok'));
      server.listen(0, '127.0.0.1', async () => {
        const response = await fetch('http://127.0.0.1:' + server.address().port + '/work');
        await response.text();
        server.close();
        await handle.shutdown();
        report({ status: response.status });
      });
      `,
      { RECEIVER_URL: receiver.url },
    );

    expect(outcome.stderr).toBe('');
    expect(outcome.report?.status).toBe(200);
    const spans = allSpans(receiver.requests);
    const client = spans.find((span) => span.kind === SPAN_KIND_CLIENT);
    const server = spans.find((span) => span.kind === SPAN_KIND_SERVER);
    expect(client).toBeDefined();
    expect(server?.traceId).toBe(client?.traceId);
    expect(server?.parentSpanId).toBe(client?.spanId);
    const urls = spans.map((span) => String(attributeMap(span.attributes)['url.full']));
    expect(urls.filter((url) => url.includes('/v1/traces'))).toEqual([]);
  });
});

describe('startTracing in the test process', () => {
  let handle: TracingHandle | undefined;

  beforeEach(() => {
    for (const name of OTEL_VARIABLES) {
      delete process.env[name];
    }
  });

  afterEach(async () => {
    await handle?.shutdown();
    handle = undefined;
    restoreEnvironment();
  });

  it('shutdown twice returns the same promise', async () => {
    handle = startTracing({ serviceName: 'sdk-test', logger: createCapturingLogger() });

    const first = handle.shutdown();
    expect(handle.shutdown()).toBe(first);
    await first;

    expect(handle.isActive).toBe(false);
    expect(handle.shutdown()).toBe(first);
    await expect(handle.forceFlush()).resolves.toBeUndefined();
  });

  it('second start returns the running handle', () => {
    const logger = createCapturingLogger();
    handle = startTracing({ serviceName: 'first', logger: createCapturingLogger() });

    const again = startTracing({ serviceName: 'second', logger });

    expect(again).toBe(handle);
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]).toContain('already running for service "first"');
  });

  it('non-object options start with defaults', () => {
    expect(() => {
      handle = startTracing(null as never);
    }).not.toThrow();

    expect(handle?.isActive).toBe(true);
    expect(handle?.tracesUrl).toBe('http://localhost:4318/v1/traces');
  });

  it('OTEL_SDK_DISABLED returns an inactive handle', async () => {
    process.env.OTEL_SDK_DISABLED = 'true';

    handle = startTracing({ serviceName: 'sdk-test' });

    expect(handle.isActive).toBe(false);
    await expect(handle.shutdown()).resolves.toBeUndefined();
  });

  it('existing tracer provider is left alone', () => {
    const existing = new BasicTracerProvider();
    expect(trace.setGlobalTracerProvider(existing)).toBe(true);
    const logger = createCapturingLogger();

    try {
      handle = startTracing({ serviceName: 'sdk-test', logger });

      expect(handle.isActive).toBe(false);
      expect(logger.warnings).toHaveLength(1);
      expect(logger.warnings[0]).toMatch(/^another tracer provider is already registered/);
      expect((trace.getTracerProvider() as ProxyTracerProvider).getDelegate()).toBe(existing);
    } finally {
      trace.disable();
    }
  });

  it('throwing logger does not reach the caller', () => {
    const logger = {
      warn: () => {
        throw new Error('logger broke');
      },
      error: () => {
        throw new Error('logger broke');
      },
    };

    expect(() => {
      handle = startTracing({ serviceName: 42 as never, logger });
    }).not.toThrow();
    expect(handle?.isActive).toBe(true);
  });
});

describe('resolveTracingConfig', () => {
  const cases: Array<{ option: string; options: object; warning: string }> = [
    {
      option: 'serviceName',
      options: { serviceName: 42 },
      warning:
        'invalid option serviceName: expected a non-empty string, got 42. Using "unknown_service:',
    },
    {
      option: 'serviceVersion',
      options: { serviceVersion: '' },
      warning:
        'invalid option serviceVersion: expected a non-empty string, got "". ' +
        'Using no service.version attribute instead.',
    },
    {
      option: 'sampleRatio',
      options: { sampleRatio: 1.5 },
      warning:
        'invalid option sampleRatio: expected a number from 0 to 1, got 1.5. ' +
        'Using the sampler named by OTEL_TRACES_SAMPLER instead.',
    },
    {
      option: 'tracesEndpoint',
      options: { tracesEndpoint: 'ftp://127.0.0.1/traces' },
      warning:
        'invalid option tracesEndpoint: expected an http or https URL such as ' +
        'http://localhost:4318, got "ftp://127.0.0.1/traces". ' +
        'Using http://localhost:4318/v1/traces instead.',
    },
    {
      option: 'shutdownTimeoutMs',
      options: { shutdownTimeoutMs: -1 },
      warning:
        'invalid option shutdownTimeoutMs: expected a number of milliseconds greater than 0, ' +
        'got -1. Using 10000 instead.',
    },
    {
      option: 'headers',
      options: { headers: { authorization: 7 } },
      warning:
        'invalid option headers: the value of header "authorization" must be a string, ' +
        'got a value of type number. Skipping this header.',
    },
    {
      option: 'instrumentations',
      options: { instrumentations: 'http' },
      warning:
        'invalid option instrumentations: expected an array of instrumentations, got "http". ' +
        'Using only the HTTP, fetch and express instrumentations.',
    },
  ];

  it.each(cases)('invalid $option is reported and defaulted', ({ options, warning }) => {
    const logger = createCapturingLogger();

    const config = resolveTracingConfig(options, {}, logger);

    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0].startsWith(warning)).toBe(true);
    expect(config.tracesUrl).toBe('http://localhost:4318/v1/traces');
    expect(config.sampleRatio).toBeUndefined();
    expect(config.shutdownTimeoutMs).toBe(10_000);
    expect(config.headers).toEqual({});
  });

  it('header values are never logged', () => {
    const logger = createCapturingLogger();

    resolveTracingConfig({ headers: { token: { secret: 'hunter2' } } } as object, {}, logger);

    expect(logger.warnings.join('\n')).not.toContain('hunter2');
  });

  it('generic endpoint gets the traces path', () => {
    const config = resolveTracingConfig(
      {},
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318/otlp/' },
      createCapturingLogger(),
    );

    expect(config.tracesUrl).toBe('http://127.0.0.1:4318/otlp/v1/traces');
  });

  it('endpoint with the traces path is used as given', () => {
    const logger = createCapturingLogger();
    const config = resolveTracingConfig(
      { endpoint: 'http://127.0.0.1:4318/v1/traces' },
      {},
      logger,
    );

    expect(config.tracesUrl).toBe('http://127.0.0.1:4318/v1/traces');
    expect(logger.warnings.join('\n')).toContain('already ends with /v1/traces');
  });

  it('tracesEndpoint wins over endpoint', () => {
    const config = resolveTracingConfig(
      { endpoint: 'http://127.0.0.1:1', tracesEndpoint: 'http://127.0.0.1:2/traces' },
      {},
      createCapturingLogger(),
    );

    expect(config.tracesUrl).toBe('http://127.0.0.1:2/traces');
  });

  it('invalid environment endpoint falls through', () => {
    const logger = createCapturingLogger();

    const config = resolveTracingConfig(
      {},
      {
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'nonsense',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
      },
      logger,
    );

    expect(config.tracesUrl).toBe('http://127.0.0.1:4318/v1/traces');
    expect(logger.warnings).toEqual([
      'invalid environment variable OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: expected an http or ' +
        'https URL, got "nonsense". Ignoring it.',
    ]);
  });

  it('resourceAttributes sit between environment and named options', () => {
    const config = resolveTracingConfig(
      {
        environment: 'production',
        resourceAttributes: { 'deployment.environment.name': 'ignored', region: 'eu-1', shards: 3 },
      },
      { OTEL_RESOURCE_ATTRIBUTES: 'region=us-1,tier=gold' },
      createCapturingLogger(),
    );

    expect(config.resourceAttributes['deployment.environment.name']).toBe('production');
    expect(config.resourceAttributes.region).toBe('eu-1');
    expect(config.resourceAttributes.shards).toBe(3);
    expect(config.resourceAttributes.tier).toBe('gold');
  });
});

describe('parseKeyValueList', () => {
  it('decodes percent-encoded values', () => {
    const logger = createCapturingLogger();

    const parsed = parseKeyValueList(' a = 1 ,b=x%2Cy, c=%E2%9C%93 ', 'TEST_VARIABLE', logger);

    expect(parsed).toEqual({ a: '1', b: 'x,y', c: '\u2713' });
    expect(logger.warnings).toEqual([]);
  });

  it('skips malformed entries with a warning', () => {
    const logger = createCapturingLogger();

    const parsed = parseKeyValueList('good=1,novalue,=empty,bad=%E2', 'TEST_VARIABLE', logger);

    expect(parsed).toEqual({ good: '1' });
    expect(logger.warnings).toHaveLength(3);
    expect(logger.warnings[0]).toBe(
      'invalid entry in TEST_VARIABLE: expected key=value with percent-encoded text, ' +
        'got "novalue". Skipping this entry.',
    );
  });
});

describe('createExportRequestFilter', () => {
  const ignores = createExportRequestFilter('http://127.0.0.1:4318/v1/traces');

  it('matches the export request', () => {
    expect(ignores({ hostname: '127.0.0.1', port: 4318, path: '/v1/traces' })).toBe(true);
    expect(ignores({ host: '127.0.0.1', port: '4318', path: '/v1/traces?x=1' })).toBe(true);
  });

  it('lets other requests through', () => {
    expect(ignores({ hostname: '127.0.0.1', port: 4318, path: '/v1/metrics' })).toBe(false);
    expect(ignores({ hostname: '127.0.0.1', port: 4319, path: '/v1/traces' })).toBe(false);
    expect(ignores({ hostname: '127.0.0.2', port: 4318, path: '/v1/traces' })).toBe(false);
  });

  it('uses default ports and IPv6 brackets', () => {
    const ignoresHttps = createExportRequestFilter('https://[::1]/v1/traces');

    expect(ignoresHttps({ hostname: '::1', protocol: 'https:', path: '/v1/traces' })).toBe(true);
    expect(ignoresHttps({ hostname: '::1', protocol: 'http:', path: '/v1/traces' })).toBe(false);
  });
});
