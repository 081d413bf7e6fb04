import fs from 'node:fs';
import path from 'node:path';
import type { SdkLogger } from './logger';

const API_PACKAGE = '@opentelemetry/api';

/**
 * Returns the version of the `@opentelemetry/api` package that resolves from `directory`,
 * with its folder, or undefined when none does.
 */
export function resolveApiPackage(
  directory: string,
): { folder: string; version: string } | undefined {
  let entry: string;
  try {
    entry = require.resolve(API_PACKAGE, { paths: [directory] });
  } catch {
    return undefined;
  }
  // The package's exports map has no ./package.json, so the folder comes from the entry.
  const marker = `${path.sep}${API_PACKAGE.replace('/', path.sep)}${path.sep}`;
  const at = entry.lastIndexOf(marker);
  if (at < 0) return undefined;
  const folder = entry.slice(0, at + marker.length - 1);
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(folder, 'package.json'), 'utf8'));
    return typeof manifest.version === 'string' ? { folder, version: manifest.version } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Returns whether an API copy of version `other` uses the tracer provider that a copy of
 * version `own` registered. The OpenTelemetry API accepts a registration of the same major
 * version and the same or a later minor version.
 */
export function usesRegistration(other: string, own: string): boolean {
  const [otherMajor, otherMinor] = other.split('.').map(Number);
  const [ownMajor, ownMinor] = own.split('.').map(Number);
  return otherMajor === ownMajor && otherMinor <= ownMinor;
}

/**
 * Warns when the service resolves its own copy of `@opentelemetry/api` that ignores the
 * tracer provider this SDK registered. Spans, exceptions and statuses recorded through
 * that copy are dropped without an error. The service's copy is looked up from the folder
 * of its entry script, else from the working folder.
 */
export function warnOnIgnoringApiCopy(logger: SdkLogger): void {
  const own = resolveApiPackage(__dirname);
  const entry = process.argv[1];
  const service = resolveApiPackage(entry ? path.dirname(path.resolve(entry)) : process.cwd());
  if (!own || !service || service.folder === own.folder) return;
  if (usesRegistration(service.version, own.version)) return;
  logger.warn(
    `the service loads ${API_PACKAGE} ${service.version} from ${service.folder}, which ignores ` +
      `the tracing that this SDK registered with ${API_PACKAGE} ${own.version}, so spans, ` +
      `exceptions and statuses recorded through it are dropped. Import trace and ` +
      `SpanStatusCode from @faultline/sdk, or install ${API_PACKAGE}@${own.version} in the service.`,
  );
}
