import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { findFaultProblems, INCIDENT_FAULTS, type FaultSettings } from './faults';
import { sendRequest } from './http-client';
import type { ServiceName } from './messages';
import {
  silentLogger,
  startDemoServices,
  type DemoServices,
  type DemoServicesOptions,
} from './supervisor';

export interface TrafficOptions {
  /** Label of the phase in the result, such as "baseline". */
  phase: string;
  /** URL that every request gets. */
  url: string;
  ratePerSecond: number;
  durationMs: number;
  /** Milliseconds after which one request counts as failed. Default 10000. */
  requestTimeoutMs?: number;
  /** Requests open at once. A request due while this many are open is skipped. Default 200. */
  maxInFlight?: number;
  /** Ends the phase early. Requests already sent are still awaited. */
  signal?: AbortSignal;
}

export interface LatencySummary {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface PhaseStats {
  phase: string;
  startedAtMs: number;
  endedAtMs: number;
  sent: number;
  /** Requests that got a 2xx response. */
  succeeded: number;
  /** Requests that got another status, a network error or the timeout. */
  failed: number;
  /** Requests not sent because maxInFlight requests were open. */
  skipped: number;
  /** Count by HTTP status, with "error" for network errors and timeouts. */
  statusCounts: Record<string, number>;
  /** Milliseconds from sending a request to its full response, over requests that got a response. */
  latencyMs: LatencySummary;
}

const MAX_RATE_PER_SECOND = 200;
const MAX_DURATION_MS = 10 * 60_000;

/**
 * Sends GET requests to `url` at a fixed rate for a fixed time, without waiting for one request
 * before sending the next. The run is bounded: at most ratePerSecond * durationMs / 1000 requests,
 * and it ends at most requestTimeoutMs after durationMs.
 */
export async function driveTraffic(options: TrafficOptions): Promise<PhaseStats> {
  checkRate(options.ratePerSecond);
  checkDuration('durationMs', options.durationMs);

  const total = Math.floor((options.ratePerSecond * options.durationMs) / 1000);
  const intervalMs = 1000 / options.ratePerSecond;
  const maxInFlight = options.maxInFlight ?? 200;
  const agent = new http.Agent({ keepAlive: true, maxSockets: maxInFlight });
  const recorder = new PhaseRecorder(options.phase);
  const inFlight = new Set<Promise<void>>();

  try {
    for (let index = 0; index < total && !options.signal?.aborted; index++) {
      const waitMs = recorder.startedAtMs + index * intervalMs - Date.now();
      if (waitMs > 0 && !(await wait(waitMs, options.signal))) {
        break;
      }
      if (inFlight.size >= maxInFlight) {
        recorder.skipped += 1;
        continue;
      }

      const query = `sku=sku-${(index % 10) + 1}&user=user-${(index * 7) % 40}`;
      const url = `${options.url}${options.url.includes('?') ? '&' : '?'}${query}`;
      const request = sendOne(url, options.requestTimeoutMs ?? 10_000, agent, recorder);
      inFlight.add(request);
      void request.finally(() => inFlight.delete(request));
    }
    await Promise.all(inFlight);
  } finally {
    agent.destroy();
  }
  return recorder.finish();
}

/** Resolves false when `signal` aborts the wait. */
async function wait(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

async function sendOne(
  url: string,
  timeoutMs: number,
  agent: http.Agent,
  recorder: PhaseRecorder,
): Promise<void> {
  const startedAt = performance.now();
  recorder.sent += 1;
  try {
    const response = await sendRequest(url, { timeoutMs, agent });
    recorder.recordResponse(response.status, performance.now() - startedAt);
  } catch {
    recorder.recordError();
  }
}

class PhaseRecorder {
  readonly startedAtMs = Date.now();
  sent = 0;
  skipped = 0;
  private succeeded = 0;
  private failed = 0;
  private readonly statusCounts: Record<string, number> = {};
  private readonly latencies: number[] = [];

  constructor(private readonly phase: string) {}

  recordResponse(status: number, latencyMs: number): void {
    if (status >= 200 && status < 300) {
      this.succeeded += 1;
    } else {
      this.failed += 1;
    }
    this.count(String(status));
    this.latencies.push(latencyMs);
  }

  recordError(): void {
    this.failed += 1;
    this.count('error');
  }

  finish(): PhaseStats {
    return {
      phase: this.phase,
      startedAtMs: this.startedAtMs,
      endedAtMs: Date.now(),
      sent: this.sent,
      succeeded: this.succeeded,
      failed: this.failed,
      skipped: this.skipped,
      statusCounts: { ...this.statusCounts },
      latencyMs: summarizeLatencies(this.latencies),
    };
  }

  private count(key: string): void {
    this.statusCounts[key] = (this.statusCounts[key] ?? 0) + 1;
  }
}

function summarizeLatencies(latencies: number[]): LatencySummary {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (quantile: number) => {
    if (sorted.length === 0) {
      return 0;
    }
    const index = Math.min(sorted.length - 1, Math.ceil(quantile * sorted.length) - 1);
    return Math.round(sorted[Math.max(0, index)]);
  };
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: at(1) };
}

export interface DemoOptions extends DemoServicesOptions {
  /** Milliseconds of traffic in all, baseline and incident together. Default 60000. */
  durationMs?: number;
  /** Milliseconds of traffic without faults before the faults start. Default half of durationMs. */
  baselineMs?: number;
  /** Requests per second to frontend GET /checkout. Default 20. */
  ratePerSecond?: number;
  /** Faults of the incident phase. Default INCIDENT_FAULTS. */
  faults?: FaultSettings;
  /** Milliseconds after which one request counts as failed. Default 10000. */
  requestTimeoutMs?: number;
  /** Ends the traffic early. The services are still stopped before runDemo returns. */
  signal?: AbortSignal;
}

export interface DemoResult {
  urls: Readonly<Record<ServiceName, string>>;
  faults: FaultSettings;
  /** Epoch milliseconds when every service had applied the faults. */
  faultsStartedAtMs: number;
  /** The baseline phase, then the incident phase (absent when the run was aborted before it). */
  phases: PhaseStats[];
  sent: number;
  succeeded: number;
  failed: number;
  aborted: boolean;
}

/**
 * Runs the whole demo: starts the services, sends traffic without faults for baselineMs, applies
 * the faults, sends traffic for the rest of durationMs, then stops the services, which flushes
 * their spans. The services are stopped on every path, also when a step throws.
 */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const settings = checkDemoOptions(options);
  const log = options.log ?? silentLogger;
  const services = await startDemoServices(options);

  try {
    return await runPhases(services, options, settings);
  } finally {
    await services.stop();
    log.info({}, 'demo finished');
  }
}

interface DemoSettings {
  durationMs: number;
  baselineMs: number;
  ratePerSecond: number;
  faults: FaultSettings;
}

async function runPhases(
  services: DemoServices,
  options: DemoOptions,
  settings: DemoSettings,
): Promise<DemoResult> {
  const log = options.log ?? silentLogger;
  const traffic = {
    url: `${services.urls.frontend}/checkout`,
    ratePerSecond: settings.ratePerSecond,
    requestTimeoutMs: options.requestTimeoutMs,
    signal: options.signal,
  };
  const phases: PhaseStats[] = [];

  log.info({ durationMs: settings.baselineMs }, 'baseline traffic started');
  phases.push(
    await driveTraffic({ ...traffic, phase: 'baseline', durationMs: settings.baselineMs }),
  );

  await services.setFaults(settings.faults);
  const faultsStartedAtMs = Date.now();
  const incidentMs = settings.durationMs - settings.baselineMs;

  if (!options.signal?.aborted && incidentMs > 0) {
    log.info({ durationMs: incidentMs, faults: settings.faults }, 'incident traffic started');
    phases.push(await driveTraffic({ ...traffic, phase: 'incident', durationMs: incidentMs }));
  }

  return {
    urls: services.urls,
    faults: settings.faults,
    faultsStartedAtMs,
    phases,
    sent: sum(phases, 'sent'),
    succeeded: sum(phases, 'succeeded'),
    failed: sum(phases, 'failed'),
    aborted: options.signal?.aborted ?? false,
  };
}

function sum(phases: PhaseStats[], field: 'sent' | 'succeeded' | 'failed'): number {
  return phases.reduce((total, phase) => total + phase[field], 0);
}

/** Validates the options before any process starts, and throws one error listing every problem. */
function checkDemoOptions(options: DemoOptions): DemoSettings {
  const durationMs = options.durationMs ?? 60_000;
  const settings: DemoSettings = {
    durationMs,
    baselineMs: options.baselineMs ?? Math.round(durationMs / 2),
    ratePerSecond: options.ratePerSecond ?? 20,
    faults: options.faults ?? { ...INCIDENT_FAULTS },
  };

  const problems = [...findFaultProblems(settings.faults).map((problem) => `faults.${problem}`)];
  collectProblem(problems, () => checkRate(settings.ratePerSecond));
  collectProblem(problems, () => checkDuration('durationMs', settings.durationMs));
  if (!(settings.baselineMs >= 0 && settings.baselineMs <= settings.durationMs)) {
    problems.push(
      `baselineMs must be from 0 to durationMs (${settings.durationMs}), got ${settings.baselineMs}`,
    );
  }

  if (problems.length > 0) {
    throw new Error(`invalid demo options: ${problems.join('; ')}`);
  }
  return settings;
}

function collectProblem(problems: string[], check: () => void): void {
  try {
    check();
  } catch (error) {
    problems.push(error instanceof Error ? error.message : String(error));
  }
}

function checkRate(ratePerSecond: number): void {
  if (
    !(Number.isFinite(ratePerSecond) && ratePerSecond > 0 && ratePerSecond <= MAX_RATE_PER_SECOND)
  ) {
    throw new Error(
      `ratePerSecond must be greater than 0 and at most ${MAX_RATE_PER_SECOND}, got ${ratePerSecond}`,
    );
  }
}

function checkDuration(name: string, durationMs: number): void {
  if (!(Number.isFinite(durationMs) && durationMs >= 0 && durationMs <= MAX_DURATION_MS)) {
    throw new Error(`${name} must be from 0 to ${MAX_DURATION_MS} ms, got ${durationMs}`);
  }
}
