import { core } from '@opentelemetry/sdk-node';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { describeError, type SdkLogger } from './logger';
import { redactUrl } from './endpoint';

type ExportCallback = Parameters<SpanExporter['export']>[1];

export const FAILURE_REPORT_INTERVAL_MS = 60_000;

/**
 * Wraps an exporter so that failed exports reach the SDK logger. OpenTelemetry reports them only
 * through its diag logger, which is silent unless the application sets one. The first failure is
 * logged at once. Later ones are counted and logged as one line at the next failure after
 * FAILURE_REPORT_INTERVAL_MS, or at shutdown.
 */
export class ReportingExporter implements SpanExporter {
  private failedExports = 0;
  private failedSpans = 0;
  private lastReportAt = Number.NEGATIVE_INFINITY;
  private lastError = '';

  constructor(
    private readonly exporter: SpanExporter,
    private readonly tracesUrl: string,
    private readonly logger: SdkLogger,
  ) {}

  export(spans: ReadableSpan[], resultCallback: ExportCallback): void {
    this.exporter.export(spans, (result) => {
      if (result.code !== core.ExportResultCode.SUCCESS) {
        this.recordFailure(spans.length, result.error);
      }
      resultCallback(result);
    });
  }

  shutdown(): Promise<void> {
    this.reportFailures();
    return this.exporter.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.exporter.forceFlush?.() ?? Promise.resolve();
  }

  private recordFailure(spanCount: number, error: unknown): void {
    this.failedExports += 1;
    this.failedSpans += spanCount;
    this.lastError = error === undefined ? 'no error details' : describeError(error);

    if (Date.now() - this.lastReportAt >= FAILURE_REPORT_INTERVAL_MS) {
      this.reportFailures();
    }
  }

  private reportFailures(): void {
    if (this.failedExports === 0) {
      return;
    }
    this.logger.warn(
      `failed to export ${countOf(this.failedSpans, 'span')} to ${redactUrl(this.tracesUrl)} ` +
        `in ${countOf(this.failedExports, 'request')}, last error: ${this.lastError}. ` +
        'Those spans are lost.',
    );
    this.failedExports = 0;
    this.failedSpans = 0;
    this.lastReportAt = Date.now();
  }
}

function countOf(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
