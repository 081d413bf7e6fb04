-- Per-minute RED figures of each operation (service, span name, kind), written at insert
-- by a materialized view over spans: calls, errors and a t-digest of durations in
-- nanoseconds that merges across minutes, so a report over hours reads one row an
-- operation a minute. A span stored twice by a retried insert counts twice here.
CREATE TABLE IF NOT EXISTS ${database}.${table:operation_minutes} ${onCluster}
(
    minute DateTime CODEC(Delta, ZSTD(1)),
    service_name LowCardinality(String),
    name LowCardinality(String),
    kind Enum8('UNSPECIFIED' = 0, 'INTERNAL' = 1, 'SERVER' = 2, 'CLIENT' = 3, 'PRODUCER' = 4, 'CONSUMER' = 5),
    calls SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    latency AggregateFunction(quantilesTDigest(0.5, 0.95, 0.99), UInt64)
)
ENGINE = ${engine:AggregatingMergeTree}
PARTITION BY toDate(minute)
ORDER BY (service_name, name, kind, minute)
TTL minute + INTERVAL ${retentionDays} DAY DELETE
SETTINGS ttl_only_drop_parts = 1;

${distributed:operation_minutes:rand()};

CREATE MATERIALIZED VIEW IF NOT EXISTS ${database}.operation_minutes_mv ${onCluster}
TO ${database}.${table:operation_minutes}
AS SELECT
    toStartOfMinute(start_time) AS minute,
    service_name,
    name,
    kind,
    toUInt64(count()) AS calls,
    toUInt64(countIf(is_error)) AS errors,
    quantilesTDigestState(0.5, 0.95, 0.99)(duration_ns) AS latency
FROM ${database}.${table:spans}
GROUP BY minute, service_name, name, kind;
