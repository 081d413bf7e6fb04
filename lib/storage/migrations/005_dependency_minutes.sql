-- Per-minute service-to-service edges. The client and the server span of one call
-- arrive in different inserts, so no materialized view can join them. Instead the
-- analyzer resolves each closed minute once (a client span's callee is the service of
-- the server span whose parent it is) and stores the edges of that minute here, then
-- marks the minute in dependency_resolved_minutes. Each minute is inserted with its own
-- deduplication token, so two analyzers that resolve the same minute store it once.
CREATE TABLE IF NOT EXISTS ${database}.${table:dependency_minutes} ${onCluster}
(
    minute DateTime CODEC(Delta, ZSTD(1)),
    caller LowCardinality(String),
    callee LowCardinality(String),
    virtual_callee Bool,
    calls SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    latency AggregateFunction(quantilesTDigest(0.5, 0.95, 0.99), UInt64)
)
ENGINE = ${engine:AggregatingMergeTree}
PARTITION BY toDate(minute)
ORDER BY (minute, caller, callee, virtual_callee)
TTL minute + INTERVAL ${retentionDays} DAY DELETE
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 100000;

${distributed:dependency_minutes:toUnixTimestamp(minute)};

CREATE TABLE IF NOT EXISTS ${database}.${table:dependency_resolved_minutes} ${onCluster}
(
    minute DateTime,
    resolved_at DateTime DEFAULT now()
)
ENGINE = ${engine:ReplacingMergeTree}
ORDER BY minute
TTL minute + INTERVAL ${retentionDays} DAY DELETE;

${distributed:dependency_resolved_minutes:toUnixTimestamp(minute)};
