-- The spans that make service-to-service edges (CLIENT, PRODUCER, SERVER and CONSUMER),
-- with only the columns the edge join needs, ordered by minute. The client and server
-- halves of a call arrive in different inserts, so edges are joined at read time; spans
-- is ordered by trace id, and a join over one minute of it would read the time column of
-- every row of the day. This table is read by minute instead, so the join over a few
-- minutes reads only those minutes. Once a minute is closed its edges live in
-- dependency_minutes, so these rows are kept for one day only; older ranges fall back
-- to spans. A span stored twice is collapsed by the readers, as in spans.
CREATE TABLE IF NOT EXISTS ${database}.${table:call_spans} ${onCluster}
(
    minute DateTime CODEC(Delta, ZSTD(1)),
    kind Enum8('UNSPECIFIED' = 0, 'INTERNAL' = 1, 'SERVER' = 2, 'CLIENT' = 3, 'PRODUCER' = 4, 'CONSUMER' = 5) CODEC(ZSTD(1)),
    trace_id UInt128 CODEC(ZSTD(1)),
    span_id UInt64 CODEC(ZSTD(1)),
    parent_span_id UInt64 CODEC(ZSTD(1)),
    start_time DateTime64(9) CODEC(Delta, ZSTD(1)),
    duration_ns UInt64 CODEC(T64, ZSTD(1)),
    service_name LowCardinality(String) CODEC(ZSTD(1)),
    remote_service LowCardinality(String) CODEC(ZSTD(1)),
    is_error Bool CODEC(ZSTD(1))
)
ENGINE = ${engine:MergeTree}
PARTITION BY toStartOfHour(minute)
ORDER BY (minute, kind, trace_id, span_id)
TTL minute + INTERVAL 1 DAY DELETE
SETTINGS ttl_only_drop_parts = 1;

${distributed:call_spans:cityHash64(trace_id)};

CREATE MATERIALIZED VIEW IF NOT EXISTS ${database}.call_spans_mv ${onCluster}
TO ${database}.${table:call_spans}
AS SELECT
    toStartOfMinute(start_time) AS minute,
    kind,
    trace_id,
    span_id,
    parent_span_id,
    start_time,
    duration_ns,
    service_name,
    remote_service,
    is_error
FROM ${database}.${table:spans}
WHERE kind IN ('CLIENT', 'PRODUCER', 'SERVER', 'CONSUMER');

-- A database that already holds spans gets the last day's call spans, so that minutes
-- not resolved yet still find their edges.
INSERT INTO ${database}.call_spans
SELECT toStartOfMinute(start_time), kind, trace_id, span_id, parent_span_id, start_time,
    duration_ns, service_name, remote_service, is_error
FROM ${database}.spans
WHERE kind IN ('CLIENT', 'PRODUCER', 'SERVER', 'CONSUMER')
    AND start_time >= now() - INTERVAL 1 DAY;
