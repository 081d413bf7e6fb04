import { errorMessage } from '../errors';
import type { Logger } from '../logger';
import { joinSpanRows, splitSpanRows, type SpanRows } from '../storage/span-rows';
import { readSegmentRecords, type SegmentInfo } from './segments';
import type { WriteAheadLog } from './wal';

export interface ShipperOptions {
  wal: WriteAheadLog;
  /** Stores rows; resolves once they are stored, and may be called again with the same rows. */
  write(rows: SpanRows): Promise<void>;
  /** Spans per insert. */
  batchMaxSpans: number;
  /** Milliseconds to wait for more appends before an idle log is shipped. */
  batchMaxAgeMs: number;
  /** Maximum backoff between retries of a failed insert, in milliseconds. */
  retryMaxMs: number;
  logger: Logger;
  /**
   * Checks whether storage responds at all. A batch that keeps failing while storage
   * responds, with an error that `rejectsRows` accepts, contains a span that storage
   * rejects, so it is split until that span is found and quarantined.
   */
  isStorageReachable(): Promise<boolean>;
  /**
   * Checks whether an insert failed because of the rows it carried, such as a value that
   * storage cannot parse. Any other failure (a full disk, too many parts, a read-only
   * table) would reject every row alike, so that batch is retried whole instead.
   */
  rejectsRows(error: unknown): boolean;
  onInsert?(outcome: 'ok' | 'error', seconds: number, spans: number): void;
  onRetry?(): void;
  onQuarantine?(spans: number): void;
}

const RETRY_BASE_MS = 100;
/** Failed attempts of one batch, with storage reachable and rejecting rows, before it is split. */
const ATTEMPTS_BEFORE_SPLIT = 3;

/**
 * Moves the log into storage: takes the oldest segment (from memory when this process
 * appended it, from disk otherwise), inserts its spans in batches, and deletes it only
 * once every batch succeeded. A failed insert is retried with capped
 * exponential backoff and full jitter until it succeeds or the shipper stops. In the
 * second case the segment stays for the next start. A crash between insert and delete replays the
 * segment, which the storage contract makes harmless.
 */
export class WalShipper {
  private running: Promise<void> | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  private failures = 0;
  private lastRetryLog = 0;
  private readonly removals = new Set<Promise<void>>();

  constructor(private readonly options: ShipperOptions) {}

  /** True while inserts fail and are being retried. */
  get failing(): boolean {
    return this.failures > 0;
  }

  start(): void {
    this.options.wal.onAppend(() => this.wake?.());
    this.running ??= this.loop();
  }

  /**
   * Ships what it can until the log is empty or `deadlineMs` passed, then stops; what is
   * left stays in the log.
   */
  async stop(deadlineMs: number): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    while (!this.stopped && Date.now() < deadline && this.options.wal.spans > 0) {
      if (this.failing) break;
      await sleep(Math.min(20, deadline - Date.now()));
    }
    this.stopped = true;
    this.wake?.();
    // An insert in flight is given a little past the deadline, then abandoned to the log.
    let timer: NodeJS.Timeout | undefined;
    const abandon = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, deadline - Date.now()) + 1000);
    });
    await Promise.race([this.running, abandon]);
    clearTimeout(timer);
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      if (!(await this.batchReady())) continue;
      const segment = await this.options.wal.nextSegment();
      if (!segment) continue;
      if (await this.ship(segment)) this.remove(segment);
      else if (!this.stopped) await this.idle(1000);
    }
    await Promise.all(this.removals);
  }

  /** Deletes a stored segment while the loop goes on with the next one. */
  private remove(segment: SegmentInfo): void {
    const removal = this.options.wal.remove(segment).catch((error: unknown) => {
      this.options.logger.error(
        { err: error, segment: segment.file },
        'wal segment stored but not deleted; the next start stores it again',
      );
    });
    this.removals.add(removal);
    void removal.then(() => this.removals.delete(removal));
  }

  /**
   * Resolves true when a sealed segment waits or the oldest append in the active one is
   * `batchMaxAgeMs` old. Waiting that long lets one insert carry many requests.
   */
  private async batchReady(): Promise<boolean> {
    const { wal, batchMaxAgeMs } = this.options;
    if (wal.hasSealed) return true;
    const oldest = wal.oldestAppendMs;
    if (oldest === undefined) {
      await this.idle(1000);
      return false;
    }
    const waitMs = oldest + batchMaxAgeMs - Date.now();
    if (waitMs > 0 && !this.stopped) await sleep(waitMs);
    return true;
  }

  /** Waits until an append, a stop or the timeout. */
  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  /** Inserts every span of a segment; false when stopped before all were stored. */
  private async ship(segment: SegmentInfo): Promise<boolean> {
    let entries;
    let undecodable;
    try {
      ({ entries, undecodable } = segment.entries
        ? { entries: segment.entries, undecodable: [] }
        : await readSegmentRecords(segment.file));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        // Retrying cannot bring a deleted file back, and waiting would block every later
        // segment, so the writer moves on.
        this.options.logger.error(
          { err: error, segment: segment.file, spans: segment.spans },
          'wal segment missing: its spans are lost; moving on to the next segment',
        );
        return true;
      }
      this.options.logger.error({ err: error, segment: segment.file }, 'wal segment unreadable');
      return false;
    }
    // A batch contains consecutive entries with one format and column list, up to
    // batchMaxSpans rows.
    let batch: SpanRows[] = [];
    let batchSpans = 0;
    const shipBatch = async () => {
      const rows = joinSpanRows(batch);
      batch = [];
      batchSpans = 0;
      return rows.count === 0 || this.insertWithRetry(rows, segment);
    };
    for (const entry of entries) {
      if (batch.length > 0 && !sameLayout(batch[0], entry.rows)) {
        if (!(await shipBatch())) return false;
      }
      batch.push(entry.rows);
      batchSpans += entry.rows.count;
      if (batchSpans >= this.options.batchMaxSpans && !(await shipBatch())) return false;
    }
    if (!(await shipBatch())) return false;
    if (undecodable.length > 0) {
      // The segment is deleted next, so records it cannot read are kept aside first.
      const file = await this.options.wal.quarantinePayloads(segment, undecodable);
      this.options.logger.error(
        { segment: segment.file, records: undecodable.length, file },
        'wal records with a valid checksum did not decode; copied to the quarantine folder',
      );
    }
    return true;
  }

  private async insertWithRetry(rows: SpanRows, segment: SegmentInfo): Promise<boolean> {
    let attempts = 0;
    while (!this.stopped) {
      const started = performance.now();
      try {
        await this.options.write(rows);
        this.options.onInsert?.('ok', (performance.now() - started) / 1000, rows.count);
        if (this.failures > 0) {
          this.options.logger.info({ failures: this.failures }, 'storage recovered');
        }
        this.failures = 0;
        return true;
      } catch (error) {
        this.options.onInsert?.('error', (performance.now() - started) / 1000, 0);
        this.failures += 1;
        attempts += 1;
        if (
          attempts >= ATTEMPTS_BEFORE_SPLIT &&
          this.options.rejectsRows(error) &&
          (await this.reachable())
        ) {
          return this.isolate(rows, segment, error);
        }
        const waitMs = backoffMs(this.failures, this.options.retryMaxMs);
        this.logRetry(error, rows.count, segment, waitMs);
        this.options.onRetry?.();
        await this.idleUnlessStopped(waitMs);
      }
    }
    return false;
  }

  private async reachable(): Promise<boolean> {
    try {
      return await this.options.isStorageReachable();
    } catch {
      return false;
    }
  }

  /**
   * Splits a batch that storage rejects while it responds, so that the good spans are
   * stored and a span rejected on its own goes to the quarantine folder with the error.
   */
  private async isolate(rows: SpanRows, segment: SegmentInfo, error: unknown): Promise<boolean> {
    const lines = splitSpanRows(rows);
    if (lines.length <= 1) {
      const file = await this.options.wal.quarantineRows(rows, errorMessage(error));
      this.options.onQuarantine?.(rows.count);
      this.failures = 0;
      this.options.logger.error(
        { err: errorMessage(error), file, segment: segment.file },
        'span refused by storage; quarantined',
      );
      return true;
    }
    const middle = lines.length >> 1;
    return (
      (await this.insertWithRetry(joinSpanRows(lines.slice(0, middle)), segment)) &&
      (await this.insertWithRetry(joinSpanRows(lines.slice(middle)), segment))
    );
  }

  private async idleUnlessStopped(ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (!this.stopped && Date.now() < end) await this.idle(end - Date.now());
  }

  /** Logs the first failure, then at most one line every 10 seconds. */
  private logRetry(error: unknown, spans: number, segment: SegmentInfo, waitMs: number): void {
    const now = Date.now();
    if (this.failures > 1 && now - this.lastRetryLog < 10_000) return;
    this.lastRetryLog = now;
    this.options.logger.warn(
      { err: errorMessage(error), spans, segment: segment.file, failures: this.failures, waitMs },
      'insert failed; retrying',
    );
  }
}

/** Capped exponential backoff with full jitter: uniform in [0, min(cap, base * 2^n)]. */
export function backoffMs(failures: number, capMs: number): number {
  const ceiling = Math.min(capMs, RETRY_BASE_MS * 2 ** Math.min(failures, 30));
  return Math.round(Math.random() * ceiling);
}

/** Checks whether two sets of rows can go into one insert: one format, one column list. */
function sameLayout(a: SpanRows, b: SpanRows): boolean {
  if (a.format !== b.format) return false;
  const [x, y] = [a.columns, b.columns];
  return x === y || (x.length === y.length && x.every((column, index) => column === y[index]));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
