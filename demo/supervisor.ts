import { findFaultProblems, type FaultSettings } from './faults';
import { silentLogger, type DemoLogger } from './logger';
import {
  SERVICE_NAMES,
  type ServiceName,
  type ReplicaUrls,
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
  /**
   * More instances of instrumented services, such as a second replica or a new version. They
   * get no traffic until `route` names them. A service with extra instances names its first
   * one `<service>-1`.
   */
  extraInstances?: ExtraInstance[];
  log?: DemoLogger;
}

/** One more process of a demo service. */
export interface ExtraInstance {
  service: ServiceName;
  /** service.instance.id, unique among the instances of the service. */
  instance: string;
  /** service.version; default the demo's version. */
  version?: string;
}

/** The running demo services, each in its own Node process. */
export interface DemoServices {
  /** Base URL of each service on 127.0.0.1. */
  readonly urls: Readonly<Record<ServiceName, string>>;
  /**
   * Sends fault settings to every service process, or only to the one with service.instance.id
   * `instance`, and waits until they have applied them.
   */
  setFaults(faults: FaultSettings, instance?: string): Promise<void>;
  /** Makes the callers of `service` spread their calls over the named instances, round robin. */
  route(service: ServiceName, instances: string[]): Promise<void>;
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
  payment: ['fraud'],
  fraud: [],
  inventory: ['stock-api'],
  'stock-api': [],
};

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
  const extras = options.extraInstances ?? [];
  const processes = [
    ...SERVICE_NAMES.map((service) => {
      const instance = extras.some((extra) => extra.service === service)
        ? `${service}-1`
        : undefined;
      return new ServiceProcess(createProcessConfig(service, options, instance), log);
    }),
    ...extras.map(
      (extra) =>
        new ServiceProcess(
          createProcessConfig(extra.service, options, extra.instance, extra.version),
          log,
        ),
    ),
  ];
  const stopAll = () => Promise.all(processes.map((child) => child.stop(stopTimeoutMs)));

  try {
    const ports = await Promise.all(
      processes.map((child) => child.waitUntilReady(options.startTimeoutMs ?? 30_000)),
    );
    const urls = Object.fromEntries(
      SERVICE_NAMES.map((service, index) => [service, `http://127.0.0.1:${ports[index]}`]),
    ) as Record<ServiceName, string>;
    const instanceUrls = new Map(
      processes.map((child, index) => [
        child.instance ?? child.name,
        `http://127.0.0.1:${ports[index]}`,
      ]),
    );

    const routing = new Routing(processes, urls, instanceUrls);
    await routing.configureAll();
    log.info({ urls }, 'demo services started');
    return createHandle(processes, routing, log, stopAll);
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** Instances that each caller spreads its calls over. Changing them configures the callers again. */
class Routing {
  private readonly replicas = new Map<ServiceName, string[]>();

  constructor(
    private readonly processes: ServiceProcess[],
    private readonly urls: Record<ServiceName, string>,
    private readonly instanceUrls: Map<string, string>,
  ) {}

  get serviceUrls(): Readonly<Record<ServiceName, string>> {
    return this.urls;
  }

  async route(service: ServiceName, instances: string[]): Promise<void> {
    const list = instances.map((instance) => {
      const url = this.instanceUrls.get(instance);
      if (!url) {
        throw new Error(
          `unknown instance ${JSON.stringify(instance)} of ${service}: expected one of ${[...this.instanceUrls.keys()].join(', ')}`,
        );
      }
      return url;
    });
    this.replicas.set(service, list);
    await this.configureAll();
  }

  configureAll(): Promise<unknown> {
    return Promise.all(
      this.processes.map((child) => {
        const targets = DOWNSTREAM[child.name];
        const replicas: ReplicaUrls = {};
        for (const target of targets) {
          const list = this.replicas.get(target);
          if (list) replicas[target] = list;
        }
        return child.request({
          type: 'configure',
          downstream: pickUrls(this.urls, targets),
          replicas,
        });
      }),
    );
  }
}

function createHandle(
  processes: ServiceProcess[],
  routing: Routing,
  log: DemoLogger,
  stopAll: () => Promise<unknown>,
): DemoServices {
  let stopped: Promise<void> | undefined;

  return {
    urls: routing.serviceUrls,
    setFaults: async (faults, instance) => {
      const problems = findFaultProblems(faults);
      if (problems.length > 0) {
        throw new Error(`invalid fault settings: ${problems.join('; ')}`);
      }
      const targets = instance
        ? processes.filter((child) => child.instance === instance)
        : processes;
      await Promise.all(targets.map((child) => child.request({ type: 'set-faults', faults })));
      log.info({ faults, instance }, 'faults applied');
    },
    route: (service, instances) => routing.route(service, instances),
    stop: () => {
      stopped ??= stopAll().then(() => log.info({}, 'demo services stopped'));
      return stopped;
    },
  };
}

function createProcessConfig(
  service: ServiceName,
  options: DemoServicesOptions,
  instance?: string,
  version?: string,
): ServiceProcessConfig {
  const offset = instance ? Number(instance.replace(/\D/g, '')) * 31 || 0 : 0;
  return {
    service,
    instance,
    serviceVersion: version ?? options.serviceVersion ?? '1.4.2',
    environment: options.environment ?? 'demo',
    otlpEndpoint: options.otlpEndpoint,
    batchDelayMs: options.batchDelayMs ?? 500,
    seed:
      options.seed === undefined
        ? undefined
        : options.seed + SERVICE_NAMES.indexOf(service) + offset,
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
