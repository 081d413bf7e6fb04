-- Reports of each collector process: the append time of the oldest span it acknowledged
-- but has not stored yet, or the epoch when none waits. A collector that runs apart from
-- the analyzer reports every few seconds, so that the analyzer keeps the dependency
-- blocks of those spans open until they are stored. Readers take each collector's latest
-- report.
CREATE TABLE IF NOT EXISTS ${database}.${table:collector_backlog} ${onCluster}
(
    collector String,
    reported_at DateTime64(3),
    oldest_unstored DateTime64(3)
)
ENGINE = ${engine:MergeTree}
ORDER BY (collector, reported_at)
TTL toDateTime(reported_at) + INTERVAL 1 DAY DELETE;

${distributed:collector_backlog:cityHash64(collector)};
