-- Incidents: findings grouped by fingerprint. Each change writes the whole incident again
-- with a later updated_at; readers use FINAL so that the latest row of an id wins.
CREATE TABLE IF NOT EXISTS ${database}.${table:incidents} ${onCluster}
(
    id String,
    fingerprint String,
    status LowCardinality(String),
    severity LowCardinality(String),
    opened_at DateTime64(3),
    updated_at DateTime64(3),
    incident String CODEC(ZSTD(3))
)
ENGINE = ${engine:ReplacingMergeTree:updated_at}
ORDER BY id;

${distributed:incidents:cityHash64(id)};
