import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { FaultlineError, errorMessage } from '../errors';
import type { Logger } from '../logger';
import { spanRowsJson, type SpanRows } from '../storage/span-rows';
import { encodeRecord } from './record';
import {
  encodeEntry,
  listSegments,
  QUARANTINE_DIR,
  recoverSegment,
  segmentFile,
  type SegmentInfo,
  type WalEntry,
} from './segments';

const writev = promisify(fs.writev);
const fdatasync = promisify(fs.fdatasync);

export interface WalOptions {
  dir: string;
  /** Disk budget: appends that would pass it are refused. */
  maxBytes: number;
  /** Size at which the active segment is sealed and a new one started. */
  segmentBytes: number;
  logger: Logger;
  /** Wait after a write or sync failure before appends try a new segment. Default 5 s. */
  retryAfterMs?: number;
  /** Bytes of appended entries kept in memory, so the writer need not read them back. */
  keptEntryBytes?: number;
}

const DEFAULT_RETRY_AFTER_MS = 5000;

/**
 * Bytes of appended entries kept in memory for the writer by default. While storage keeps
 * up, the queue limit keeps the log far below this. During an outage the log grows on
 * disk, and the writer reads the later segments back.
 */
const DEFAULT_KEPT_ENTRY_BYTES = 256 * 1024 * 1024;

interface PendingAppend {
  entry: WalEntry;
  /** The record's header and payload parts. */
  record: Buffer[];
  bytes: number;
  spans: number;
  appendedMs: number;
  resolve(): void;
  reject(error: unknown): void;
}

/** Contents of the log folder found at start-up. */
export interface ReplayReport {
  segments: number;
  spans: number;
  quarantinedBytes: number;
}

/**
 * An append-only log of accepted spans in numbered segment files.
 *
 * Contract: `append` resolves only after the record is written and fsynced, so a span
 * whose export got a 2xx response survives a crash or power loss. Appends that arrive
 * while a sync runs are written together by the next one (group commit). Sealed segments
 * are handed out in append order and deleted only by `remove`, after their spans are
 * stored. Not safe for two processes on one folder.
 */
export class WriteAheadLog {
  private readonly sealed: SegmentInfo[] = [];
  private active!: SegmentInfo;
  /** Descriptor of the active segment; rotation swaps it synchronously, between syncs. */
  private fd = -1;
  /** False until the folder entry of the active segment is synced, once a segment. */
  private entrySynced = false;
  private pending: PendingAppend[] = [];
  private pendingBytes = 0;
  private syncing: Promise<void> | undefined;
  private failure: FaultlineError | undefined;
  /** Epoch milliseconds from which appends try a new segment after a failure. */
  private retryAtMs = 0;
  private nextSeq = 1;
  private syncCount = 0;
  private readonly listeners = new Set<() => void>();
  /** Readers waiting for the sync loop to pause so that the active segment can be sealed. */
  private sealWaiters: (() => void)[] = [];
  /** Bytes of the entries that segments keep in memory. */
  private keptBytes = 0;

  private constructor(private readonly options: WalOptions) {}

  /** Opens the folder, checks and repairs every segment, and starts a new active one. */
  static async open(options: WalOptions): Promise<{ wal: WriteAheadLog; replay: ReplayReport }> {
    const wal = new WriteAheadLog(options);
    fs.mkdirSync(options.dir, { recursive: true });
    const replay = wal.recover();
    wal.startSegment();
    return { wal, replay };
  }

  private recover(): ReplayReport {
    const report: ReplayReport = { segments: 0, spans: 0, quarantinedBytes: 0 };
    for (const { seq, file } of listSegments(this.options.dir)) {
      this.nextSeq = Math.max(this.nextSeq, seq + 1);
      const recovered = recoverSegment(this.options.dir, seq, file);
      if (recovered.quarantined) {
        report.quarantinedBytes += recovered.quarantined.bytes;
        this.options.logger.warn(
          { segment: file, ...recovered.quarantined },
          'wal tail quarantined',
        );
      }
      if (recovered.info.spans === 0) {
        fs.rmSync(file, { force: true });
        continue;
      }
      this.sealed.push(recovered.info);
      report.segments += 1;
      report.spans += recovered.info.spans;
    }
    return report;
  }

  private startSegment(): void {
    const seq = this.nextSeq++;
    const file = segmentFile(this.options.dir, seq);
    this.fd = fs.openSync(file, 'a');
    this.entrySynced = false;
    this.active = { seq, file, bytes: 0, spans: 0, firstAppendMs: 0, entries: [] };
  }

  /** Bytes of the log on disk plus appends waiting for their sync. */
  get bytes(): number {
    return (
      this.sealed.reduce((sum, segment) => sum + segment.bytes, this.active.bytes) +
      this.pendingBytes
    );
  }

  /** fdatasync calls so far; fewer than appends when group commit shares them. */
  get syncs(): number {
    return this.syncCount;
  }

  get hasSealed(): boolean {
    return this.sealed.length > 0;
  }

  get segmentCount(): number {
    return this.sealed.length + (this.active.bytes > 0 ? 1 : 0);
  }

  /** Spans in the log, not yet removed. */
  get spans(): number {
    return this.sealed.reduce((sum, segment) => sum + segment.spans, this.active.spans);
  }

  /** Epoch milliseconds of the oldest span not yet removed; undefined when the log is empty. */
  get oldestAppendMs(): number | undefined {
    const first = this.sealed[0] ?? (this.active.spans > 0 ? this.active : undefined);
    return first?.firstAppendMs;
  }

  /** Reason appends fail now (a write or sync error), or undefined when the log is writable. */
  get error(): FaultlineError | undefined {
    return this.failure;
  }

  /** Calls `listener` after each successful sync, so a reader can wake up. */
  onAppend(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Appends the rows of one export's spans as one record and resolves once it is on disk.
   * Throws FL_WAL_FULL when the record would pass the disk budget (the caller turns it
   * into 429 or 503), and FL_WAL_UNAVAILABLE when the disk refuses writes. After such a
   * failure, appends are rejected until `retryAfterMs` has passed, then the next one
   * starts a new segment.
   */
  append(rows: SpanRows): Promise<void> {
    if (this.failure && !this.reopen()) return Promise.reject(this.failure);
    const appendedMs = Date.now();
    const entry: WalEntry = { appendedMs, rows };
    const record = encodeRecord(encodeEntry(entry));
    const bytes = record.reduce((sum, part) => sum + part.length, 0);
    if (this.bytes + bytes > this.options.maxBytes) {
      return Promise.reject(
        new FaultlineError(
          'FL_WAL_FULL',
          `write-ahead log holds ${this.bytes} bytes; ${bytes} more would pass FAULTLINE_WAL_MAX_BYTES=${this.options.maxBytes}: retry later`,
          { retryAfterSeconds: 5 },
        ),
      );
    }
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ entry, record, bytes, spans: rows.count, appendedMs, resolve, reject });
      this.pendingBytes += bytes;
      this.syncing ??= this.syncLoop();
    });
  }

  /** Writes and syncs every pending record, batch after batch, until none waits. */
  private async syncLoop(): Promise<void> {
    // Let appends of the same tick join the first batch.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      await this.writeBatch(batch);
      // Under steady load appends never stop arriving, so a reader waiting for a segment
      // gets it sealed here, between two writes.
      if (this.sealWaiters.length > 0) {
        if (this.sealed.length === 0 && this.active.spans > 0 && !this.failure) this.rotate();
        this.wakeSealWaiters();
      }
    }
    this.syncing = undefined;
    this.wakeSealWaiters();
  }

  private wakeSealWaiters(): void {
    const waiters = this.sealWaiters;
    this.sealWaiters = [];
    for (const wake of waiters) wake();
  }

  private async writeBatch(batch: PendingAppend[]): Promise<void> {
    const bytes = batch.reduce((sum, item) => sum + item.bytes, 0);
    if (this.failure) {
      // Appended before an earlier batch failed: the segment they were meant for is gone.
      this.pendingBytes -= bytes;
      for (const item of batch) item.reject(this.failure);
      return;
    }
    try {
      await writev(
        this.fd,
        batch.flatMap((item) => item.record),
      );
      await fdatasync(this.fd);
      // A new file's name reaches the disk with its folder, so a power loss after the
      // acknowledgment could otherwise drop the whole segment.
      if (!this.entrySynced) {
        await syncFolder(this.options.dir);
        this.entrySynced = true;
      }
      this.syncCount += 1;
    } catch (error) {
      this.pendingBytes -= bytes;
      this.failWrites(error);
      for (const item of batch) item.reject(this.failure);
      return;
    }
    this.pendingBytes -= bytes;
    if (this.active.spans === 0) this.active.firstAppendMs = batch[0].appendedMs;
    this.active.bytes += bytes;
    this.active.spans += batch.reduce((sum, item) => sum + item.spans, 0);
    this.keep(batch, bytes);
    for (const item of batch) item.resolve();
    if (this.active.bytes >= this.options.segmentBytes) this.rotate();
    for (const listener of this.listeners) listener();
  }

  /** Keeps the entries of a synced batch with the active segment, within `keptEntryBytes`. */
  private keep(batch: PendingAppend[], bytes: number): void {
    const entries = this.active.entries;
    if (!entries) return;
    if (this.keptBytes + bytes > (this.options.keptEntryBytes ?? DEFAULT_KEPT_ENTRY_BYTES)) {
      // The writer reads this segment from disk instead.
      this.keptBytes -= this.active.bytes - bytes;
      this.active.entries = undefined;
      return;
    }
    this.keptBytes += bytes;
    for (const item of batch) entries.push(item.entry);
  }

  private failWrites(error: unknown): void {
    const retryAfterMs = this.options.retryAfterMs ?? DEFAULT_RETRY_AFTER_MS;
    this.failure = new FaultlineError(
      'FL_WAL_UNAVAILABLE',
      `cannot write the write-ahead log ${this.active.file || this.options.dir}: ${errorMessage(error)}; free disk space or fix the folder's permissions (appends try a new segment after ${retryAfterMs} ms)`,
      { cause: error, retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)) },
    );
    this.retryAtMs = Date.now() + retryAfterMs;
    this.options.logger.error({ err: error, segment: this.active.file }, 'wal write failed');
    this.retireActive();
  }

  /**
   * Seals the segment that failed with the records synced before the failure, which were
   * acknowledged and stay durable, and drops any torn bytes the failed write left after
   * them. A reader skips a torn tail anyway, so both steps are best effort.
   */
  private retireActive(): void {
    const active = this.active;
    if (this.fd >= 0) {
      try {
        fs.ftruncateSync(this.fd, active.bytes);
      } catch {
        // The reader skips what is left.
      }
      try {
        fs.closeSync(this.fd);
      } catch {
        // The descriptor is already unusable.
      }
    }
    this.fd = -1;
    if (active.spans > 0) this.sealed.push(active);
    else if (active.file) fs.rmSync(active.file, { force: true });
    this.active = { seq: 0, file: '', bytes: 0, spans: 0, firstAppendMs: 0 };
  }

  /** After a failure, starts a new segment once the retry time has come; true when it did. */
  private reopen(): boolean {
    if (Date.now() < this.retryAtMs || this.syncing) return false;
    try {
      fs.mkdirSync(this.options.dir, { recursive: true });
      this.startSegment();
    } catch (error) {
      this.failWrites(error);
      return false;
    }
    this.failure = undefined;
    this.options.logger.info({ segment: this.active.file }, 'wal writable again');
    return true;
  }

  /**
   * Seals the active segment. Call it only while no write is in flight. When the next
   * segment cannot be created, because the folder was removed or no descriptors are left,
   * appends fail as after a write failure and try a new segment after `retryAfterMs`.
   */
  private rotate(): void {
    fs.closeSync(this.fd);
    this.fd = -1;
    this.sealed.push(this.active);
    this.active = { seq: 0, file: '', bytes: 0, spans: 0, firstAppendMs: 0 };
    try {
      this.startSegment();
    } catch (error) {
      this.failWrites(error);
    }
  }

  /**
   * Returns the oldest sealed segment. When none is sealed and the active one contains
   * records, it is sealed first, after the write in flight, so a reader does not wait
   * for a segment to fill or for appends to stop.
   */
  async nextSegment(): Promise<SegmentInfo | undefined> {
    while (this.sealed.length === 0 && this.active.spans > 0 && !this.failure) {
      // No await between this check and the swap, so no write can start in between.
      if (!this.syncing) {
        this.rotate();
        break;
      }
      await new Promise<void>((resolve) => this.sealWaiters.push(resolve));
    }
    return this.sealed[0];
  }

  /**
   * Writes rows that storage rejects to a file in the quarantine folder, one JSON object a
   * row with the reason, the column names and the row's values.
   */
  async quarantineRows(rows: SpanRows, reason: string): Promise<string> {
    const dir = path.join(this.options.dir, QUARANTINE_DIR);
    await fs.promises.mkdir(dir, { recursive: true });
    const file = path.join(dir, `refused-${Date.now()}.jsonl`);
    const prefix = `{"reason":${JSON.stringify(reason)},"columns":${JSON.stringify(rows.columns)},"row":`;
    // Each row is the JSON text of an array already, so it goes into the object as it is.
    const lines = spanRowsJson(rows).map((row) => `${prefix}${row}}\n`);
    const handle = await fs.promises.open(file, 'a');
    try {
      await handle.appendFile(lines.join(''));
      // The segment holding these rows is deleted next, so they must be on disk first.
      await handle.sync();
    } finally {
      await handle.close();
    }
    await syncFolder(dir);
    return file;
  }

  /**
   * Copies records of a segment that did not decode to `<segment>.undecodable` in the
   * quarantine folder, framed as log records, and syncs it before the segment is deleted.
   */
  async quarantinePayloads(segment: SegmentInfo, payloads: Buffer[]): Promise<string> {
    const dir = path.join(this.options.dir, QUARANTINE_DIR);
    await fs.promises.mkdir(dir, { recursive: true });
    const file = path.join(dir, `${path.basename(segment.file)}.undecodable`);
    const handle = await fs.promises.open(file, 'a');
    try {
      await handle.writev(payloads.flatMap((payload) => encodeRecord([payload])));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await syncFolder(dir);
    return file;
  }

  /** Deletes a segment whose spans are stored. */
  async remove(segment: SegmentInfo): Promise<void> {
    const index = this.sealed.indexOf(segment);
    if (index < 0) return;
    // Out of the log at once, so the writer goes on with the next segment while the file
    // is deleted. Should the deletion fail, the next start stores the segment again.
    this.sealed.splice(index, 1);
    if (segment.entries) this.keptBytes -= segment.bytes;
    segment.entries = undefined;
    await fs.promises.rm(segment.file, { force: true });
  }

  /** Waits for pending appends, then closes the active segment; an empty one is deleted. */
  async close(): Promise<void> {
    while (this.syncing) await this.syncing;
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
    if (this.active.bytes === 0 && this.active.file) fs.rmSync(this.active.file, { force: true });
  }
}

/** Flushes a folder's entries (created and removed files) to disk. */
async function syncFolder(dir: string): Promise<void> {
  const handle = await fs.promises.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
