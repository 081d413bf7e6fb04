import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { RequestListener } from 'node:http';
import { FaultlineError } from './errors';

/** An HTTP server that is listening, with the port it got. */
export interface ListeningServer {
  server: http.Server;
  port: number;
  /**
   * Stops accepting connections and resolves when the open ones have ended; connections
   * still open after `deadlineMs` are cut.
   */
  close(deadlineMs?: number): Promise<void>;
}

/** Setting that chose a port, named in the error when the port is in use. */
export interface PortSetting {
  env: string;
  flag: string;
}

/** Errors of a host that does not resolve, or that is not an address of this machine. */
const BAD_HOST_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'EAI_NONAME']);

/** Turns a failed bind into an error that names the port or host, its setting and the fix. */
export function bindError(error: unknown, host: string, port: number, setting: PortSetting) {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code && BAD_HOST_CODES.has(code)) {
    return new FaultlineError(
      'FL_INVALID_CONFIG',
      `cannot listen on host ${JSON.stringify(host)} (${code}): set FAULTLINE_HOST or --host to an address of this machine, such as 127.0.0.1, or 0.0.0.0 for every interface`,
    );
  }
  const inUse = code === 'EADDRINUSE' || /address already in use/i.test(String(error));
  if (!inUse) return error;
  return new FaultlineError(
    'FL_PORT_IN_USE',
    `port ${port} on ${host} is already in use: stop the process that holds it, or choose another port with ${setting.env} or ${setting.flag} (0 picks a free port)`,
  );
}

/**
 * Binds each port on `host` and closes it again, so that a start fails on a taken port
 * before it opens storage. Port 0 is skipped. NOTE: another process can still take a port
 * between this check and the real bind, which then fails with the same error.
 */
export async function checkPortsFree(
  host: string,
  ports: { port: number; setting: PortSetting }[],
): Promise<void> {
  for (const { port, setting } of ports) {
    if (port === 0) continue;
    await new Promise<void>((resolve, reject) => {
      const probe = net.createServer();
      probe.once('error', (error) => reject(bindError(error, host, port, setting)));
      probe.listen(port, host, () => probe.close(() => resolve()));
    });
  }
}

/** Starts an HTTP server on `host:port`; port 0 picks a free one. */
export function listen(
  handler: RequestListener,
  host: string,
  port: number,
  setting: PortSetting,
): Promise<ListeningServer> {
  const server = http.createServer(handler);
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(bindError(error, host, port, setting));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      let closing: Promise<void> | undefined;
      resolve({
        server,
        port: (server.address() as AddressInfo).port,
        close(deadlineMs = 5000) {
          closing ??= new Promise<void>((done) => {
            const timer = setTimeout(() => server.closeAllConnections(), deadlineMs);
            server.close(() => {
              clearTimeout(timer);
              done();
            });
            server.closeIdleConnections();
          });
          return closing;
        },
      });
    });
  });
}
