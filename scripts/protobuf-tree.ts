/*
 * A protobuf message as a tree of fields, with a parser, an encoder and the structural
 * mutations that the ingest fuzzer applies to OTLP trace requests. The encoder writes what
 * the tree contains, even where that is invalid: varints padded with continuation bytes, a
 * length that differs from the bytes after it, wire types that the schema does not expect.
 */

/** A message, named by its key in MESSAGES; 'group' for the contents of a group field. */
export interface Message {
  type: string;
  fields: Field[];
}

/**
 * One field. The value is a bigint for wire type 0, 8 or 4 bytes for types 1 and 5, bytes
 * or a nested message for type 2 and a message for a group (type 3). Types 4, 6 and 7 write
 * the tag alone. The widths pad a varint to that many bytes; `lengthDelta` is added to the
 * length that a type 2 field writes.
 */
export interface Field {
  number: number;
  wire: number;
  value: bigint | Buffer | Message;
  tagWidth?: number;
  lengthWidth?: number;
  valueWidth?: number;
  lengthDelta?: number;
}

/** The length-delimited fields of each OTLP message that contain a message, by field number. */
const MESSAGES: Record<string, Record<number, string>> = {
  request: { 1: 'resourceSpans' },
  resourceSpans: { 1: 'resource', 2: 'scopeSpans' },
  resource: { 1: 'keyValue' },
  scopeSpans: { 1: 'scope', 2: 'span' },
  scope: { 3: 'keyValue' },
  span: { 9: 'keyValue', 11: 'event', 13: 'link', 15: 'status' },
  event: { 3: 'keyValue' },
  link: { 4: 'keyValue' },
  status: {},
  keyValue: { 2: 'anyValue' },
  anyValue: { 5: 'arrayValue', 6: 'keyValueList' },
  arrayValue: { 1: 'anyValue' },
  keyValueList: { 1: 'keyValue' },
  group: {},
};

function isMessage(value: Field['value']): value is Message {
  return typeof value === 'object' && !Buffer.isBuffer(value);
}

function varintBytes(value: bigint, width = 0): number[] {
  const bytes: number[] = [];
  do {
    bytes.push(Number(value & 0x7fn));
    value >>= 7n;
  } while (value > 0n);
  while (bytes.length < width) bytes.push(0);
  for (let index = 0; index < bytes.length - 1; index += 1) bytes[index] |= 0x80;
  return bytes;
}

function encodeField(field: Field, out: number[]): void {
  const tag = (BigInt(field.number) << 3n) | BigInt(field.wire);
  out.push(...varintBytes(tag, field.tagWidth));
  const { value } = field;
  if (field.wire === 0 && typeof value === 'bigint') {
    out.push(...varintBytes(value, field.valueWidth));
  } else if (field.wire === 3 && isMessage(value)) {
    for (const inner of value.fields) encodeField(inner, out);
    out.push(...varintBytes((BigInt(field.number) << 3n) | 4n));
  } else if (field.wire === 2) {
    const bytes = isMessage(value) ? encodeMessage(value) : (value as Buffer);
    const length = Math.max(0, bytes.length + (field.lengthDelta ?? 0));
    out.push(...varintBytes(BigInt(length), field.lengthWidth), ...bytes);
  } else if (field.wire === 1 || field.wire === 5) {
    out.push(...(value as Buffer));
  }
}

export function encodeMessage(message: Message): Buffer {
  const out: number[] = [];
  for (const field of message.fields) encodeField(field, out);
  return Buffer.from(out);
}

/**
 * Parses `bytes` as a message of `type`. A length-delimited field that MESSAGES names is
 * parsed as a nested message, and kept as bytes when that fails. Returns undefined for
 * bytes that are not a valid message without groups.
 */
export function parseMessage(bytes: Buffer, type: string): Message | undefined {
  const fields: Field[] = [];
  let pos = 0;
  const varint = (): bigint | undefined => {
    let value = 0n;
    for (let shift = 0n; shift < 70n && pos < bytes.length; shift += 7n) {
      const byte = bytes[pos++];
      value |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return value;
    }
    return undefined;
  };
  while (pos < bytes.length) {
    const tag = varint();
    if (tag === undefined) return undefined;
    const number = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (wire === 0) {
      const value = varint();
      if (value === undefined) return undefined;
      fields.push({ number, wire, value });
      continue;
    }
    let size = -1;
    if (wire === 1) size = 8;
    else if (wire === 5) size = 4;
    else if (wire === 2) size = Number(varint() ?? -1);
    if (size < 0 || pos + size > bytes.length) return undefined;
    const value = bytes.subarray(pos, pos + size);
    pos += size;
    const nested = wire === 2 && MESSAGES[type][number];
    fields.push({ number, wire, value: (nested && parseMessage(value, nested)) || value });
  }
  return { type, fields };
}

function cloneMessage(message: Message): Message {
  const fields = message.fields.map((field) => ({
    ...field,
    value: isMessage(field.value) ? cloneMessage(field.value) : field.value,
  }));
  return { type: message.type, fields };
}

/** Lists the messages of a tree, the root first, without the contents of groups. */
function messagesOf(root: Message): Message[] {
  const found = [root];
  for (let index = 0; index < found.length; index += 1) {
    for (const field of found[index].fields) {
      if (field.wire === 2 && isMessage(field.value)) found.push(field.value);
    }
  }
  return found;
}

/** Builds a value of the `wire` type from `seed`, for a field whose wire type changes. */
function valueOfWire(wire: number, seed: number): Field['value'] {
  const bytes = Buffer.alloc(8, seed & 0xff);
  bytes.writeUInt32LE(seed >>> 0);
  if (wire === 0) return BigInt(seed) * 0x1_0000_0001n;
  if (wire === 1) return bytes;
  if (wire === 5) return bytes.subarray(0, 4);
  if (wire === 3) return { type: 'group', fields: [{ number: 1, wire: 0, value: BigInt(seed) }] };
  return bytes.subarray(0, seed % 9);
}

export const MUTATIONS = [
  'padVarint',
  'repeatField',
  'moveField',
  'moveResourceOrScopeLast',
  'changeWireType',
  'addUnknownField',
  'repeatKeyValueValue',
  'dropScopeSpans',
  'changeLength',
] as const;

export interface Mutation {
  kind: (typeof MUTATIONS)[number];
  pick: number;
  seed: number;
}

/**
 * Applies `mutation` to `root` in place. `pick` chooses the message or field it changes, and
 * `seed` chooses the new width, position, number or value. A mutation that finds nothing to
 * change leaves the tree as it is.
 */
export function mutate(root: Message, { kind, pick, seed }: Mutation): void {
  const messages = messagesOf(root);
  const ofType = (type: string) => messages.filter((message) => message.type === type);
  const choose = <T>(list: T[]): T | undefined => list[pick % Math.max(1, list.length)];
  const fieldsOf = messages.flatMap((message) =>
    message.fields.map((field) => ({ message, field })),
  );
  const target = choose(fieldsOf);
  switch (kind) {
    case 'padVarint':
      if (target) padVarint(target.field, seed);
      return;
    case 'repeatField':
      if (target) repeatField(target.message, target.field, fieldsOf, seed);
      return;
    case 'moveField':
      if (target) moveField(target.message, target.field, seed % target.message.fields.length);
      return;
    case 'moveResourceOrScopeLast': {
      const message = choose([...ofType('resourceSpans'), ...ofType('scopeSpans')]);
      const first = message?.fields.find((field) => field.number === 1);
      if (message && first) moveField(message, first, message.fields.length - 1);
      return;
    }
    case 'changeWireType':
      if (target) changeWireType(target.field, seed);
      return;
    case 'addUnknownField':
      addUnknownField(choose(messages) as Message, seed);
      return;
    case 'repeatKeyValueValue':
      repeatKeyValueValue(choose(ofType('keyValue')), ofType('anyValue'), seed);
      return;
    case 'dropScopeSpans': {
      const message = choose(ofType('resourceSpans'));
      if (message) message.fields = message.fields.filter((field) => field.number !== 2);
      return;
    }
    case 'changeLength':
      changeLength(choose(fieldsOf.filter(({ field }) => field.wire === 2))?.field, seed);
      return;
  }
}

/** Pads the tag, length or value varint of a field to 2-10 bytes, mostly 6-10. */
function padVarint(field: Field, seed: number): void {
  const width = seed % 4 === 0 ? 2 + ((seed >> 2) % 4) : 6 + ((seed >> 2) % 5);
  const part = (seed >> 5) % 3;
  if (part === 1 && field.wire === 2) field.lengthWidth = width;
  else if (part === 2 && field.wire === 0) field.valueWidth = width;
  else field.tagWidth = width;
}

/**
 * Inserts another occurrence of the field later in its message. The copy comes from the same
 * field of another message of that type when there is one, and a copied varint otherwise gets
 * a new value.
 */
function repeatField(
  message: Message,
  field: Field,
  all: { message: Message; field: Field }[],
  seed: number,
): void {
  const others = all.filter(
    (other) =>
      other.message.type === message.type &&
      other.field.number === field.number &&
      other.field !== field,
  );
  const source = others.length > 0 ? others[seed % others.length].field : field;
  const copy = {
    ...source,
    value: isMessage(source.value) ? cloneMessage(source.value) : source.value,
  };
  if (others.length === 0 && copy.wire === 0) copy.value = BigInt(seed);
  const after = message.fields.indexOf(field) + 1;
  const at = after + ((seed >> 3) % (message.fields.length - after + 1));
  message.fields.splice(at, 0, copy);
}

function moveField(message: Message, field: Field, to: number): void {
  message.fields.splice(message.fields.indexOf(field), 1);
  message.fields.splice(to, 0, field);
}

function changeWireType(field: Field, seed: number): void {
  const wires = [0, 1, 2, 5, 0, 1, 2, 5, 3, 4, 6, 7].filter((wire) => wire !== field.wire);
  field.wire = wires[seed % wires.length];
  field.value = valueOfWire(field.wire, seed >> 4);
}

/** Adds a field of any wire type with a number that the OTLP schema leaves unused. */
function addUnknownField(message: Message, seed: number): void {
  const numbers = [17, 20, 100, 1000, 2 ** 29 - 1];
  const wires = [0, 1, 2, 3, 5];
  const wire = wires[seed % wires.length];
  const field = {
    number: numbers[(seed >> 3) % numbers.length],
    wire,
    value: valueOfWire(wire, seed >> 6),
  };
  message.fields.splice((seed >> 9) % (message.fields.length + 1), 0, field);
}

/** Gives a KeyValue a second value field, copied from any AnyValue of the tree. */
function repeatKeyValueValue(
  keyValue: Message | undefined,
  anyValues: Message[],
  seed: number,
): void {
  if (!keyValue || anyValues.length === 0) return;
  const value = cloneMessage(anyValues[seed % anyValues.length]);
  const at = (seed >> 4) % (keyValue.fields.length + 1);
  keyValue.fields.splice(at, 0, { number: 2, wire: 2, value });
}

/** Makes a length-delimited field's length run 1-8 bytes past its contents, or stop short. */
function changeLength(field: Field | undefined, seed: number): void {
  if (!field) return;
  const delta = 1 + ((seed >> 1) % 8);
  field.lengthDelta = seed % 2 === 0 ? delta : -delta;
}
