import type { Logger } from '../lib/logger';
import type { SpanRecord } from '../lib/model/span';

export interface BatcherOptions {
  /** Buffered spans that start an insert at once. */
  maxSpans: number;
  /** Milliseconds the oldest buffered span waits before an insert starts. */
  maxAgeMs: number;
  write(spans: SpanRecord[]): Promise<void>;
  logger: Logger;
}

interface Pending {
  spans: SpanRecord[];
  waiters: { resolve(): void; reject(error: unknown): void }[];
}

/**
 * Gathers the spans of concurrent requests into shared inserts. `add` resolves once the
 * insert holding its spans succeeded, so a request answered after `add` has its spans
 * stored; it rejects when that insert failed. One insert runs at a time, and spans that
 * arrive meanwhile form the next batch.
 */
export class SpanBatcher {
  private pending: Pending = { spans: [], waiters: [] };
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private inFlight = 0;

  constructor(private readonly options: BatcherOptions) {}

  /** Spans buffered or being inserted. */
  get queuedSpans(): number {
    return this.pending.spans.length + this.inFlight;
  }

  add(spans: SpanRecord[]): Promise<void> {
    if (spans.length === 0) return Promise.resolve();
    const done = new Promise<void>((resolve, reject) => {
      this.pending.waiters.push({ resolve, reject });
    });
    for (const span of spans) this.pending.spans.push(span);

    if (this.pending.spans.length >= this.options.maxSpans) {
      this.flush();
    } else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.options.maxAgeMs);
    }
    return done;
  }

  /** Starts inserting what is buffered and resolves when every insert so far has ended. */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const batch = this.pending;
    if (batch.spans.length > 0) {
      this.pending = { spans: [], waiters: [] };
      this.inFlight += batch.spans.length;
      this.writing = this.writing.then(() => this.writeBatch(batch));
    }
    return this.writing;
  }

  private async writeBatch(batch: Pending): Promise<void> {
    const started = Date.now();
    try {
      await this.options.write(batch.spans);
      this.options.logger.debug(
        { spans: batch.spans.length, requests: batch.waiters.length, ms: Date.now() - started },
        'batch written',
      );
      for (const waiter of batch.waiters) waiter.resolve();
    } catch (error) {
      this.options.logger.error({ err: error, spans: batch.spans.length }, 'batch insert failed');
      for (const waiter of batch.waiters) waiter.reject(error);
    } finally {
      this.inFlight -= batch.spans.length;
    }
  }
}
