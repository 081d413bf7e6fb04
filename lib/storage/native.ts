/**
 * ClickHouse's Native format, as its input and output formats use it (no block info and
 * no serialization flags). A block is the column count and the row count as unsigned
 * LEB128 numbers, then each column: its name, its type and its values, column after
 * column. A stream of blocks is a valid input, so blocks written apart can be joined.
 *
 * This module holds the byte writer that the span encoder uses, and a codec for the
 * types the `spans` insert sends, which reads blocks back into rows and writes rows as
 * blocks. The shipper uses it to split a rejected batch into single rows.
 */

const HEX_VALUES = new Int8Array(128).fill(-1);
for (let digit = 0; digit < 16; digit += 1) {
  HEX_VALUES['0123456789abcdef'.charCodeAt(digit)] = digit;
  HEX_VALUES['0123456789ABCDEF'.charCodeAt(digit)] = digit;
}

// A string of at most this many UTF-16 units takes at most 127 UTF-8 bytes, so its length
// fits in one LEB128 byte written before the text.
const SHORT_STRING_UNITS = 42;

// Up to this many bytes, a loop copies faster than Buffer's copy, which checks its
// arguments in JavaScript first.
const SHORT_COPY_BYTES = 64;

/** Growing buffer that writes the values of Native columns. */
export class ByteWriter {
  private buffer: Buffer;
  length = 0;

  constructor(initialBytes = 64 * 1024) {
    this.buffer = Buffer.allocUnsafe(initialBytes);
  }

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + bytes));
    this.buffer.copy(next, 0, 0, this.length);
    this.buffer = next;
  }

  /** Writes an unsigned LEB128 number, as Native writes lengths and counts. */
  leb128(value: number): void {
    this.reserve(10);
    let rest = value;
    while (rest >= 0x80) {
      this.buffer[this.length++] = rest % 0x80 | 0x80;
      rest = Math.floor(rest / 0x80);
    }
    this.buffer[this.length++] = rest;
  }

  /** Writes a String value: its UTF-8 length, then its bytes. */
  string(text: string): void {
    const units = text.length;
    if (units <= SHORT_STRING_UNITS) {
      this.reserve(1 + units * 3);
      const buffer = this.buffer;
      const start = this.length + 1;
      // Short ASCII text is copied byte by byte, which avoids a call into the UTF-8 encoder.
      let index = 0;
      for (; index < units; index += 1) {
        const code = text.charCodeAt(index);
        if (code >= 0x80) break;
        buffer[start + index] = code;
      }
      const bytes = index === units ? units : buffer.write(text, start, 'utf8');
      buffer[this.length] = bytes;
      this.length = start + bytes;
      return;
    }
    const bytes = Buffer.byteLength(text, 'utf8');
    this.leb128(bytes);
    this.reserve(bytes);
    this.length += this.buffer.write(text, this.length, 'utf8');
  }

  /** Writes a String value from its UTF-8 bytes. */
  stringBytes(bytes: Buffer): void {
    this.leb128(bytes.length);
    this.reserve(bytes.length);
    bytes.copy(this.buffer, this.length);
    this.length += bytes.length;
  }

  /** Writes text as UTF-8 bytes without a length, such as a part of a longer value. */
  utf8(text: string): void {
    this.reserve(text.length * 3);
    this.length += this.buffer.write(text, this.length, 'utf8');
  }

  /** Writes a String value from UTF-8 bytes of `source`, from `start` to `end`. */
  stringFrom(source: Buffer, start: number, end: number): void {
    this.leb128(end - start);
    this.copyFrom(source, start, end);
  }

  /** Copies bytes of `source` as they are. */
  copyFrom(source: Buffer, start: number, end: number): void {
    const count = end - start;
    this.reserve(count);
    if (count <= SHORT_COPY_BYTES) {
      const buffer = this.buffer;
      const at = this.length - start;
      for (let index = start; index < end; index += 1) buffer[at + index] = source[index];
    } else {
      source.copy(this.buffer, this.length, start, end);
    }
    this.length += count;
  }

  /**
   * Writes `count` big-endian bytes of `source` from `start` in reverse order: the
   * little-endian UInt128 or UInt64 of an id given as bytes, as `hexId` writes its hex.
   */
  reversedFrom(source: Buffer, start: number, count: number): void {
    this.reserve(count);
    const buffer = this.buffer;
    for (let index = 0; index < count; index += 1) {
      buffer[this.length + index] = source[start + count - 1 - index];
    }
    this.length += count;
  }

  /**
   * Writes the low 32 bits of a number, little-endian, at `at`. A byte store keeps the low
   * 8 bits of its value, so this needs no range checks, unlike Buffer's writeUInt32LE.
   */
  private word(value: number, at: number): void {
    const buffer = this.buffer;
    buffer[at] = value;
    buffer[at + 1] = value >>> 8;
    buffer[at + 2] = value >>> 16;
    buffer[at + 3] = value >>> 24;
  }

  /** Writes a 64-bit integer from its low and high 32 bits, as Int64 or UInt64 store it. */
  int64Parts(low: number, high: number): void {
    this.reserve(8);
    this.word(low, this.length);
    this.word(high, this.length + 4);
    this.length += 8;
  }

  /** Appends the bytes that another writer contains. */
  append(other: ByteWriter): void {
    this.copyFrom(other.buffer, 0, other.length);
  }

  uint8(value: number): void {
    this.reserve(1);
    this.buffer[this.length++] = value;
  }

  int8(value: number): void {
    this.reserve(1);
    this.buffer[this.length++] = value;
  }

  uint16(value: number): void {
    this.reserve(2);
    this.buffer[this.length] = value;
    this.buffer[this.length + 1] = value >>> 8;
    this.length += 2;
  }

  uint32(value: number): void {
    this.reserve(4);
    this.word(value, this.length);
    this.length += 4;
  }

  /** Writes a UInt64 value from a number up to 2^53, such as an array offset. */
  uint64Number(value: number): void {
    this.reserve(8);
    this.word(value % 0x100000000, this.length);
    this.word(Math.floor(value / 0x100000000), this.length + 4);
    this.length += 8;
  }

  uint64(value: bigint): void {
    this.reserve(8);
    this.buffer.writeBigUInt64LE(value, this.length);
    this.length += 8;
  }

  int64(value: bigint): void {
    this.reserve(8);
    this.buffer.writeBigInt64LE(value, this.length);
    this.length += 8;
  }

  float64(value: number): void {
    this.reserve(8);
    this.buffer.writeDoubleLE(value, this.length);
    this.length += 8;
  }

  /**
   * Writes a hex id as the little-endian UInt128 or UInt64 whose value it is, the same
   * number that `reinterpretAsUInt128(reverse(unhex(id)))` gives. A shorter id is padded
   * with leading zeros, so the empty id is 0.
   */
  hexId(hex: string, bytes: number): void {
    const digits = bytes * 2;
    if (hex.length > digits) {
      throw new Error(`invalid id ${JSON.stringify(hex)}: expected at most ${digits} hex digits`);
    }
    this.reserve(bytes);
    const padded = hex.length === digits ? hex : hex.padStart(digits, '0');
    for (let index = 0; index < bytes; index += 1) {
      const at = digits - 2 - index * 2;
      const high = HEX_VALUES[padded.charCodeAt(at)] ?? -1;
      const low = HEX_VALUES[padded.charCodeAt(at + 1)] ?? -1;
      if (high < 0 || low < 0) {
        throw new Error(`invalid id ${JSON.stringify(hex)}: expected hex digits only`);
      }
      this.buffer[this.length++] = high * 16 + low;
    }
  }

  /** Writes zeros, such as the values of a column that is empty in every row. */
  zeros(count: number): void {
    this.reserve(count);
    this.buffer.fill(0, this.length, this.length + count);
    this.length += count;
  }

  /** Copies the written bytes into a buffer of their own and empties the writer. */
  take(): Buffer {
    // Buffer.from(buffer) copies through a slower generic path.
    const bytes = Buffer.allocUnsafe(this.length);
    this.buffer.copy(bytes, 0, 0, this.length);
    this.length = 0;
    return bytes;
  }

  /** Copies the written bytes into `target` at `offset`; returns the offset after them. */
  copyTo(target: Buffer, offset: number): number {
    this.buffer.copy(target, offset, 0, this.length);
    return offset + this.length;
  }
}

// A LowCardinality column in a Native block: a version once a column, then flags that
// give the width of the indexes and mark the dictionary as sent with the column, then the
// dictionary, then the indexes.
const DICTIONARY_VERSION = 1;
const HAS_ADDITIONAL_KEYS = 1 << 9;
const NEEDS_DICTIONARY_UPDATE = 1 << 10;
const INDEX_WIDTHS = [1, 2, 4] as const;

function indexWidthCode(dictionarySize: number): number {
  if (dictionarySize <= 0x100) return 0;
  return dictionarySize <= 0x10000 ? 1 : 2;
}

/**
 * Builds the values of a LowCardinality(String) column of one Native block: every
 * distinct value once, in the order of first use, then an index a row. Spans repeat their
 * resource's attribute list and their attribute keys, which this sends once a block.
 */
export class DictionaryColumn {
  private readonly positions = new Map<string, number>();
  /** Positions of values by their Buffer object, which callers reuse for a repeated value. */
  private readonly identities = new Map<Buffer, number>();
  private readonly dictionary = new ByteWriter(1 << 12);
  private indexes = new Uint32Array(1 << 12);
  private lastValue: Buffer | undefined;
  private lastIndex = 0;
  /** Values added so far. */
  count = 0;

  constructor() {
    this.clear();
  }

  clear(): void {
    this.positions.clear();
    this.identities.clear();
    this.dictionary.length = 0;
    // The engine writes the empty value first in every dictionary, and so does this.
    this.positions.set('', 0);
    this.dictionary.leb128(0);
    this.lastValue = undefined;
    this.count = 0;
  }

  /**
   * Adds a value as UTF-8 bytes. A value given as the same Buffer object as before is
   * found without reading its bytes.
   */
  add(value: Buffer): void {
    let index = this.lastIndex;
    if (value !== this.lastValue) {
      index = this.identities.get(value) ?? this.position(value);
      this.lastValue = value;
      this.lastIndex = index;
    }
    if (this.count === this.indexes.length) {
      const grown = new Uint32Array(this.indexes.length * 2);
      grown.set(this.indexes);
      this.indexes = grown;
    }
    this.indexes[this.count++] = index;
  }

  private position(value: Buffer): number {
    const key = value.toString('latin1');
    let index = this.positions.get(key);
    if (index === undefined) {
      index = this.positions.size;
      this.positions.set(key, index);
      this.dictionary.stringBytes(value);
    }
    this.identities.set(value, index);
    return index;
  }

  /**
   * Writes the dictionary and the indexes, or nothing for a column without values, such
   * as the keys of a map that is empty in every row. The prefix comes before, apart.
   */
  writeTo(writer: ByteWriter): void {
    if (this.count === 0) return;
    const size = this.positions.size;
    const code = indexWidthCode(size);
    writer.uint64Number(code | HAS_ADDITIONAL_KEYS | NEEDS_DICTIONARY_UPDATE);
    writer.uint64Number(size);
    writer.append(this.dictionary);
    writer.uint64Number(this.count);
    const width = INDEX_WIDTHS[code];
    for (let row = 0; row < this.count; row += 1) {
      const index = this.indexes[row];
      if (width === 1) writer.uint8(index);
      else if (width === 2) writer.uint16(index);
      else writer.uint32(index);
    }
  }
}

/**
 * The prefix of a LowCardinality column: its serialization version. It comes first in
 * the column's bytes, before the end offsets of an array or map that contains it.
 */
export const DICTIONARY_PREFIX = (() => {
  const writer = new ByteWriter(8);
  writer.uint64Number(DICTIONARY_VERSION);
  return writer.take();
})();

/** One Native column type of those the span insert sends. */
export type NativeType =
  | { kind: 'uint'; bytes: 1 | 2 | 4 | 8 | 16 }
  | { kind: 'int64' }
  | { kind: 'float64' }
  | { kind: 'bool' }
  | { kind: 'string' }
  | { kind: 'lowCardinality' }
  | { kind: 'enum8'; names: Map<number, string>; values: Map<string, number> }
  | { kind: 'array'; item: NativeType }
  | { kind: 'map'; key: NativeType; value: NativeType };

const UINT_BYTES: Record<string, 1 | 2 | 4 | 8 | 16> = {
  UInt8: 1,
  UInt16: 2,
  UInt32: 4,
  UInt64: 8,
  UInt128: 16,
};

/** Splits `A, B(C, D), E` at the commas outside parentheses and quotes. */
function splitArguments(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let index = 0; index < text.length; index += 1) {
    const char = text[index];
    if (char === "'" && text[index - 1] !== '\\') quoted = !quoted;
    else if (quoted) continue;
    else if (char === '(') depth += 1;
    else if (char === ')') depth -= 1;
    else if (char === ',' && depth === 0) {
      parts.push(text.slice(start, index).trim());
      start = index + 1;
    }
  }
  parts.push(text.slice(start).trim());
  return parts;
}

function parseEnum8(body: string): NativeType {
  const names = new Map<number, string>();
  const values = new Map<string, number>();
  for (const entry of splitArguments(body)) {
    const match = /^'((?:[^'\\]|\\.)*)'\s*=\s*(-?\d+)$/.exec(entry);
    if (!match) throw new Error(`invalid Enum8 element ${JSON.stringify(entry)}`);
    names.set(Number(match[2]), match[1]);
    values.set(match[1], Number(match[2]));
  }
  return { kind: 'enum8', names, values };
}

/** Parses a ClickHouse type name of the kinds the span insert uses. */
export function parseNativeType(name: string): NativeType {
  const open = name.indexOf('(');
  const outer = open < 0 ? name : name.slice(0, open);
  const body = open < 0 ? '' : name.slice(open + 1, name.lastIndexOf(')'));
  if (outer in UINT_BYTES) return { kind: 'uint', bytes: UINT_BYTES[outer] };
  if (outer === 'Int64' || name === 'DateTime64(9)') return { kind: 'int64' };
  if (outer === 'Float64') return { kind: 'float64' };
  if (outer === 'Bool') return { kind: 'bool' };
  if (outer === 'String') return { kind: 'string' };
  if (outer === 'LowCardinality') {
    if (body !== 'String')
      throw new Error(`unsupported Native column type ${JSON.stringify(name)}`);
    return { kind: 'lowCardinality' };
  }
  if (outer === 'Enum8') return parseEnum8(body);
  if (outer === 'Array') return { kind: 'array', item: parseNativeType(body) };
  if (outer === 'Map') {
    const [key, value] = splitArguments(body);
    return { kind: 'map', key: parseNativeType(key), value: parseNativeType(value) };
  }
  throw new Error(`unsupported Native column type ${JSON.stringify(name)}`);
}

/**
 * A value as the codec reads and writes it. Integers up to 32 bits and Float64 are
 * numbers, 64 and 128-bit integers decimal text, and an Enum8 its name. A map is an array
 * of key-value pairs, which keeps the order of its entries.
 */
export type NativeValue = number | string | boolean | NativeValue[];

/** Rows read back from Native blocks. */
export interface NativeRows {
  columns: string[];
  types: string[];
  rows: NativeValue[][];
}

class ByteReader {
  offset = 0;

  constructor(private readonly buffer: Buffer) {}

  get done(): boolean {
    return this.offset >= this.buffer.length;
  }

  private take(bytes: number): number {
    const at = this.offset;
    if (at + bytes > this.buffer.length) {
      throw new Error(`truncated Native block: ${bytes} bytes expected at offset ${at}`);
    }
    this.offset += bytes;
    return at;
  }

  leb128(): number {
    let value = 0;
    let scale = 1;
    for (;;) {
      const byte = this.buffer[this.take(1)];
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 0x80;
    }
  }

  string(): string {
    const bytes = this.leb128();
    const at = this.take(bytes);
    return this.buffer.toString('utf8', at, at + bytes);
  }

  value(type: NativeType): NativeValue {
    switch (type.kind) {
      case 'uint': {
        const at = this.take(type.bytes);
        if (type.bytes === 1) return this.buffer[at];
        if (type.bytes === 2) return this.buffer.readUInt16LE(at);
        if (type.bytes === 4) return this.buffer.readUInt32LE(at);
        if (type.bytes === 8) return this.buffer.readBigUInt64LE(at).toString();
        const low = this.buffer.readBigUInt64LE(at);
        const high = this.buffer.readBigUInt64LE(at + 8);
        return ((high << 64n) | low).toString();
      }
      case 'int64':
        return this.buffer.readBigInt64LE(this.take(8)).toString();
      case 'float64':
        return this.buffer.readDoubleLE(this.take(8));
      case 'bool':
        return this.buffer[this.take(1)] !== 0;
      case 'string':
        return this.string();
      case 'enum8': {
        const code = this.buffer.readInt8(this.take(1));
        return type.names.get(code) ?? code;
      }
      default:
        throw new Error(`a ${type.kind} column has no single value`);
    }
  }

  /** Reads the prefixes of a column: the version of each LowCardinality column in it. */
  prefix(type: NativeType): void {
    if (type.kind === 'lowCardinality') {
      const version = Number(this.value(UINT64));
      if (version !== DICTIONARY_VERSION) {
        throw new Error(
          `invalid LowCardinality serialization version ${version}: expected ${DICTIONARY_VERSION}`,
        );
      }
    } else if (type.kind === 'array') {
      this.prefix(type.item);
    } else if (type.kind === 'map') {
      this.prefix(type.key);
      this.prefix(type.value);
    }
  }

  /** Reads the values of a LowCardinality(String) column, as `DictionaryColumn` writes them. */
  dictionaryValues(rows: number): NativeValue[] {
    if (rows === 0) return [];

    const flags = Number(this.value(UINT64));
    const code = flags & 0xff;
    if (code >= INDEX_WIDTHS.length || (flags & HAS_ADDITIONAL_KEYS) === 0) {
      throw new Error(
        `unsupported LowCardinality column flags ${flags}: expected the dictionary with the column`,
      );
    }

    const dictionary: string[] = [];
    const size = Number(this.value(UINT64));
    for (let index = 0; index < size; index += 1) dictionary.push(this.string());

    const count = Number(this.value(UINT64));
    if (count !== rows) {
      throw new Error(`invalid LowCardinality column: ${count} indexes for ${rows} rows`);
    }
    const width = INDEX_WIDTHS[code];
    const values: NativeValue[] = [];
    for (let row = 0; row < rows; row += 1) {
      const at = this.take(width);
      const index =
        width === 1
          ? this.buffer[at]
          : width === 2
            ? this.buffer.readUInt16LE(at)
            : this.buffer.readUInt32LE(at);
      const value = dictionary[index];
      if (value === undefined) {
        throw new Error(`invalid LowCardinality index ${index}: the dictionary has ${size} values`);
      }
      values.push(value);
    }
    return values;
  }

  /** Reads the values of a column whose prefix was read. */
  values(type: NativeType, rows: number): NativeValue[] {
    if (type.kind === 'lowCardinality') return this.dictionaryValues(rows);
    if (type.kind === 'array' || type.kind === 'map') {
      const ends: number[] = [];
      for (let row = 0; row < rows; row += 1) ends.push(Number(this.value(UINT64)));
      const total = ends[rows - 1] ?? 0;
      const values: NativeValue[] =
        type.kind === 'array'
          ? this.values(type.item, total)
          : zip(this.values(type.key, total), this.values(type.value, total));
      return ends.map((end, row) => values.slice(row === 0 ? 0 : ends[row - 1], end));
    }
    const values: NativeValue[] = [];
    for (let row = 0; row < rows; row += 1) values.push(this.value(type));
    return values;
  }

  column(type: NativeType, rows: number): NativeValue[] {
    this.prefix(type);
    return this.values(type, rows);
  }
}

const UINT64: NativeType = { kind: 'uint', bytes: 8 };

function zip(keys: NativeValue[], values: NativeValue[]): NativeValue[] {
  return keys.map((key, index) => [key, values[index]]);
}

/** Reads every block of a Native stream into rows. All blocks must have the same columns. */
export function readNativeRows(data: Buffer): NativeRows {
  const reader = new ByteReader(data);
  const result: NativeRows = { columns: [], types: [], rows: [] };
  while (!reader.done) {
    const columnCount = reader.leb128();
    const rowCount = reader.leb128();
    const columns: NativeValue[][] = [];
    const names: string[] = [];
    const types: string[] = [];
    for (let column = 0; column < columnCount; column += 1) {
      names.push(reader.string());
      types.push(reader.string());
      columns.push(reader.column(parseNativeType(types[column]), rowCount));
    }
    if (result.columns.length === 0) {
      result.columns = names;
      result.types = types;
    } else if (names.join('\n') !== result.columns.join('\n')) {
      throw new Error(
        `Native blocks with different columns: ${names.join(', ')} after ${result.columns.join(', ')}`,
      );
    }
    for (let row = 0; row < rowCount; row += 1) {
      result.rows.push(columns.map((values) => values[row]));
    }
  }
  return result;
}

function writeValue(writer: ByteWriter, type: NativeType, value: NativeValue): void {
  switch (type.kind) {
    case 'uint':
      if (type.bytes === 1) writer.uint8(Number(value));
      else if (type.bytes === 2) writer.uint16(Number(value));
      else if (type.bytes === 4) writer.uint32(Number(value));
      else if (type.bytes === 8) writer.uint64(BigInt(value as string));
      else {
        const number = BigInt(value as string);
        writer.uint64(number & 0xffffffffffffffffn);
        writer.uint64(number >> 64n);
      }
      return;
    case 'int64':
      writer.int64(BigInt(value as string));
      return;
    case 'float64':
      writer.float64(Number(value));
      return;
    case 'bool':
      writer.uint8(value ? 1 : 0);
      return;
    case 'string':
      writer.string(String(value));
      return;
    case 'enum8': {
      const code = typeof value === 'number' ? value : type.values.get(String(value));
      if (code === undefined) {
        throw new Error(`invalid Enum8 value ${JSON.stringify(value)}: not an element of the type`);
      }
      writer.int8(code);
      return;
    }
    default:
      throw new Error(`a ${type.kind} column has no single value`);
  }
}

/** Writes the prefixes of a column, as `ByteReader.prefix` reads them. */
function writePrefix(writer: ByteWriter, type: NativeType): void {
  if (type.kind === 'lowCardinality') {
    writer.uint64Number(DICTIONARY_VERSION);
  } else if (type.kind === 'array') {
    writePrefix(writer, type.item);
  } else if (type.kind === 'map') {
    writePrefix(writer, type.key);
    writePrefix(writer, type.value);
  }
}

function writeValues(writer: ByteWriter, type: NativeType, values: NativeValue[]): void {
  if (type.kind === 'lowCardinality') {
    const column = new DictionaryColumn();
    for (const value of values) column.add(Buffer.from(String(value)));
    column.writeTo(writer);
    return;
  }
  if (type.kind !== 'array' && type.kind !== 'map') {
    for (const value of values) writeValue(writer, type, value);
    return;
  }
  let end = 0;
  for (const value of values) {
    end += (value as NativeValue[]).length;
    writer.uint64(BigInt(end));
  }
  const items = values.flatMap((value) => value as NativeValue[]);
  if (type.kind === 'array') {
    writeValues(writer, type.item, items);
    return;
  }
  const pairs = items as NativeValue[][];
  writeValues(
    writer,
    type.key,
    pairs.map((pair) => pair[0]),
  );
  writeValues(
    writer,
    type.value,
    pairs.map((pair) => pair[1]),
  );
}

/** Writes rows as one Native block. */
export function writeNativeBlock(
  columns: string[],
  types: string[],
  rows: NativeValue[][],
): Buffer {
  const writer = new ByteWriter();
  writer.leb128(columns.length);
  writer.leb128(rows.length);
  columns.forEach((name, column) => {
    writer.string(name);
    writer.string(types[column]);
    const type = parseNativeType(types[column]);
    writePrefix(writer, type);
    writeValues(
      writer,
      type,
      rows.map((row) => row[column]),
    );
  });
  return writer.take();
}
