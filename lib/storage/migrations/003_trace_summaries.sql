-- One row a trace, kept up to date at insert by a materialized view over spans. Trace
-- search reads it instead of regrouping every span of every matching trace, and trace
-- lookup reads its start and end to prune the daily partitions of spans. Rows of one
-- trace from different inserts merge in the background; readers still GROUP BY
-- trace_id and finish the aggregation. A span stored twice counts once (uniq of span
-- id and kind), like the duplicates that readers of spans collapse.
CREATE TABLE IF NOT EXISTS ${database}.${table:trace_summaries} ${onCluster}
(
    trace_id UInt128 CODEC(ZSTD(1)),
    start_time SimpleAggregateFunction(min, DateTime64(9)) CODEC(Delta, ZSTD(1)),
    end_time SimpleAggregateFunction(max, DateTime64(9)) CODEC(Delta, ZSTD(1)),
    -- (service name, span name) of the earliest span without a parent.
    root AggregateFunction(argMinIf, Tuple(String, String), DateTime64(9), UInt8),
    span_count AggregateFunction(uniq, UInt64, UInt8),
    error_count AggregateFunction(uniqIf, UInt64, UInt8),
    services SimpleAggregateFunction(groupUniqArrayArray, Array(String)) CODEC(ZSTD(1))
)
ENGINE = ${engine:AggregatingMergeTree}
PARTITION BY toDate(start_time)
ORDER BY trace_id
TTL toDateTime(start_time) + INTERVAL ${retentionDays} DAY DELETE
SETTINGS ttl_only_drop_parts = 1;

${distributed:trace_summaries:cityHash64(trace_id)};

CREATE MATERIALIZED VIEW IF NOT EXISTS ${database}.trace_summaries_mv ${onCluster}
TO ${database}.${table:trace_summaries}
AS SELECT
    trace_id,
    min(start_time) AS start_time,
    max(end_time) AS end_time,
    argMinIfState((toString(service_name), toString(name)), start_time, toUInt8(parent_span_id = 0)) AS root,
    uniqState(span_id, toUInt8(kind)) AS span_count,
    uniqIfState(span_id, toUInt8(is_error)) AS error_count,
    groupUniqArray(toString(service_name)) AS services
FROM ${database}.${table:spans}
GROUP BY trace_id;
