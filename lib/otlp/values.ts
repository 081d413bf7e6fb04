import type { AnyValue, KeyValue } from '../model/span';
import type { OtlpAnyValue, OtlpKeyValue } from './request';

const HEX_PATTERN = /^[0-9a-fA-F]*$/;

function has(object: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(object, key);
}

/**
 * Converts a trace or span id to lowercase hex. Accepts the bytes that the protobuf
 * decoder yields and the hex text of OTLP/JSON. Returns an empty string for an absent
 * id and undefined for one that is not hex.
 */
export function idToHex(value: unknown): string | undefined {
  if (value === undefined || value === null) return '';
  if (value instanceof Uint8Array)
    return Buffer.from(value.buffer, value.byteOffset, value.length).toString('hex');
  if (typeof value === 'string')
    return HEX_PATTERN.test(value) && value.length % 2 === 0 ? value.toLowerCase() : undefined;
  return undefined;
}

/** Converts a 64-bit integer (protobufjs Long, decimal string or number) to a decimal string. */
export function toDecimalString(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return '0';
  if (typeof value === 'string')
    return /^-?\d+$/.test(value) ? value.replace(/^(-?)0+(?=\d)/, '$1') : undefined;
  if (typeof value === 'number')
    return Number.isFinite(value) ? BigInt(Math.trunc(value)).toString() : undefined;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'object' && has(value as object, 'low') && has(value as object, 'high')) {
    return String(value);
  }
  return undefined;
}

/** Converts a small unsigned count or flag field; anything not a finite number becomes 0. */
export function toCount(value: unknown): number {
  const number = typeof value === 'number' ? value : Number(value ?? 0);
  return Number.isFinite(number) && number >= 0 ? Math.trunc(number) : 0;
}

/** Converts an enum given as its number or, in OTLP/JSON, its name, to the number. */
export function toEnumNumber(value: unknown, names: readonly string[]): number {
  if (typeof value === 'number') return Number.isInteger(value) ? value : 0;
  if (typeof value === 'string') {
    const index = names.indexOf(value);
    if (index >= 0) return index;
    const number = Number(value);
    return Number.isInteger(number) ? number : 0;
  }
  return 0;
}

function toBase64(value: unknown): string {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  return typeof value === 'string' ? value : '';
}

/** Converts a decoded `AnyValue` to its OTLP/JSON form; an empty value becomes an empty string. */
export function toAnyValue(value: OtlpAnyValue | null | undefined, depth = 0): AnyValue {
  if (!value) return { stringValue: '' };
  if (has(value, 'stringValue') && value.stringValue !== null) {
    return { stringValue: String(value.stringValue) };
  }
  if (has(value, 'boolValue') && value.boolValue !== null)
    return { boolValue: Boolean(value.boolValue) };
  if (has(value, 'intValue') && value.intValue !== null) {
    return { intValue: toDecimalString(value.intValue) ?? '0' };
  }
  if (has(value, 'doubleValue') && value.doubleValue !== null) {
    return { doubleValue: Number(value.doubleValue) };
  }
  if (has(value, 'arrayValue') && value.arrayValue) {
    const values = value.arrayValue.values ?? [];
    return { arrayValue: { values: values.map((item) => toAnyValue(item, depth + 1)) } };
  }
  if (has(value, 'kvlistValue') && value.kvlistValue) {
    return { kvlistValue: { values: toKeyValues(value.kvlistValue.values, depth + 1) } };
  }
  if (has(value, 'bytesValue') && value.bytesValue !== null)
    return { bytesValue: toBase64(value.bytesValue) };
  return { stringValue: '' };
}

export function toKeyValues(list: OtlpKeyValue[] | null | undefined, depth = 0): KeyValue[] {
  if (!Array.isArray(list)) return [];
  const result: KeyValue[] = [];
  for (const item of list) {
    if (!item || typeof item.key !== 'string') continue;
    result.push({ key: item.key, value: toAnyValue(item.value, depth) });
  }
  return result;
}
