import fs from 'node:fs';
import path from 'node:path';
import type { SpanRecord } from '../model/span';
import { toJsonSpanRows, toSpanRows, type RowFormat, type SpanRows } from '../storage/span-rows';
import { scanRecords } from './record';

const SEGMENT_PATTERN = /^segment-(\d{16})\.wal$/;
export const QUARANTINE_DIR = 'quarantine';

/** A segment file and what it holds; `spans` and `firstAppendMs` are known once read. */
export interface SegmentInfo {
  seq: number;
  file: string;
  bytes: number;
  spans: number;
  /** Epoch milliseconds of its first record's append; 0 when empty. */
  firstAppendMs: number;
  /**
   * The entries this process appended, kept in memory until the segment is removed so
   * that the writer need not read them back. Undefined for a segment found at start-up
   * and for one whose entries passed the log's memory budget.
   */
  entries?: WalEntry[];
}

/**
 * Contents of one record: the spans of one accepted export, as insert-ready rows, and the
 * time it was appended.
 */
export interface WalEntry {
  appendedMs: number;
  rows: SpanRows;
}

/** First line of a record's payload; the rows follow it. */
interface EntryHeader {
  /** Append time, epoch milliseconds. */
  t: number;
  /** Rows that follow. */
  n: number;
  /** Columns of the rows. */
  c: string[];
  /** Format of the rows. Records of earlier versions have none and contain JSONCompactEachRow. */
  f?: RowFormat;
}

const NEWLINE = 0x0a;

export function segmentFile(dir: string, seq: number): string {
  return path.join(dir, `segment-${String(seq).padStart(16, '0')}.wal`);
}

/** Segment files of a folder in append order. */
export function listSegments(dir: string): { seq: number; file: string }[] {
  return fs
    .readdirSync(dir)
    .map((name) => ({ name, match: SEGMENT_PATTERN.exec(name) }))
    .filter((entry) => entry.match)
    .map((entry) => ({ seq: Number(entry.match![1]), file: path.join(dir, entry.name) }))
    .sort((a, b) => a.seq - b.seq);
}

/**
 * Encodes an entry as the parts of one record payload: a JSON header line, then the rows
 * as they are (Native blocks, or JSONCompactEachRow lines from earlier versions).
 */
export function encodeEntry(entry: WalEntry): Buffer[] {
  const header: EntryHeader = {
    t: entry.appendedMs,
    n: entry.rows.count,
    c: [...entry.rows.columns],
    ...(entry.rows.format === 'JSONCompactEachRow' ? {} : { f: entry.rows.format }),
  };
  return [Buffer.from(`${JSON.stringify(header)}\n`), ...entry.rows.chunks];
}

/**
 * Decodes a record payload, with the rows as a view of it. Earlier versions wrote a whole
 * JSON object `{t, s}` with the span records and no newline. Its spans are converted to rows.
 */
export function decodeEntry(payload: Buffer): WalEntry {
  const headerEnd = payload.indexOf(NEWLINE);
  if (headerEnd < 0) {
    const parsed = JSON.parse(payload.toString('utf8')) as { t: number; s: SpanRecord[] };
    return { appendedMs: parsed.t, rows: spanRecordRows(parsed.s) };
  }
  const header = JSON.parse(payload.toString('utf8', 0, headerEnd)) as EntryHeader;
  const rows = payload.subarray(headerEnd + 1);
  return {
    appendedMs: header.t,
    rows: {
      format: header.f ?? 'JSONCompactEachRow',
      columns: header.c,
      chunks: rows.length > 0 ? [rows] : [],
      count: header.n,
    },
  };
}

/**
 * Converts the spans of a `{t, s}` record to Native rows, or to JSONCompactEachRow rows
 * when the encoder rejects a value that earlier versions accepted, such as an int
 * attribute past Int64. Those rows reach storage as they did then, and a span that
 * storage rejects goes to the quarantine folder instead of ending the segment's replay.
 */
function spanRecordRows(spans: SpanRecord[]): SpanRows {
  try {
    return toSpanRows(spans);
  } catch {
    return toJsonSpanRows(spans);
  }
}

/** Result of checking a segment at start: its entries, and the corrupt tail if any. */
export interface RecoveredSegment {
  entries: WalEntry[];
  info: SegmentInfo;
  /** Path and reason of the quarantined tail copy, or undefined for a clean segment. */
  quarantined?: { file: string; bytes: number; problem: string };
}

/**
 * Reads a segment; a bad tail (torn write, bit rot, lost page) is copied to the quarantine
 * folder and cut off, so the valid prefix is replayed and the file is clean again.
 */
export function recoverSegment(dir: string, seq: number, file: string): RecoveredSegment {
  const data = fs.readFileSync(file);
  const scan = scanRecords(data);
  const { entries } = decodeEntries(scan.payloads);
  const spans = entries.reduce((sum, entry) => sum + entry.rows.count, 0);
  const info: SegmentInfo = {
    seq,
    file,
    bytes: scan.validBytes,
    spans,
    firstAppendMs: entries[0]?.appendedMs ?? 0,
  };
  if (!scan.problem) return { entries, info };

  const quarantineDir = path.join(dir, QUARANTINE_DIR);
  fs.mkdirSync(quarantineDir, { recursive: true });
  const target = path.join(quarantineDir, `${path.basename(file)}.at-${scan.validBytes}.bad`);
  fs.writeFileSync(target, data.subarray(scan.validBytes));
  fs.truncateSync(file, scan.validBytes);
  const handle = fs.openSync(file, 'r+');
  fs.fsyncSync(handle);
  fs.closeSync(handle);
  return {
    entries,
    info,
    quarantined: { file: target, bytes: data.length - scan.validBytes, problem: scan.problem },
  };
}

/** Entries of a segment, and the payloads whose checksum matched but that did not decode. */
export interface SegmentRecords {
  entries: WalEntry[];
  undecodable: Buffer[];
}

/** Decodes payloads whose checksum matched, setting aside those that do not decode. */
function decodeEntries(payloads: Buffer[]): SegmentRecords {
  const records: SegmentRecords = { entries: [], undecodable: [] };
  for (const payload of payloads) {
    try {
      records.entries.push(decodeEntry(payload));
    } catch {
      records.undecodable.push(payload);
    }
  }
  return records;
}

/**
 * Reads the records of a sealed segment. A bad tail found now is skipped, not quarantined.
 * The file is read off the main thread, which serves exports meanwhile.
 */
export async function readSegmentRecords(file: string): Promise<SegmentRecords> {
  return decodeEntries(scanRecords(await readWhole(file)).payloads);
}

/** Reads the entries of a sealed segment, as `readSegmentRecords` does. */
export async function readSegment(file: string): Promise<WalEntry[]> {
  return (await readSegmentRecords(file)).entries;
}

/**
 * Reads a file with as few reads as the system allows, usually one. `readFile` reads in
 * 512 KiB steps, each of which waits for the event loop, which under load is busy with
 * requests: a 64 MiB segment waited 128 times.
 */
async function readWhole(file: string): Promise<Buffer> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const { size } = await handle.stat();
    const data = Buffer.allocUnsafe(size);
    let filled = 0;
    while (filled < size) {
      const { bytesRead } = await handle.read(data, filled, size - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return data.subarray(0, filled);
  } finally {
    await handle.close();
  }
}
