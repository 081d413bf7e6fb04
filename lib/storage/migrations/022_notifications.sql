-- Webhook deliveries: one row a notification and target, rewritten after each attempt.
-- The id is the idempotency key that receivers see, so a retried delivery is recognisable.
-- The target is named by its setting and position, never by its URL, which may hold a secret.
CREATE TABLE IF NOT EXISTS ${database}.${table:notifications} ${onCluster}
(
    id String,
    incident_id String,
    event LowCardinality(String),
    target String,
    payload String CODEC(ZSTD(3)),
    attempts UInt32,
    delivered Bool,
    failed Bool,
    last_error String,
    next_attempt_at DateTime64(3),
    created_at DateTime64(3),
    updated_at DateTime64(3)
)
ENGINE = ${engine:ReplacingMergeTree:updated_at}
ORDER BY id;

${distributed:notifications:cityHash64(id)};
