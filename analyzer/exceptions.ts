import { attributeText } from '../lib/model/attributes';
import type { SpanRecord } from '../lib/model/span';

/** Exceptions of one type whose messages differ only in ids, numbers and quoted values. */
export interface ExceptionGroup {
  service: string;
  type: string;
  /** The message with ids, numbers, addresses and quoted values replaced by placeholders. */
  message: string;
  /** One message as recorded, for the reader. */
  example: string;
  count: number;
}

const REPLACEMENTS: [RegExp, string][] = [
  [/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '<uuid>'],
  [/\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b/g, '<ip>'],
  [/\b[\w.+-]+@[\w-]+\.[\w.-]+\b/g, '<email>'],
  [/"[^"]*"|'[^']*'/g, '<str>'],
  [/\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b/gi, '<hex>'],
  [/\b[A-Za-z]+_[A-Za-z0-9]{8,}\b/g, '<id>'],
  [/\d+(?:\.\d+)?/g, '<n>'],
];

/**
 * Normalizes an exception message so that messages that differ only in variable parts
 * (ids, numbers, addresses, quoted values) fall into one group.
 */
export function normalizeMessage(message: string): string {
  let text = message.trim();
  for (const [pattern, placeholder] of REPLACEMENTS) text = text.replace(pattern, placeholder);
  return text.replace(/\s+/g, ' ').slice(0, 300);
}

/** Exception type and message of a span: its `exception` events, else its status message. */
export function spanExceptions(span: SpanRecord): { type: string; message: string }[] {
  const found = span.events
    .filter((event) => event.name === 'exception')
    .map((event) => ({
      type: attributeText(event.attributes, 'exception.type') ?? '',
      message: attributeText(event.attributes, 'exception.message') ?? '',
    }));
  if (found.length > 0) return found;
  if (span.statusMessage) return [{ type: '', message: span.statusMessage }];
  if (span.httpStatusCode >= 400) return [{ type: `HTTP ${span.httpStatusCode}`, message: '' }];
  return [];
}

/** Groups the exceptions of the given spans by service, type and normalized message, largest first. */
export function groupExceptions(spans: SpanRecord[], limit = 5): ExceptionGroup[] {
  const groups = new Map<string, ExceptionGroup>();
  for (const span of spans) {
    for (const exception of spanExceptions(span)) {
      const message = normalizeMessage(exception.message);
      const key = [span.serviceName, exception.type, message].join('\x1f');
      const group = groups.get(key) ?? {
        service: span.serviceName,
        type: exception.type,
        message,
        example: exception.message,
        count: 0,
      };
      group.count += 1;
      groups.set(key, group);
    }
  }
  return [...groups.values()].sort((a, b) => b.count - a.count).slice(0, limit);
}
