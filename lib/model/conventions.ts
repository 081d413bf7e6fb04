import { attributeText } from './attributes';
import type { KeyValue, SpanKind, StatusCode } from './span';

/**
 * Every span attribute key that `httpStatusCode` and `remoteServiceName` read. A decoder
 * that writes attributes without converting them converts only these.
 */
export const SPAN_CONVENTION_KEYS: ReadonlySet<string> = new Set([
  'http.response.status_code',
  'http.status_code',
  'peer.service',
  'db.system.name',
  'db.system',
  'db.namespace',
  'db.name',
  'messaging.system',
  'messaging.destination.name',
  'messaging.destination',
  'server.address',
  'net.peer.name',
  'net.sock.peer.addr',
  'server.port',
  'net.peer.port',
  'url.full',
  'http.url',
]);

/** Reads the HTTP response status code under its current and its pre-1.21 semantic-convention key. */
export function httpStatusCode(attributes: KeyValue[]): number {
  const text =
    attributeText(attributes, 'http.response.status_code') ??
    attributeText(attributes, 'http.status_code');
  const code = Number(text);
  return Number.isInteger(code) && code >= 100 && code <= 599 ? code : 0;
}

/**
 * Decides whether a span is an error by the OpenTelemetry conventions: status ERROR,
 * an HTTP 5xx on any span, and a 4xx only on the client side, because a 4xx
 * is the caller's fault and not the server's.
 */
export function isErrorSpan(kind: SpanKind, status: StatusCode, httpStatus: number): boolean {
  if (status === 'ERROR') return true;
  if (status === 'OK') return false;
  if (httpStatus >= 500) return true;
  return httpStatus >= 400 && kind === 'CLIENT';
}

/**
 * Names the node that a CLIENT or PRODUCER span calls, for dependency edges whose callee
 * sends no spans of its own: a peer service, a database, a queue or a network address.
 * Returns an empty string for other kinds or when no peer attribute is present.
 */
export function remoteServiceName(kind: SpanKind, attributes: KeyValue[]): string {
  if (kind !== 'CLIENT' && kind !== 'PRODUCER') return '';

  const peerService = attributeText(attributes, 'peer.service');
  if (peerService) return peerService;

  const dbSystem = firstText(attributes, 'db.system.name', 'db.system');
  if (dbSystem) {
    const namespace = firstText(attributes, 'db.namespace', 'db.name');
    return namespace ? `${dbSystem}/${namespace}` : dbSystem;
  }

  const messagingSystem = attributeText(attributes, 'messaging.system');
  if (messagingSystem) {
    const destination = firstText(
      attributes,
      'messaging.destination.name',
      'messaging.destination',
    );
    return destination ? `${messagingSystem}/${destination}` : messagingSystem;
  }

  return networkPeerName(attributes) ?? '';
}

/** Returns the text of the first key present, in the order given. */
function firstText(attributes: KeyValue[], ...keys: string[]): string | undefined {
  for (const key of keys) {
    const text = attributeText(attributes, key);
    if (text !== undefined) return text;
  }
  return undefined;
}

function networkPeerName(attributes: KeyValue[]): string | undefined {
  const address = firstText(attributes, 'server.address', 'net.peer.name', 'net.sock.peer.addr');
  const port = firstText(attributes, 'server.port', 'net.peer.port');
  if (address) return port ? `${address}:${port}` : address;

  const url = firstText(attributes, 'url.full', 'http.url');
  if (!url) return undefined;
  try {
    return new URL(url).host || undefined;
  } catch {
    return undefined;
  }
}
