/** Protobuf bytes built by hand, for bodies that protobufjs cannot encode. */

/** Encodes a length-delimited protobuf field, after optional leading bytes. */
export function field(number: number, value: Buffer, before = Buffer.alloc(0)): Buffer {
  return Buffer.concat([before, Buffer.from([(number << 3) | 2]), varint(value.length), value]);
}

/**
 * Encodes an AnyValue whose kvlist nests `depth` levels. Each level's headers precede the
 * inner value, so the sizes are computed bottom-up and the headers written outermost first.
 */
export function deepAnyValue(depth: number): Buffer {
  const leaf = Buffer.from([0x0a, 0x01, 0x78]); // AnyValue{string_value: "x"}
  const sizes: number[] = [leaf.length];
  const headers: Buffer[] = [];
  for (let level = 0; level < depth; level += 1) {
    const inner = sizes[level];
    const keyValue = 4 + varint(inner).length + inner; // key "k", then the value field
    const kvlist = 1 + varint(keyValue).length + keyValue;
    sizes.push(1 + varint(kvlist).length + kvlist);
    headers.push(
      Buffer.concat([
        Buffer.from([0x32]),
        varint(kvlist),
        Buffer.from([0x0a]),
        varint(keyValue),
        Buffer.from([0x0a, 0x01, 0x6b, 0x12]),
        varint(inner),
      ]),
    );
  }
  return Buffer.concat([...headers.reverse(), leaf]);
}

export function varint(value: number): Buffer {
  const bytes: number[] = [];
  while (value > 0x7f) {
    bytes.push((value & 0x7f) | 0x80);
    value >>>= 7;
  }
  bytes.push(value);
  return Buffer.from(bytes);
}
