import type { RequestOptions } from 'node:http';
import type { ReplicaUrls, ServiceName, ServiceUrls } from './messages';

/**
 * Maps host and port to service names, so the client span of a call can carry peer.service. The
 * receiver needs that name for stock-api, which sends no spans of its own.
 */
export class PeerDirectory {
  private readonly names = new Map<string, ServiceName>();

  update(urls: ServiceUrls, replicas: ReplicaUrls = {}): void {
    this.names.clear();
    const entries: [string, string][] = Object.entries(urls);
    for (const [name, list] of Object.entries(replicas)) {
      for (const url of list) entries.push([name, url]);
    }
    for (const [name, url] of entries) {
      const parsed = new URL(url);
      this.names.set(`${parsed.hostname}:${parsed.port}`, name as ServiceName);
    }
  }

  lookup(request: RequestOptions): ServiceName | undefined {
    const host = request.hostname ?? request.host ?? 'localhost';
    return this.names.get(`${host}:${request.port ?? 80}`);
  }
}
