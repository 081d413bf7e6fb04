import { FaultlineError } from './errors';

const DURATION_UNITS_NS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
  d: 86_400_000_000_000n,
};
const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)$/;

/**
 * Parses a time parameter given as milliseconds since the Unix epoch or as an RFC 3339
 * timestamp, and returns milliseconds.
 */
export function parseTimeParam(name: string, value: string): number {
  if (/^\d+$/.test(value)) return Number(value);
  const rfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;
  const parsed = rfc3339.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(parsed)) {
    throw new FaultlineError(
      'FL_INVALID_PARAMETER',
      `invalid ${name} ${JSON.stringify(value)}: expected milliseconds since the epoch (1717000000000) or an RFC 3339 timestamp (2024-05-29T16:26:40Z)`,
    );
  }
  return parsed;
}

/**
 * Parses a duration such as `250ms`, `1.5s`, `15m` or `2h` into nanoseconds; a bare
 * number is milliseconds.
 */
export function parseDurationNs(name: string, value: string): bigint {
  if (/^\d+(\.\d+)?$/.test(value)) return BigInt(Math.round(Number(value) * 1e6));
  const match = DURATION_PATTERN.exec(value.trim());
  if (!match) {
    throw new FaultlineError(
      'FL_INVALID_PARAMETER',
      `invalid ${name} ${JSON.stringify(value)}: expected a duration such as 250ms, 1.5s, 15m or 2h`,
    );
  }
  const [, amount, unit] = match;
  const [whole, fraction = ''] = amount.split('.');
  const scale = DURATION_UNITS_NS[unit];
  const fractionNs = fraction ? (BigInt(fraction) * scale) / 10n ** BigInt(fraction.length) : 0n;
  return BigInt(whole) * scale + fractionNs;
}

/** Formats nanoseconds for people: `850µs`, `42ms`, `1.8s`. */
export function formatDurationNs(ns: bigint | number): string {
  const value = Number(ns);
  if (value < 1e6) return `${Math.round(value / 1e3)}µs`;
  if (value < 1e9) return `${Math.round(value / 1e6)}ms`;
  return `${(value / 1e9).toFixed(value < 1e10 ? 2 : 1)}s`;
}
