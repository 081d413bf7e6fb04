import type { RequestOptions } from 'node:http';

/**
 * Creates an ignoreOutgoingRequestHook for the HTTP instrumentation that matches requests to
 * `exportUrl`: same host name, port and path, ignoring the query. The OTLP exporter already
 * suppresses tracing of its own requests, so this hook is a second guard that also covers other
 * clients posting to the same receiver.
 *
 * NOTE: host names are compared as written, so a request to 127.0.0.1 does not match an export
 * URL with localhost, and such a request is traced.
 */
export function createExportRequestFilter(
  exportUrl: string | URL,
): (request: RequestOptions) => boolean {
  const target = new URL(exportUrl);
  const targetHost = normalizeHost(target.hostname);
  const targetPort = target.port || defaultPort(target.protocol);
  const targetPath = target.pathname;

  return (request) => {
    const host = normalizeHost(request.hostname ?? request.host ?? 'localhost');
    const port = request.port ? String(request.port) : defaultPort(request.protocol ?? 'http:');
    const path = (request.path ?? '/').split('?')[0];

    return host === targetHost && port === targetPort && path === targetPath;
  };
}

function normalizeHost(host: string): string {
  return host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
}

function defaultPort(protocol: string): string {
  return protocol === 'https:' ? '443' : '80';
}
