/**
 * Receiver of the SDK's own warnings and errors: invalid options, failed start, failed flush.
 * The SDK calls it a few times at start and stop, never once per span.
 */
export interface SdkLogger {
  warn(message: string): void;
  error(message: string): void;
}

const PREFIX = '@faultline/sdk:';

export const consoleLogger: SdkLogger = {
  warn: (message) => console.warn(PREFIX, message),
  error: (message) => console.error(PREFIX, message),
};

export function isSdkLogger(value: unknown): value is SdkLogger {
  if (typeof value !== 'object' || value === null) {
    return false;
  }
  const candidate = value as Partial<Record<keyof SdkLogger, unknown>>;
  return typeof candidate.warn === 'function' && typeof candidate.error === 'function';
}

/** Wraps a logger so that an exception thrown by it never reaches the host service. */
export function guardLogger(logger: SdkLogger): SdkLogger {
  return {
    warn: (message) => callSafely(() => logger.warn(message)),
    error: (message) => callSafely(() => logger.error(message)),
  };
}

function callSafely(log: () => void): void {
  try {
    log();
  } catch {
    // A broken logger must not break the service, and there is nowhere left to report it.
  }
}

/** Formats a rejected option value for a message: strings quoted, objects by kind. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') {
    return JSON.stringify(value);
  }
  if (typeof value === 'function') {
    return 'a function';
  }
  if (Array.isArray(value)) {
    return 'an array';
  }
  if (typeof value === 'object' && value !== null) {
    return 'an object';
  }
  return String(value);
}

export function describeError(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}
