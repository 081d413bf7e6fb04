import { findFaultProblems, type FaultSettings } from './faults';
import { silentLogger, type DemoLogger } from './logger';
import {
  SERVICE_NAMES,
  type ServiceName,
  type ServiceProcessConfig,
  type ServiceUrls,
} from './messages';
import { ServiceProcess } from './service-process';

export { silentLogger, type DemoLogger } from './logger';

export interface DemoServicesOptions {
  /** Base URL of the OTLP/HTTP receiver on a loopback address, such as http://127.0.0.1:4318. */
  otlpEndpoint: string;
  /** Resource attribute service.version of the instrumented services. Default "1.4.2". */
  serviceVersion?: string;
  /** Resource attribute deployment.environment.name. Default "demo". */
  environment?: string;
  /** Milliseconds between the span exports of each service. Default 500. */
  batchDelayMs?: number;
  /** Seed of the fault decisions, so that a run repeats them. Default: Math.random. */
  seed?: number;
  /** Milliseconds that all services get to start and report their ports. Default 30000. */
  startTimeoutMs?: number;
  /** Milliseconds that a service gets to flush and exit before it is killed. Default 10000. */
  stopTimeoutMs?: number;
  log?: DemoLogger;
}

/** The running demo services, each in its own Node process. */
export interface DemoServices {
  /** Base URL of each service on 127.0.0.1. */
  readonly urls: Readonly<Record<ServiceName, string>>;
  /** Sends fault settings to payment and stock-api and waits until both have applied them. */
  setFaults(faults: FaultSettings): Promise<void>;
  /**
   * Asks every service to flush its spans and exit, and kills one that has not exited after
   * stopTimeoutMs. Later calls return the same promise.
   */
  stop(): Promise<void>;
}

/** Downstream services of each service, in call order. */
export const DOWNSTREAM: Readonly<Record<ServiceName, readonly ServiceName[]>> = {
  frontend: ['checkout'],
  checkout: ['payment', 'inventory'],
  payment: [],
  inventory: ['stock-api'],
  'stock-api': [],
};

/** Services that read the fault settings: payment fails charges and stock-api delays responses. */
const FAULT_TARGETS: readonly ServiceName[] = ['payment', 'stock-api'];

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * Starts the five demo services, each in a child process with its own OpenTelemetry SDK, since
 * the OpenTelemetry API allows one global tracer provider per process. If any service fails to
 * start, the ones already started are stopped and the error is thrown.
 */
export async function startDemoServices(options: DemoServicesOptions): Promise<DemoServices> {
  checkLoopbackUrl(options.otlpEndpoint);
  const log = options.log ?? silentLogger;
  const stopTimeoutMs = options.stopTimeoutMs ?? 10_000;
  const processes = SERVICE_NAMES.map(
    (service) => new ServiceProcess(createProcessConfig(service, options), log),
  );
  const stopAll = () => Promise.all(processes.map((child) => child.stop(stopTimeoutMs)));

  try {
    const ports = await Promise.all(
      processes.map((child) => child.waitUntilReady(options.startTimeoutMs ?? 30_000)),
    );
    const urls = Object.fromEntries(
      SERVICE_NAMES.map((service, index) => [service, `http://127.0.0.1:${ports[index]}`]),
    ) as Record<ServiceName, string>;

    await Promise.all(
      processes.map((child) =>
        child.request({ type: 'configure', downstream: pickUrls(urls, DOWNSTREAM[child.name]) }),
      ),
    );
    log.info({ urls }, 'demo services started');
    return createHandle(processes, urls, log, stopAll);
  } catch (error) {
    await stopAll();
    throw error;
  }
}

function createHandle(
  processes: ServiceProcess[],
  urls: Record<ServiceName, string>,
  log: DemoLogger,
  stopAll: () => Promise<unknown>,
): DemoServices {
  let stopped: Promise<void> | undefined;

  return {
    urls,
    setFaults: async (faults) => {
      const problems = findFaultProblems(faults);
      if (problems.length > 0) {
        throw new Error(`invalid fault settings: ${problems.join('; ')}`);
      }
      const targets = processes.filter((child) => FAULT_TARGETS.includes(child.name));
      await Promise.all(targets.map((child) => child.request({ type: 'set-faults', faults })));
      log.info({ faults }, 'faults applied');
    },
    stop: () => {
      stopped ??= stopAll().then(() => log.info({}, 'demo services stopped'));
      return stopped;
    },
  };
}

function createProcessConfig(
  service: ServiceName,
  options: DemoServicesOptions,
): ServiceProcessConfig {
  return {
    service,
    serviceVersion: options.serviceVersion ?? '1.4.2',
    environment: options.environment ?? 'demo',
    otlpEndpoint: options.otlpEndpoint,
    batchDelayMs: options.batchDelayMs ?? 500,
    seed: options.seed === undefined ? undefined : options.seed + SERVICE_NAMES.indexOf(service),
  };
}

function pickUrls(urls: Record<ServiceName, string>, services: readonly ServiceName[]) {
  const picked: ServiceUrls = {};
  for (const service of services) {
    picked[service] = urls[service];
  }
  return picked;
}

/** Throws unless `text` is an http URL on a loopback host, since the demo keeps its traffic local. */
function checkLoopbackUrl(text: string): void {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`invalid otlpEndpoint ${JSON.stringify(text)}: expected a URL`);
  }
  if (!LOOPBACK_HOSTS.has(url.hostname) || url.protocol !== 'http:') {
    throw new Error(
      `invalid otlpEndpoint ${JSON.stringify(text)}: expected an http URL on 127.0.0.1, ` +
        'localhost or [::1], because the demo sends spans only to this machine',
    );
  }
}
