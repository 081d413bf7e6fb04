import { errorMessage } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Storage } from '../lib/storage/clickhouse';
import { collectorName, reportBacklog } from '../lib/storage/collector-backlog';

/** Milliseconds between two reports, well inside the two minutes a dependency block waits. */
export const BACKLOG_REPORT_INTERVAL_MS = 5_000;

/**
 * Reports the collector's oldest unstored span to storage at once and then every
 * `BACKLOG_REPORT_INTERVAL_MS`, for an analyzer in another process. A failed report is
 * logged and the next one tried on time, since storage may be down while spans wait.
 */
export class BacklogReporter {
  private readonly name = collectorName();
  private readonly timer: NodeJS.Timeout;
  private pending: Promise<void> = Promise.resolve();
  private failing = false;

  constructor(
    private readonly storage: Storage,
    private readonly oldestUnstoredMs: () => number | undefined,
    private readonly logger: Logger,
    intervalMs = BACKLOG_REPORT_INTERVAL_MS,
  ) {
    this.report();
    this.timer = setInterval(() => this.report(), intervalMs);
    this.timer.unref();
  }

  private report(): void {
    this.pending = this.pending.then(async () => {
      try {
        await reportBacklog(this.storage, this.name, this.oldestUnstoredMs());
        if (this.failing) this.logger.info({ collector: this.name }, 'backlog report stored again');
        this.failing = false;
      } catch (error) {
        if (!this.failing) {
          this.logger.warn(
            { err: errorMessage(error), collector: this.name },
            'backlog report failed; an analyzer in another process may close dependency blocks early',
          );
        }
        this.failing = true;
      }
    });
  }

  /** Stops the timer and stores a last report, after the log was flushed as far as it went. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.report();
    await this.pending;
  }
}
