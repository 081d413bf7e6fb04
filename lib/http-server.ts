import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RequestListener } from 'node:http';

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

/** Starts an HTTP server on `host:port`; port 0 picks a free one. */
export function listen(
  handler: RequestListener,
  host: string,
  port: number,
): Promise<ListeningServer> {
  const server = http.createServer(handler);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
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
