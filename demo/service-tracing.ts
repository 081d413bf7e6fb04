import { startTracing, type TracingHandle } from '@faultline/sdk';
import {
  INSTRUMENTED_SERVICES,
  SERVICE_CONFIG_ENV,
  SERVICE_NAMES,
  type ServiceProcessConfig,
} from './messages';
import { PeerDirectory } from './peers';

/**
 * Starts tracing for a demo service process when it is imported. service-main imports this module
 * first, before anything loads `http` or `express`, because the instrumentations patch those
 * modules when they are loaded.
 */

export const config = readConfig();
export const peers = new PeerDirectory();
export const tracing: TracingHandle | undefined = INSTRUMENTED_SERVICES.includes(config.service)
  ? startTracing({
      serviceName: config.service,
      serviceVersion: config.serviceVersion,
      environment: config.environment,
      endpoint: config.otlpEndpoint,
      batchDelayMs: config.batchDelayMs,
      resourceAttributes: config.instance ? { 'service.instance.id': config.instance } : {},
      // Short enough that a service whose receiver is gone still exits within the supervisor's
      // stop timeout, after the drain of open requests.
      shutdownTimeoutMs: 3000,
      httpInstrumentation: {
        startOutgoingSpanHook: (request) => {
          const peer = peers.lookup(request);
          return peer ? { 'peer.service': peer } : {};
        },
      },
    })
  : undefined;

function readConfig(): ServiceProcessConfig {
  const text = process.env[SERVICE_CONFIG_ENV];
  if (!text) {
    throw new Error(
      `${SERVICE_CONFIG_ENV} is not set. Start demo services with startDemoServices, which sets it.`,
    );
  }

  const parsed = JSON.parse(text) as ServiceProcessConfig;
  if (!SERVICE_NAMES.includes(parsed.service)) {
    throw new Error(
      `invalid service ${JSON.stringify(parsed.service)} in ${SERVICE_CONFIG_ENV}: ` +
        `expected one of ${SERVICE_NAMES.join(', ')}`,
    );
  }
  return parsed;
}
