-- Per-minute figures of each operation and version, written at insert by a materialized
-- view over spans, so that the report's deploy, latency and entry-point checks read one
-- row an operation a minute instead of every span of the window and the baseline:
-- - the key: service, version and environment, span name and kind, the node called,
--   and whether the span is a root (the entry point of a request);
-- - spans and errors;
-- - durations: a histogram of the natural log of the duration in nanoseconds, with 16
--   buckets a factor of e (each bucket about 6.5% wide), as sorted (bucket, count)
--   arrays that sumMap merges. Bucket b holds durations from exp(b/16) up to
--   exp((b+1)/16) nanoseconds; a duration of 0 counts as 1 ns.
-- A span stored twice by a retried insert counts twice, as in operation_minutes.
CREATE TABLE IF NOT EXISTS ${database}.${table:latency_minutes} ${onCluster}
(
    minute DateTime CODEC(Delta, ZSTD(1)),
    service_name LowCardinality(String),
    service_version LowCardinality(String),
    deployment_environment LowCardinality(String),
    name LowCardinality(String),
    kind Enum8('UNSPECIFIED' = 0, 'INTERNAL' = 1, 'SERVER' = 2, 'CLIENT' = 3, 'PRODUCER' = 4, 'CONSUMER' = 5),
    remote_service LowCardinality(String),
    is_root Bool,
    spans SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    durations SimpleAggregateFunction(sumMap, Tuple(Array(UInt16), Array(UInt64))) CODEC(ZSTD(1))
)
ENGINE = ${engine:AggregatingMergeTree}
PARTITION BY toDate(minute)
ORDER BY (minute, service_name, name, kind, remote_service, service_version, deployment_environment, is_root)
TTL minute + INTERVAL ${retentionDays} DAY DELETE
SETTINGS ttl_only_drop_parts = 1;

${distributed:latency_minutes:rand()};

CREATE MATERIALIZED VIEW IF NOT EXISTS ${database}.latency_minutes_mv ${onCluster}
TO ${database}.${table:latency_minutes}
AS SELECT
    toStartOfMinute(start_time) AS minute,
    service_name,
    service_version,
    deployment_environment,
    name,
    kind,
    remote_service,
    parent_span_id = 0 AS is_root,
    toUInt64(count()) AS spans,
    toUInt64(countIf(is_error)) AS errors,
    sumMap([toUInt16(floor(log(greatest(duration_ns, 1)) * 16))], [toUInt64(1)]) AS durations
FROM ${database}.${table:spans}
GROUP BY minute, service_name, service_version, deployment_environment, name, kind, remote_service, is_root;

-- A database that already holds spans gets the figures of every minute it keeps.
INSERT INTO ${database}.latency_minutes
SELECT toStartOfMinute(start_time) AS minute, service_name, service_version,
    deployment_environment, name, kind, remote_service, parent_span_id = 0 AS is_root,
    toUInt64(count()), toUInt64(countIf(is_error)),
    sumMap([toUInt16(floor(log(greatest(duration_ns, 1)) * 16))], [toUInt64(1)])
FROM ${database}.spans
GROUP BY minute, service_name, service_version, deployment_environment, name, kind,
    remote_service, is_root;

-- The user of a request, promoted like the attributes of migration 002, so that counting
-- the distinct users hit by a finding reads a small column instead of the attribute map.
ALTER TABLE ${database}.${table:spans} ${onCluster}
    ADD COLUMN IF NOT EXISTS enduser_id LowCardinality(String)
        MATERIALIZED attributes_string['enduser.id'];

${clusterOnly} ALTER TABLE ${database}.spans ${onCluster}
    ADD COLUMN IF NOT EXISTS enduser_id LowCardinality(String)
        MATERIALIZED attributes_string['enduser.id'];
