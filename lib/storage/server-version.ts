import { createClient } from '@clickhouse/client';
import { FaultlineError, errorMessage } from '../errors';

/**
 * Oldest ClickHouse server the schema runs on. The schema needs the Map type without
 * the experimental flag (21.8), Bool (21.12), the `prefer_column_name_to_alias` and
 * `output_format_json_quote_64bit_floats` settings the client sends, `ttl_only_drop_parts`
 * and `non_replicated_deduplication_window`; 22.8 is the first long-term-support release
 * that has them all.
 * NOTE: the schema is tested on the embedded engine (chDB 3.4) only; the refusal path is
 * tested against a real 18.16 server.
 */
export const MIN_SERVER_VERSION = '22.8';

/** Compares dotted version numbers: negative when `a` is older than `b`. */
export function compareVersions(a: string, b: string): number {
  const left = a.split('.').map((part) => Number.parseInt(part, 10) || 0);
  const right = b.split('.').map((part) => Number.parseInt(part, 10) || 0);
  for (let index = 0; index < Math.max(left.length, right.length); index += 1) {
    const difference = (left[index] ?? 0) - (right[index] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}

/**
 * Reads the server's version with a client that sends no settings, because an old
 * server rejects the settings that the storage client sends before it returns anything,
 * and raises FL_UNSUPPORTED_SERVER when it is older than `MIN_SERVER_VERSION`.
 */
export async function checkServerVersion(url: string, location: string): Promise<string> {
  const client = createClient({ url, request_timeout: 10_000 });
  let version: string;
  try {
    const result = await client.query({ query: 'SELECT version() AS version', format: 'JSON' });
    const body = await result.json<{ version: string }>();
    version = String(body.data[0]?.version ?? '');
  } catch (error) {
    throw new FaultlineError(
      'FL_STORAGE_UNAVAILABLE',
      `could not read the version of the ClickHouse server at ${location}: ${errorMessage(error)}; check the URL, the user and that the server is running`,
      { cause: error },
    );
  } finally {
    await client.close();
  }
  if (compareVersions(version, MIN_SERVER_VERSION) < 0) {
    throw new FaultlineError(
      'FL_UNSUPPORTED_SERVER',
      `ClickHouse server ${version} at ${location} is older than ${MIN_SERVER_VERSION}, the oldest version the Faultline schema runs on; upgrade the server to ${MIN_SERVER_VERSION} or later`,
    );
  }
  return version;
}
