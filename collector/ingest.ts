import crypto from 'node:crypto';
import { FaultlineError, errorMessage } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { SpanRecord } from '../lib/model/span';
import {
  countSpans,
  flattenExportRequest,
  type FlattenLimits,
  type FlattenResult,
} from '../lib/otlp/flatten';
import { decodeSpansFast } from '../lib/otlp/fast-decode';
import type { ProtobufRowsOptions } from '../lib/otlp/protobuf-rows';
import type { OtlpExportRequest } from '../lib/otlp/request';
import type { CollectorMetrics, Protocol } from './metrics';

/**
 * Where accepted spans go: the write-ahead log, or the batcher that inserts them
 * synchronously. `accept` resolves once the spans cannot be lost, because they are
 * durable in the log or stored. It throws a FaultlineError with a Retry-After when the
 * sink is full or storage is failing.
 */
export interface SpanSink {
  accept(spans: SpanRecord[]): Promise<void>;
  /**
   * Converts a protobuf body straight into rows and accepts them, as `accept` does
   * records; `logged` resolves when `accept` would. Returns undefined, having accepted
   * nothing, when the body needs the record path. `check` gets the span count before
   * anything is accepted and may throw.
   */
  acceptProtobuf?(
    body: Uint8Array,
    options: ProtobufRowsOptions,
    check: (spans: number) => void,
  ): ProtobufAcceptance | undefined;
  /** The error a new export would get now, checked before its body is read. */
  admissionError(): FaultlineError | undefined;
  /** Spans accepted and not yet stored. */
  readonly queuedSpans: number;
}

/** Spans of a protobuf body that a sink took, and the promise that they are in the log. */
export interface ProtobufAcceptance {
  spans: number;
  logged: Promise<void>;
}

export interface IngestLimits extends FlattenLimits {
  maxSpansPerRequest: number;
  /** Days spans are kept. An older span would be dropped as soon as it is stored. */
  retentionDays: number;
  /** Request bytes held in memory at once across all exports. */
  maxInflightBytes: number;
}

/** Outcome of one export: spans accepted, and spans rejected (invalid ids, or older than the retention) with the first reason. */
export interface ExportOutcome {
  acceptedSpans: number;
  rejectedSpans: number;
  errorMessage: string;
}

/**
 * The protocol-independent part of ingest: authorization, memory admission, the
 * per-request span limit, validation and repair, hand-off to the sink, and metrics.
 * The OTLP/HTTP, OTLP/gRPC and Zipkin receivers all go through it.
 */
export class Ingest {
  private inflight = 0;
  private readonly tokenDigests: Buffer[];

  constructor(
    private readonly options: {
      sink: SpanSink;
      limits: IngestLimits;
      tokens: string[];
      metrics: CollectorMetrics;
      logger: Logger;
    },
  ) {
    this.tokenDigests = options.tokens.map(digest);
  }

  get metrics(): CollectorMetrics {
    return this.options.metrics;
  }

  /** The limits of validation and repair, for decoders that flatten as they decode. */
  get flattenLimits(): FlattenLimits {
    return this.options.limits;
  }

  /**
   * Checks an `Authorization` header against the configured tokens. Every token is
   * compared in constant time, so the response leaks neither which tokens exist nor how
   * much of one matched.
   */
  authorize(header: string | undefined): FaultlineError | undefined {
    if (this.tokenDigests.length === 0) return undefined;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    const offered = digest(match ? match[1] : '');
    let valid = false;
    for (const known of this.tokenDigests) valid = crypto.timingSafeEqual(known, offered) || valid;
    if (valid) return undefined;
    return new FaultlineError(
      'FL_UNAUTHORIZED',
      'missing or unknown bearer token: send the header "Authorization: Bearer <token>" with a token from FAULTLINE_INGEST_TOKENS',
    );
  }

  /**
   * Reserves memory for a request of `bytes` (its declared or largest possible size);
   * returns the release function. Throws FL_OVERLOADED past the in-flight budget.
   */
  reserve(bytes: number): () => void {
    const admission = this.options.sink.admissionError();
    if (admission) throw admission;
    const limit = this.options.limits.maxInflightBytes;
    if (this.inflight > 0 && this.inflight + bytes > limit) {
      throw new FaultlineError(
        'FL_OVERLOADED',
        `collector overloaded: ${this.inflight} bytes of requests in memory, limit ${limit} bytes; retry later or raise FAULTLINE_MAX_INFLIGHT_BYTES`,
        { retryAfterSeconds: 1 },
      );
    }
    this.inflight += bytes;
    this.options.metrics.inflightBytes.set(this.inflight);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inflight -= bytes;
      this.options.metrics.inflightBytes.set(this.inflight);
    };
  }

  /** Validates, repairs and hands a decoded request to the sink. */
  async ingest(protocol: Protocol, request: OtlpExportRequest): Promise<ExportOutcome> {
    this.checkSpanCount(countSpans(request));
    return this.accept(protocol, flattenExportRequest(request, this.options.limits));
  }

  /**
   * Hands spans that a decoder flattened with `flattenLimits`, as decodeSpansFast does, to
   * the sink, with the checks and metrics of `ingest`. The per-request limit counts the
   * rejected spans too, as it does there.
   */
  async ingestFlattened(protocol: Protocol, flattened: FlattenResult): Promise<ExportOutcome> {
    this.checkSpanCount(flattened.spans.length + flattened.rejectedSpans);
    return this.accept(protocol, flattened);
  }

  /**
   * Converts an OTLP protobuf body straight into rows (see `SpanBlockGroup`) when the
   * sink takes them and the body needs no repair or rejection. Any other body is decoded into
   * records as `ingestFlattened` does. Throws FL_UNDECODABLE_BODY.
   */
  async ingestProtobuf(protocol: Protocol, body: Uint8Array): Promise<ExportOutcome> {
    const { sink, limits, metrics } = this.options;
    const accepted = sink.acceptProtobuf?.(
      body,
      { limits, oldestNs: retentionStartNs(limits.retentionDays) },
      (spans) => this.checkSpanCount(spans),
    );
    if (!accepted) return this.ingestFlattened(protocol, decodeSpansFast(body, limits));
    metrics.spansReceived.inc({ protocol }, accepted.spans);
    await accepted.logged;
    metrics.spansAccepted.inc({ protocol }, accepted.spans);
    return { acceptedSpans: accepted.spans, rejectedSpans: 0, errorMessage: '' };
  }

  private checkSpanCount(total: number): void {
    const limit = this.options.limits.maxSpansPerRequest;
    if (total > limit) {
      throw new FaultlineError(
        'FL_TOO_MANY_SPANS',
        `request carries ${total} spans, limit ${limit}: lower the exporter's batch size or raise FAULTLINE_MAX_SPANS_PER_REQUEST`,
      );
    }
  }

  private async accept(protocol: Protocol, flattened: FlattenResult): Promise<ExportOutcome> {
    const { limits, metrics } = this.options;
    metrics.spansReceived.inc({ protocol }, flattened.spans.length + flattened.rejectedSpans);
    if (flattened.rejectedSpans > 0) {
      metrics.spansRejected.inc({ protocol, reason: 'invalid_id' }, flattened.rejectedSpans);
    }
    const { kept, expired, expiredMessage } = splitExpired(flattened.spans, limits.retentionDays);
    if (expired > 0) metrics.spansRejected.inc({ protocol, reason: 'expired' }, expired);
    countRepairs(metrics, kept);
    await this.options.sink.accept(kept);
    metrics.spansAccepted.inc({ protocol }, kept.length);
    return {
      acceptedSpans: kept.length,
      rejectedSpans: flattened.rejectedSpans + expired,
      errorMessage: flattened.errorMessage || expiredMessage,
    };
  }

  /** Counts a request refused as a whole, and logs it at a bounded rate. */
  recordRefusal(protocol: Protocol, error: unknown, spans = 0): void {
    const reason =
      error instanceof FaultlineError ? error.code.slice(3).toLowerCase() : 'internal_error';
    this.options.metrics.requestsRejected.inc({ protocol, reason });
    if (spans > 0) this.options.metrics.spansRejected.inc({ protocol, reason }, spans);
    this.warnLimited(reason, { protocol, reason, err: errorMessage(error) });
  }

  private lastWarn = new Map<string, number>();

  /** Logs one line per reason every 10 seconds at most; the counters carry the rest. */
  private warnLimited(key: string, fields: Record<string, unknown>): void {
    const now = Date.now();
    if (now - (this.lastWarn.get(key) ?? 0) < 10_000) return;
    this.lastWarn.set(key, now);
    this.options.logger.warn(fields, 'export rejected');
  }
}

/**
 * Separates the spans that start before the retention period. Storage drops such a span as
 * soon as its part is written, so it is rejected and reported instead of accepted.
 */
function splitExpired(spans: SpanRecord[], retentionDays: number) {
  const cutoffNs = retentionStartNs(retentionDays);
  const kept = spans.filter((span) => BigInt(span.startTimeUnixNano) >= cutoffNs);
  const first = spans.find((span) => BigInt(span.startTimeUnixNano) < cutoffNs);
  const expiredMessage = first
    ? `span ${first.spanId} of trace ${first.traceId} started at ${new Date(Number(BigInt(first.startTimeUnixNano) / 1_000_000n)).toISOString()}, before the retention of ${retentionDays} days: send recent spans, or raise FAULTLINE_RETENTION_DAYS`
    : '';
  return { kept, expired: spans.length - kept.length, expiredMessage };
}

/** Returns the earliest start time, in nanoseconds, that storage keeps now. */
function retentionStartNs(retentionDays: number): bigint {
  return BigInt(Date.now() - retentionDays * 86_400_000) * 1_000_000n;
}

function digest(token: string): Buffer {
  return crypto.createHash('sha256').update(token).digest();
}

function countRepairs(metrics: CollectorMetrics, spans: SpanRecord[]): void {
  const counts = new Map<string, number>();
  for (const span of spans) {
    for (const repair of span.ingestWarnings) counts.set(repair, (counts.get(repair) ?? 0) + 1);
  }
  for (const [repair, count] of counts) metrics.spanRepairs.inc({ repair }, count);
}
