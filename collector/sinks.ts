import { FaultlineError, errorMessage } from '../lib/errors';
import type { SpanRecord } from '../lib/model/span';
import { SpanBlockGroup, type ProtobufRowsOptions } from '../lib/otlp/protobuf-rows';
import { toSpanRows, type SpanRows } from '../lib/storage/span-rows';
import type { WalShipper } from '../lib/wal/shipper';
import type { WriteAheadLog } from '../lib/wal/wal';
import type { SpanBatcher } from './batcher';
import type { ProtobufAcceptance, SpanSink } from './ingest';

/**
 * Milliseconds the first export of a group waits for others before the group goes to the
 * log, so a lone export waits this long for its answer. Under load, exports arrive every
 * few milliseconds, and a group gives the engine one block instead of one an export.
 */
const GROUP_WAIT_MS = 10;
/** Spans at which a group goes to the log at once. */
export const GROUP_MAX_SPANS = 8192;

/** Acknowledges spans once they are in the write-ahead log; the shipper stores them later. */
export class WalSink implements SpanSink {
  private lastFullMs = 0;
  private readonly group = new SpanBlockGroup();
  /** Settles the exports of the open group once its block is in the log. */
  private groupLogged:
    | { promise: Promise<void>; resolve(): void; reject(error: unknown): void }
    | undefined;
  private groupTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly wal: WriteAheadLog,
    private readonly shipper: WalShipper,
    private readonly maxBytes: number,
    private readonly maxQueuedSpans: number,
  ) {}

  get queuedSpans(): number {
    return this.wal.spans;
  }

  admissionError(): FaultlineError | undefined {
    if (this.wal.error) return this.wal.error;
    if (this.wal.bytes >= this.maxBytes) return this.fullError(this.wal.bytes);
    // While storage works, a long queue means spans arrive faster than inserts take them.
    // Refusing early bounds how far storage lags behind, and the log's budget stays for outages.
    if (!this.shipper.failing && this.wal.spans >= this.maxQueuedSpans) {
      return new FaultlineError(
        'FL_OVERLOADED',
        `spans arrive faster than storage takes them; ${this.wal.spans} spans wait in the write-ahead log, limit FAULTLINE_WAL_MAX_QUEUED_SPANS=${this.maxQueuedSpans}: retry later`,
        { retryAfterSeconds: 1 },
      );
    }
    return undefined;
  }

  async accept(spans: SpanRecord[]): Promise<void> {
    if (spans.length === 0) return;
    await this.acceptRows(toSpanRows(spans));
  }

  /**
   * Converts a protobuf body into the open group of exports, which goes to the log as one
   * block. Returns undefined when the body needs the record path.
   */
  acceptProtobuf(
    body: Uint8Array,
    options: ProtobufRowsOptions,
    check: (spans: number) => void,
  ): ProtobufAcceptance | undefined {
    const spans = this.group.add(body, options, check);
    if (spans === undefined) return undefined;
    if (!this.groupLogged) {
      let resolve!: () => void;
      let reject!: (error: unknown) => void;
      const promise = new Promise<void>((onResolve, onReject) => {
        resolve = onResolve;
        reject = onReject;
      });
      this.groupLogged = { promise, resolve, reject };
      this.groupTimer = setTimeout(() => this.logGroup(), GROUP_WAIT_MS);
    }
    const logged = this.groupLogged.promise;
    if (this.group.spans >= GROUP_MAX_SPANS) this.logGroup();
    return { spans, logged };
  }

  /** Appends the open group's block to the log and settles its exports. */
  private logGroup(): void {
    clearTimeout(this.groupTimer);
    const rows = this.group.take();
    const logged = this.groupLogged;
    this.groupLogged = undefined;
    if (!rows || !logged) return;
    this.acceptRows(rows).then(logged.resolve, logged.reject);
  }

  async acceptRows(rows: SpanRows): Promise<void> {
    try {
      await this.wal.append(rows);
    } catch (error) {
      if (error instanceof FaultlineError && error.code === 'FL_WAL_FULL') {
        this.lastFullMs = Date.now();
        throw this.fullError(this.wal.bytes);
      }
      throw error;
    }
  }

  /**
   * Why the collector should not get traffic: the log cannot be written, is at 90% of its
   * budget, or refused an append for lack of room in the last 5 seconds.
   */
  notReadyReason(): string | undefined {
    const refusal = this.admissionError();
    if (refusal) return refusal.message;
    if (this.wal.bytes >= this.maxBytes * 0.9 || Date.now() - this.lastFullMs < 5000) {
      return `write-ahead log near its budget: ${this.wal.bytes} of ${this.maxBytes} bytes`;
    }
    return undefined;
  }

  /**
   * A full log while storage fails is an outage (503); while storage works, senders are
   * faster than inserts and should slow down (429).
   */
  private fullError(bytes: number): FaultlineError {
    if (this.shipper.failing) {
      return new FaultlineError(
        'FL_WAL_FULL',
        `storage is failing and the write-ahead log holds ${bytes} bytes, its limit FAULTLINE_WAL_MAX_BYTES=${this.maxBytes}: retry later`,
        { retryAfterSeconds: 10 },
      );
    }
    return new FaultlineError(
      'FL_OVERLOADED',
      `spans arrive faster than storage takes them; the write-ahead log holds ${bytes} bytes of FAULTLINE_WAL_MAX_BYTES=${this.maxBytes}: retry later`,
      { retryAfterSeconds: 2 },
    );
  }
}

/** Acknowledges spans once ClickHouse stored them, through the shared batcher. */
export class SyncSink implements SpanSink {
  constructor(private readonly batcher: SpanBatcher) {}

  get queuedSpans(): number {
    return this.batcher.queuedSpans;
  }

  admissionError(): FaultlineError | undefined {
    return undefined;
  }

  async accept(spans: SpanRecord[]): Promise<void> {
    try {
      await this.batcher.add(spans);
    } catch (error) {
      throw new FaultlineError(
        'FL_STORAGE_UNAVAILABLE',
        `spans could not be stored: ${errorMessage(error)}; retry later`,
        { cause: error, retryAfterSeconds: 5 },
      );
    }
  }
}
