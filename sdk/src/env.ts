import type { SdkLogger } from './logger';

export type Environment = Readonly<Record<string, string | undefined>>;

/** Returns the trimmed value of an environment variable, or undefined when it is unset or blank. */
export function readEnvString(env: Environment, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

/**
 * Parses a `key1=value1,key2=value2` list as OTEL_RESOURCE_ATTRIBUTES and OTEL_EXPORTER_OTLP_HEADERS
 * use it. Keys and values are trimmed and percent-decoded. An entry without `=`, with an empty key
 * or with a bad percent escape is skipped with a warning that names the variable.
 */
export function parseKeyValueList(
  text: string,
  variable: string,
  logger: SdkLogger,
): Record<string, string> {
  const result: Record<string, string> = {};

  for (const entry of text.split(',')) {
    if (entry.trim() === '') {
      continue;
    }
    const separator = entry.indexOf('=');
    const key = separator > 0 ? decode(entry.slice(0, separator).trim()) : undefined;
    const value = separator > 0 ? decode(entry.slice(separator + 1).trim()) : undefined;

    if (!key || value === undefined) {
      logger.warn(
        `invalid entry in ${variable}: expected key=value with percent-encoded text, ` +
          `got ${JSON.stringify(entry.trim())}. Skipping this entry.`,
      );
      continue;
    }
    result[key] = value;
  }
  return result;
}

function decode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}
