import zlib from 'node:zlib';

/**
 * One WAL record on disk: a 12-byte header, then the payload.
 *   bytes 0-3   magic 0x464C5731 ("FLW1"), so a torn or foreign header is recognised
 *   bytes 4-7   payload length, unsigned big-endian
 *   bytes 8-11  CRC-32 of the payload, unsigned big-endian
 */
export const RECORD_MAGIC = 0x464c5731;
export const HEADER_BYTES = 12;
/** Largest payload a header may announce; a bigger length means the header is corrupt. */
export const MAX_PAYLOAD_BYTES = 1024 * 1024 * 1024;

/** Encodes a record whose payload is the parts joined; returns the header and the parts. */
export function encodeRecord(parts: Buffer[]): Buffer[] {
  let length = 0;
  let crc = 0;
  for (const part of parts) {
    length += part.length;
    crc = zlib.crc32(part, crc);
  }
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32BE(RECORD_MAGIC, 0);
  header.writeUInt32BE(length, 4);
  header.writeUInt32BE(crc, 8);
  return [header, ...parts];
}

/** Records read from a segment, and where its valid prefix ends. */
export interface ScanResult {
  payloads: Buffer[];
  /** Bytes from the start that hold whole, valid records. */
  validBytes: number;
  /** Why reading stopped before the end, or undefined when the whole segment is valid. */
  problem?: string;
}

/**
 * Reads records until the end or the first bad one (wrong magic, a length past the end,
 * a checksum mismatch). Everything after a bad record is untrusted: a torn write or a
 * lost page leaves no reliable way to find the next record boundary.
 */
export function scanRecords(data: Buffer): ScanResult {
  const payloads: Buffer[] = [];
  let offset = 0;
  while (offset < data.length) {
    const problem = recordProblem(data, offset);
    if (problem) return { payloads, validBytes: offset, problem };
    const length = data.readUInt32BE(offset + 4);
    payloads.push(data.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + length));
    offset += HEADER_BYTES + length;
  }
  return { payloads, validBytes: offset };
}

function recordProblem(data: Buffer, offset: number): string | undefined {
  if (data.length - offset < HEADER_BYTES) {
    return `truncated header at byte ${offset} (${data.length - offset} of ${HEADER_BYTES} bytes)`;
  }
  if (data.readUInt32BE(offset) !== RECORD_MAGIC) return `bad record magic at byte ${offset}`;
  const length = data.readUInt32BE(offset + 4);
  if (length > MAX_PAYLOAD_BYTES || offset + HEADER_BYTES + length > data.length) {
    return `truncated record at byte ${offset}: header announces ${length} bytes, ${data.length - offset - HEADER_BYTES} present`;
  }
  const payload = data.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + length);
  if (zlib.crc32(payload) !== data.readUInt32BE(offset + 8)) {
    return `checksum mismatch in the record at byte ${offset}`;
  }
  return undefined;
}
