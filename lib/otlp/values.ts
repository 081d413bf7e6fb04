import type { AnyValue, KeyValue } from '../model/span';
import type { OtlpAnyValue, OtlpKeyValue } from './request';

const HEX_PATTERN = /^[0-9a-fA-F]*$/;
const BASE64_PATTERN = /^[A-Za-z0-9+/]+={0,2}$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Nesting of array and kvlist values kept; deeper values are replaced and marked. */
export const MAX_VALUE_DEPTH = 16;

/** The string value that replaces an array or kvlist nested deeper than MAX_VALUE_DEPTH. */
export const TOO_DEEP_TEXT = `[nested deeper than ${MAX_VALUE_DEPTH} levels]`;

/** Limits applied while converting values, and the repair marks they produce. */
export interface ValueContext {
  /** Characters kept of a string attribute value. */
  maxValueLength: number;
  /** Repairs made so far, such as `attribute_value_truncated`; the caller owns the set. */
  marks: Set<string>;
  /**
   * Texts that the decoder rebuilt from invalid UTF-8 (see `REPAIRED_TEXTS`). Without it,
   * any U+FFFD counts as a repair.
   */
  repairedTexts?: ReadonlySet<string>;
}

/**
 * Key under which a decoder attaches to a decoded request the set of texts it rebuilt
 * from invalid UTF-8, so that a U+FFFD the client sent is not marked as a repair.
 */
export const REPAIRED_TEXTS = Symbol('repairedTexts');

/** A context without limits, for callers that only convert. */
export function unlimitedContext(): ValueContext {
  return { maxValueLength: Number.MAX_SAFE_INTEGER, marks: new Set() };
}

function has(object: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(object, key);
}

/**
 * Converts a trace or span id to lowercase hex. Accepts the bytes that the protobuf
 * decoder yields, the hex text of OTLP/JSON, and the base64 text that generic protobuf
 * JSON writers use for bytes. Returns an empty string for an absent id and undefined for
 * one that is neither. protobufjs gives a bytes field absent from the body as its
 * default, an empty plain array, which is absent as well.
 */
export function idToHex(value: unknown): string | undefined {
  if (value === undefined || value === null) return '';
  if (Array.isArray(value) && value.length === 0) return '';
  if (value instanceof Uint8Array)
    return Buffer.from(value.buffer, value.byteOffset, value.length).toString('hex');
  if (typeof value !== 'string') return undefined;
  if (HEX_PATTERN.test(value) && value.length % 2 === 0) return value.toLowerCase();
  // Base64 of 8 or 16 bytes is 12 or 24 characters; hex ids never have those lengths.
  if ((value.length === 12 || value.length === 24) && BASE64_PATTERN.test(value)) {
    return Buffer.from(value, 'base64').toString('hex');
  }
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
  if (typeof value === 'object') {
    // A protobufjs Long gives its two 32-bit halves. Its text is not used, since a JSON
    // object with the same fields has no such method.
    const { low, high, unsigned } = value as { low?: unknown; high?: unknown; unsigned?: unknown };
    if (typeof low === 'number' && typeof high === 'number') {
      const bits = (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0);
      return (unsigned === true ? bits : BigInt.asIntN(64, bits)).toString();
    }
  }
  return undefined;
}

/**
 * Converts a number or numeric text to a number, and anything else, such as an object or
 * array from a JSON body, to NaN. Number() would throw for an object whose toString is
 * not a function.
 */
function numberOf(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'object' || typeof value === 'symbol' || typeof value === 'function') {
    return NaN;
  }
  return Number(value);
}

/** Converts a small unsigned count or flag field; anything not a finite number becomes 0. */
export function toCount(value: unknown): number {
  const number = numberOf(value ?? 0);
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

/**
 * Makes text safe to store: lone surrogates (from JSON escapes) become U+FFFD. The
 * decoders already replace invalid UTF-8 bytes with U+FFFD, so both repairs mark the span
 * with `invalid_utf8`.
 */
export function cleanText(value: unknown, context: ValueContext): string {
  if (value === undefined || value === null) return '';
  // String() throws for an object whose toString is not a function, which JSON can send.
  const text =
    typeof value === 'string'
      ? value
      : typeof value === 'object'
        ? JSON.stringify(value)
        : String(value);
  LONE_SURROGATE.lastIndex = 0;
  if (LONE_SURROGATE.test(text)) {
    context.marks.add('invalid_utf8');
    return text.replace(LONE_SURROGATE, '\uFFFD');
  }
  const repaired = context.repairedTexts?.has(text) ?? text.includes('\uFFFD');
  if (repaired) context.marks.add('invalid_utf8');
  return text;
}

function limitLength(text: string, context: ValueContext): string {
  if (text.length <= context.maxValueLength) return text;
  context.marks.add('attribute_value_truncated');
  return text.slice(0, context.maxValueLength);
}

function toBase64(value: unknown): string {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  return typeof value === 'string' ? value : '';
}

function isSet(value: OtlpAnyValue, key: keyof OtlpAnyValue): boolean {
  return has(value, key) && value[key] !== null && value[key] !== undefined;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * Converts an int64 attribute value. A number outside the int64 range (possible only in
 * OTLP/JSON) would wrap around in storage, so its text is kept as a string value instead,
 * marked `invalid_int`. A value that is not a whole number becomes 0.
 */
function toIntValue(raw: unknown, context: ValueContext): AnyValue {
  const text = toDecimalString(raw) ?? '0';
  const number = BigInt(text);
  if (number >= INT64_MIN && number <= INT64_MAX) return { intValue: text };
  context.marks.add('invalid_int');
  return { stringValue: text };
}

/** Converts a decoded `AnyValue` to its OTLP/JSON form; an empty value becomes an empty string. */
export function toAnyValue(
  value: OtlpAnyValue | null | undefined,
  context: ValueContext = unlimitedContext(),
  depth = 0,
): AnyValue {
  if (!value || typeof value !== 'object') return { stringValue: '' };
  if (isSet(value, 'stringValue')) {
    return { stringValue: limitLength(cleanText(value.stringValue, context), context) };
  }
  if (isSet(value, 'boolValue')) return { boolValue: Boolean(value.boolValue) };
  if (isSet(value, 'intValue')) return toIntValue(value.intValue, context);
  if (isSet(value, 'doubleValue')) return { doubleValue: toDouble(value.doubleValue) };
  if (isSet(value, 'arrayValue') || isSet(value, 'kvlistValue')) {
    return toNestedValue(value, context, depth);
  }
  if (isSet(value, 'bytesValue')) return { bytesValue: toBase64(value.bytesValue) };
  return { stringValue: '' };
}

/**
 * Converts a double. A protobuf body gives a number, NaN and the infinities included, and
 * OTLP/JSON writes NaN and the infinities as strings. Any other text becomes 0.
 */
export function toDouble(value: unknown): number {
  if (typeof value === 'number') return value;
  const number = numberOf(value);
  return Number.isNaN(number) && value !== 'NaN' ? 0 : number;
}

function toNestedValue(value: OtlpAnyValue, context: ValueContext, depth: number): AnyValue {
  if (depth >= MAX_VALUE_DEPTH) {
    context.marks.add('attribute_depth_truncated');
    return { stringValue: TOO_DEEP_TEXT };
  }
  if (isSet(value, 'arrayValue')) {
    const values = value.arrayValue?.values;
    const list = Array.isArray(values) ? values : [];
    return { arrayValue: { values: list.map((item) => toAnyValue(item, context, depth + 1)) } };
  }
  return { kvlistValue: { values: toKeyValues(value.kvlistValue?.values, context, depth + 1) } };
}

export function toKeyValues(
  list: OtlpKeyValue[] | null | undefined,
  context: ValueContext = unlimitedContext(),
  depth = 0,
): KeyValue[] {
  if (!Array.isArray(list)) return [];
  const result: KeyValue[] = [];
  for (const item of list) {
    if (!item || typeof item.key !== 'string') continue;
    result.push({
      key: cleanText(item.key, context),
      value: toAnyValue(item.value, context, depth),
    });
  }
  return result;
}
