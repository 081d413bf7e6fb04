import type protobuf from 'protobufjs';
import type { AnyValue, KeyValue } from '../model/span';
import { readText, type ReplacementTexts } from './decode';
import { ArrayValueMessage, KeyValueListMessage } from './proto';
import { MAX_VALUE_DEPTH, TOO_DEEP_TEXT, toDouble } from './values';

/**
 * Repair marks of one part of a span, in the order toKeyValues in values.ts adds them.
 * The value is undefined while there are none, so the usual span allocates nothing.
 */
export type Marks = string[] | undefined;

/** The values of an array or kvlist member read, with their marks. */
interface NestedValues<T> {
  values: T[];
  marks: Marks;
}

/** Appends `more` to `marks`, which it may change; returns the result. */
export function joinMarks(marks: Marks, more: Marks): Marks {
  if (more === undefined) return marks;
  if (marks === undefined) return more;
  for (const mark of more) marks.push(mark);
  return marks;
}

/** Adds marks to a span's set, which keeps the first occurrence of each. */
export function addMarks(target: Set<string>, marks: Marks): void {
  if (marks !== undefined) for (const mark of marks) target.add(mark);
}

/** Converts a signed Long to decimal text, through a number where that is exact. */
function decimal(long: protobuf.Long): string {
  const value = long.high * 4294967296 + (long.low >>> 0);
  return Number.isSafeInteger(value) ? String(value) : long.toString();
}

/**
 * Reads attribute values of a protobuf body straight into their OTLP/JSON form, with the
 * repairs of toKeyValues: invalid UTF-8, string length, nesting depth. Fields are chosen
 * by number alone, whatever their wire type, and the reader calls are those of the
 * protobufjs decoder for the same messages, so a body fails here exactly where it fails
 * there.
 *
 * A message may repeat a field, and the last one wins, so marks are known only once a
 * message is read. Each method therefore leaves the marks of what it returns in `marks`,
 * and the caller takes them before it reads on.
 */
export class ValueReader {
  marks: Marks;

  constructor(
    readonly reader: protobuf.Reader,
    readonly texts: ReplacementTexts,
    private readonly maxValueLength: number,
  ) {}

  string(): string {
    return readText(this.reader, this.texts);
  }

  /** Returns the end offset of a length-delimited field. */
  end(): number {
    return this.reader.uint32() + this.reader.pos;
  }

  /**
   * Returns the mark that cleanText gives a text of this body. UTF-8 decoding never
   * yields a lone surrogate, so only texts rebuilt from invalid bytes are marked.
   */
  textMarks(text: string): Marks {
    const { repaired } = this.texts;
    return repaired.size !== 0 && repaired.has(text) ? ['invalid_utf8'] : undefined;
  }

  keyValue(limit: number, depth: number): KeyValue {
    const reader = this.reader;
    let key = '';
    let value: AnyValue | undefined;
    let valueMarks: Marks;
    while (reader.pos < limit) {
      const tag = reader.uint32();
      switch (tag >>> 3) {
        case 1:
          key = this.string();
          break;
        case 2:
          value = this.anyValue(this.end(), depth);
          valueMarks = this.marks;
          break;
        default:
          reader.skipType(tag & 7);
      }
    }
    this.marks = joinMarks(this.textMarks(key), valueMarks);
    return { key, value: value ?? { stringValue: '' } };
  }

  /** Reads an AnyValue; one nested `depth` levels deep keeps no array or kvlist. */
  anyValue(limit: number, depth: number): AnyValue {
    const reader = this.reader;
    let text: string | undefined;
    let bool: boolean | undefined;
    let int: string | undefined;
    let double: number | undefined;
    let array: NestedValues<AnyValue> | undefined;
    let kvlist: NestedValues<KeyValue> | undefined;
    let bytes: string | undefined;
    while (reader.pos < limit) {
      const tag = reader.uint32();
      switch (tag >>> 3) {
        case 1:
          text = this.string();
          break;
        case 2:
          bool = reader.bool();
          break;
        case 3:
          int = decimal(reader.int64() as protobuf.Long);
          break;
        case 4:
          double = toDouble(reader.double());
          break;
        case 5:
          array = { values: this.arrayValue(this.end(), depth), marks: this.marks };
          break;
        case 6:
          kvlist = { values: this.keyValueList(this.end(), depth), marks: this.marks };
          break;
        case 7:
          bytes = (reader.bytes() as Buffer).toString('base64');
          break;
        default:
          reader.skipType(tag & 7);
      }
    }

    this.marks = undefined;
    // The order of preference of toAnyValue, for a body that sets several oneof members.
    if (text !== undefined) return this.stringValue(text);
    if (bool !== undefined) return { boolValue: bool };
    if (int !== undefined) return { intValue: int };
    if (double !== undefined) return { doubleValue: double };
    if (array !== undefined || kvlist !== undefined) return this.nestedValue(array, kvlist, depth);
    return bytes !== undefined ? { bytesValue: bytes } : { stringValue: '' };
  }

  /** Returns the array, else the kvlist, or the text that replaces them past the depth limit. */
  private nestedValue(
    array: NestedValues<AnyValue> | undefined,
    kvlist: NestedValues<KeyValue> | undefined,
    depth: number,
  ): AnyValue {
    if (depth >= MAX_VALUE_DEPTH) {
      this.marks = ['attribute_depth_truncated'];
      return { stringValue: TOO_DEEP_TEXT };
    }
    if (array !== undefined) {
      this.marks = array.marks;
      return { arrayValue: { values: array.values } };
    }
    this.marks = kvlist?.marks;
    return { kvlistValue: { values: kvlist?.values ?? [] } };
  }

  private stringValue(text: string): AnyValue {
    const marks = this.textMarks(text);
    if (text.length <= this.maxValueLength) {
      this.marks = marks;
      return { stringValue: text };
    }
    this.marks = joinMarks(marks, ['attribute_value_truncated']);
    return { stringValue: text.slice(0, this.maxValueLength) };
  }

  /**
   * Reads the values of an array inside an AnyValue `depth` levels deep. Past the depth
   * limit, protobufjs decodes the rest of the nesting, because the value is replaced
   * anyway and a deeper body must fail as it does in protobufjs (a stack overflow).
   */
  private arrayValue(limit: number, depth: number): AnyValue[] {
    if (depth >= MAX_VALUE_DEPTH) {
      ArrayValueMessage.decode(this.reader, limit - this.reader.pos);
      this.marks = undefined;
      return [];
    }
    const reader = this.reader;
    const values: AnyValue[] = [];
    let marks: Marks;
    while (reader.pos < limit) {
      const tag = reader.uint32();
      if (tag >>> 3 === 1) {
        values.push(this.anyValue(this.end(), depth + 1));
        marks = joinMarks(marks, this.marks);
      } else {
        reader.skipType(tag & 7);
      }
    }
    this.marks = marks;
    return values;
  }

  /** Reads the entries of a kvlist inside an AnyValue `depth` levels deep; see arrayValue. */
  private keyValueList(limit: number, depth: number): KeyValue[] {
    if (depth >= MAX_VALUE_DEPTH) {
      KeyValueListMessage.decode(this.reader, limit - this.reader.pos);
      this.marks = undefined;
      return [];
    }
    return this.keyValues(limit, depth + 1);
  }

  /** Reads the repeated KeyValue field 1 of a message, the attributes of a kvlist. */
  private keyValues(limit: number, depth: number): KeyValue[] {
    const reader = this.reader;
    const values: KeyValue[] = [];
    let marks: Marks;
    while (reader.pos < limit) {
      const tag = reader.uint32();
      if (tag >>> 3 === 1) {
        values.push(this.keyValue(this.end(), depth));
        marks = joinMarks(marks, this.marks);
      } else {
        reader.skipType(tag & 7);
      }
    }
    this.marks = marks;
    return values;
  }
}
