-- Reports of the scheduled analysis, one row each, the report as JSON.
CREATE TABLE IF NOT EXISTS ${database}.${table:reports} ${onCluster}
(
    id String,
    created_at DateTime64(3),
    window_start DateTime64(3),
    window_end DateTime64(3),
    findings UInt32,
    top_finding String,
    report String CODEC(ZSTD(3))
)
ENGINE = ${engine:MergeTree}
ORDER BY (created_at, id)
TTL toDateTime(created_at) + INTERVAL ${retentionDays} DAY DELETE;

${distributed:reports:cityHash64(id)};
