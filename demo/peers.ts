import type { RequestOptions } from 'node:http';
import type { ServiceName, ServiceUrls } from './messages';

/**
 * Maps host and port to service names, so the client span of a call can carry peer.service. The
 * receiver needs that name for stock-api, which sends no spans of its own.
 */
export class PeerDirectory {
  private readonly names = new Map<string, ServiceName>();

  update(urls: ServiceUrls): void {
    this.names.clear();
    for (const [name, url] of Object.entries(urls)) {
      const parsed = new URL(url);
      this.names.set(`${parsed.hostname}:${parsed.port}`, name as ServiceName);
    }
  }

  lookup(request: RequestOptions): ServiceName | undefined {
    const host = request.hostname ?? request.host ?? 'localhost';
    return this.names.get(`${host}:${request.port ?? 80}`);
  }
}
