import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Ingest protocol of a span: OTLP over HTTP or gRPC, or Zipkin v2 JSON. */
export type Protocol = 'otlp_http' | 'otlp_grpc' | 'zipkin';

/**
 * The collector's Prometheus metrics, on a registry of its own so that several
 * collectors in one process (tests) do not share counters.
 */
export class CollectorMetrics {
  readonly registry = new Registry();

  readonly spansReceived = new Counter({
    name: 'faultline_spans_received_total',
    help: 'Spans in export requests that were decoded',
    labelNames: ['protocol'],
    registers: [this.registry],
  });

  readonly spansAccepted = new Counter({
    name: 'faultline_spans_accepted_total',
    help: 'Spans acknowledged to the sender (in the write-ahead log, or stored when it is off)',
    labelNames: ['protocol'],
    registers: [this.registry],
  });

  readonly spansRejected = new Counter({
    name: 'faultline_spans_rejected_total',
    help: 'Spans not accepted, by reason: invalid_id, or the reason the whole request was rejected',
    labelNames: ['protocol', 'reason'],
    registers: [this.registry],
  });

  readonly requestsRejected = new Counter({
    name: 'faultline_requests_rejected_total',
    help: 'Export requests rejected as a whole, by reason (body_too_large, unauthorized, overloaded, ...)',
    labelNames: ['protocol', 'reason'],
    registers: [this.registry],
  });

  readonly spanRepairs = new Counter({
    name: 'faultline_span_repairs_total',
    help: 'Spans kept after a repair, by repair (end_before_start, attribute_value_truncated, ...)',
    labelNames: ['repair'],
    registers: [this.registry],
  });

  readonly spansWritten = new Counter({
    name: 'faultline_spans_written_total',
    help: 'Spans inserted into ClickHouse',
    registers: [this.registry],
  });

  readonly insertRetries = new Counter({
    name: 'faultline_insert_retries_total',
    help: 'Failed inserts that are retried after a backoff',
    registers: [this.registry],
  });

  readonly insertSeconds = new Histogram({
    name: 'faultline_insert_duration_seconds',
    help: 'Duration of inserts into ClickHouse, successful or not',
    labelNames: ['outcome'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly walBytes = new Gauge({
    name: 'faultline_wal_bytes',
    help: 'Bytes of write-ahead log segments on disk',
    registers: [this.registry],
  });

  readonly walSegments = new Gauge({
    name: 'faultline_wal_segments',
    help: 'Write-ahead log segment files on disk',
    registers: [this.registry],
  });

  readonly walOldestAgeSeconds = new Gauge({
    name: 'faultline_wal_oldest_unwritten_age_seconds',
    help: 'Age of the oldest span acknowledged but not yet in ClickHouse; 0 when none waits',
    registers: [this.registry],
  });

  readonly walQuarantined = new Counter({
    name: 'faultline_wal_quarantined_bytes_total',
    help: 'Bytes of corrupt or truncated write-ahead log moved to the quarantine folder',
    registers: [this.registry],
  });

  readonly spansQuarantined = new Counter({
    name: 'faultline_spans_quarantined_total',
    help: 'Acknowledged spans that storage rejected on their own, moved to the quarantine folder',
    registers: [this.registry],
  });

  readonly queueDepth = new Gauge({
    name: 'faultline_queue_spans',
    help: 'Spans accepted and not yet in ClickHouse (write-ahead log or batcher)',
    registers: [this.registry],
  });

  readonly inflightBytes = new Gauge({
    name: 'faultline_inflight_request_bytes',
    help: 'Bytes of export requests being read or decoded',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'faultline_' });
  }
}
