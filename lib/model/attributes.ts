import type { AnyValue, KeyValue } from './span';

/** A plain JSON value of an attribute, as the query API returns it. */
export type PlainValue =
  | string
  | number
  | boolean
  | null
  | PlainValue[]
  | { [key: string]: PlainValue };

/**
 * Converts an OTLP value to plain JSON. Integers outside the safe range stay decimal
 * strings so that no digit is lost, NaN and the infinities become `NaN`, `Infinity` and
 * `-Infinity`, and bytes stay base64.
 */
export function toPlainValue(value: AnyValue): PlainValue {
  if ('stringValue' in value) return value.stringValue;
  if ('boolValue' in value) return value.boolValue;
  if ('intValue' in value) {
    const asNumber = Number(value.intValue);
    return Number.isSafeInteger(asNumber) ? asNumber : value.intValue;
  }
  if ('doubleValue' in value) {
    // JSON has no NaN or infinity, so they become the strings of the OTLP/JSON mapping.
    return Number.isFinite(value.doubleValue) ? value.doubleValue : String(value.doubleValue);
  }
  if ('arrayValue' in value) return value.arrayValue.values.map(toPlainValue);
  if ('kvlistValue' in value) return toPlainObject(value.kvlistValue.values);
  if ('bytesValue' in value) return value.bytesValue;
  return null;
}

export function toPlainObject(attributes: KeyValue[]): { [key: string]: PlainValue } {
  const result: { [key: string]: PlainValue } = {};
  for (const { key, value } of attributes) {
    result[key] = toPlainValue(value);
  }
  return result;
}

/** Returns the attribute's value as text, or undefined when the key is absent. */
export function attributeText(attributes: KeyValue[], key: string): string | undefined {
  const found = attributes.find((attribute) => attribute.key === key);
  if (!found) return undefined;
  const plain = toPlainValue(found.value);
  return typeof plain === 'object' && plain !== null ? JSON.stringify(plain) : String(plain);
}
