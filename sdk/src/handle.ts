import { trace } from '@opentelemetry/api';
import type { TracingConfig } from './config';
import { describeError, type SdkLogger } from './logger';
import type { TracingHandle } from './options';

interface ActiveHandleParts {
  config: TracingConfig;
  logger: SdkLogger;
  /** Exports the ended spans. May reject. */
  flush(): Promise<void>;
  /** Exports the pending spans and shuts the SDK down. May reject. */
  shutdownSdk(): Promise<void>;
  /** Unregisters the SDK from the global API, also when shutdownSdk failed or timed out. */
  release(): void;
}

export function createActiveHandle(parts: ActiveHandleParts): TracingHandle {
  const { config, logger } = parts;
  // The global provider is a proxy that keeps pointing at this SDK after shutdown unregisters it.
  const tracerProvider = trace.getTracerProvider();
  let shutdownPromise: Promise<void> | undefined;

  const runShutdown = async (): Promise<void> => {
    try {
      await withTimeout(parts.shutdownSdk(), config.shutdownTimeoutMs, 'shutdown');
    } catch (error) {
      logger.error(
        `failed to flush spans at shutdown: ${describeError(error)}. ` +
          'Spans that had not been exported are lost.',
      );
    } finally {
      parts.release();
    }
  };

  return {
    get isActive() {
      return shutdownPromise === undefined;
    },
    serviceName: config.serviceName,
    tracesUrl: config.tracesUrl,
    tracerProvider,
    getTracer: (name = config.serviceName, version) => tracerProvider.getTracer(name, version),
    forceFlush: async () => {
      if (shutdownPromise) {
        return;
      }
      try {
        await withTimeout(parts.flush(), config.shutdownTimeoutMs, 'flush');
      } catch (error) {
        logger.error(`failed to flush spans: ${describeError(error)}`);
      }
    },
    shutdown: () => {
      shutdownPromise ??= runShutdown();
      return shutdownPromise;
    },
  };
}

/** Returns a handle for a process that runs without tracing, whose methods do nothing. */
export function createNoopHandle(serviceName: string, tracesUrl: string): TracingHandle {
  const tracerProvider = trace.getTracerProvider();
  const done = Promise.resolve();
  return {
    isActive: false,
    serviceName,
    tracesUrl,
    tracerProvider,
    getTracer: (name = serviceName, version) => tracerProvider.getTracer(name, version),
    forceFlush: () => done,
    shutdown: () => done,
  };
}

/** Rejects when `promise` has not settled after `timeoutMs`. The timer does not keep Node alive. */
async function withTimeout(promise: Promise<void>, timeoutMs: number, action: string) {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${action} timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    timer.unref();
  });

  try {
    await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
