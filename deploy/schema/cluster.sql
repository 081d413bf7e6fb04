-- 001_spans.sql
CREATE TABLE IF NOT EXISTS faultline.spans_local ON CLUSTER faultline_cluster
(
    trace_id UInt128 CODEC(ZSTD(1)),
    span_id UInt64 CODEC(ZSTD(1)),
    parent_span_id UInt64 CODEC(ZSTD(1)),
    trace_state String CODEC(ZSTD(1)),
    flags UInt32 CODEC(ZSTD(1)),
    name LowCardinality(String) CODEC(ZSTD(1)),
    kind Enum8('UNSPECIFIED' = 0, 'INTERNAL' = 1, 'SERVER' = 2, 'CLIENT' = 3, 'PRODUCER' = 4, 'CONSUMER' = 5),
    start_time DateTime64(9) CODEC(Delta, ZSTD(1)),
    end_time DateTime64(9) CODEC(Delta, ZSTD(1)),
    duration_ns UInt64 CODEC(T64, ZSTD(1)),
    status_code Enum8('UNSET' = 0, 'OK' = 1, 'ERROR' = 2),
    status_message String CODEC(ZSTD(1)),
    service_name LowCardinality(String),
    service_version LowCardinality(String),
    deployment_environment LowCardinality(String),
    remote_service LowCardinality(String),
    http_status_code UInt16 CODEC(T64, ZSTD(1)),
    is_error Bool,
    attributes_string Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    attributes_int Map(LowCardinality(String), Int64) CODEC(ZSTD(1)),
    attributes_float Map(LowCardinality(String), Float64) CODEC(ZSTD(1)),
    attributes_bool Map(LowCardinality(String), Bool) CODEC(ZSTD(1)),
    attributes_complex Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    dropped_attributes_count UInt32 CODEC(ZSTD(1)),
    resource_attributes String CODEC(ZSTD(1)),
    dropped_resource_attributes_count UInt32 CODEC(ZSTD(1)),
    scope_name LowCardinality(String),
    scope_version LowCardinality(String),
    scope_attributes String CODEC(ZSTD(1)),
    event_times Array(DateTime64(9)) CODEC(ZSTD(1)),
    event_names Array(LowCardinality(String)) CODEC(ZSTD(1)),
    event_attributes Array(String) CODEC(ZSTD(1)),
    event_dropped_attributes_counts Array(UInt32) CODEC(ZSTD(1)),
    dropped_events_count UInt32 CODEC(ZSTD(1)),
    link_trace_ids Array(UInt128) CODEC(ZSTD(1)),
    link_span_ids Array(UInt64) CODEC(ZSTD(1)),
    link_trace_states Array(String) CODEC(ZSTD(1)),
    link_attributes Array(String) CODEC(ZSTD(1)),
    link_dropped_attributes_counts Array(UInt32) CODEC(ZSTD(1)),
    link_flags Array(UInt32) CODEC(ZSTD(1)),
    dropped_links_count UInt32 CODEC(ZSTD(1)),
    ingest_warnings Array(LowCardinality(String)),
    INDEX idx_start_time start_time TYPE minmax GRANULARITY 1,
    INDEX idx_service service_name TYPE set(256) GRANULARITY 4,
    INDEX idx_duration duration_ns TYPE minmax GRANULARITY 1
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(start_time)
ORDER BY (trace_id, span_id, kind)
TTL toDateTime(start_time) + INTERVAL 7 DAY DELETE
SETTINGS ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS faultline.spans ON CLUSTER faultline_cluster AS faultline.spans_local
ENGINE = Distributed(faultline_cluster, faultline, spans_local, cityHash64(trace_id));

-- 002_promoted_attributes.sql
ALTER TABLE faultline.spans_local ON CLUSTER faultline_cluster
    ADD COLUMN IF NOT EXISTS http_method LowCardinality(String)
        MATERIALIZED if(attributes_string['http.request.method'] != '', attributes_string['http.request.method'], attributes_string['http.method']),
    ADD COLUMN IF NOT EXISTS http_route LowCardinality(String)
        MATERIALIZED attributes_string['http.route'],
    ADD COLUMN IF NOT EXISTS server_address LowCardinality(String)
        MATERIALIZED if(attributes_string['server.address'] != '', attributes_string['server.address'], attributes_string['net.peer.name']),
    ADD COLUMN IF NOT EXISTS db_system LowCardinality(String)
        MATERIALIZED if(attributes_string['db.system.name'] != '', attributes_string['db.system.name'], attributes_string['db.system']),
    ADD COLUMN IF NOT EXISTS rpc_service LowCardinality(String)
        MATERIALIZED attributes_string['rpc.service'],
    ADD COLUMN IF NOT EXISTS messaging_system LowCardinality(String)
        MATERIALIZED attributes_string['messaging.system'],
    ADD COLUMN IF NOT EXISTS peer_service LowCardinality(String)
        MATERIALIZED attributes_string['peer.service'];

ALTER TABLE faultline.spans ON CLUSTER faultline_cluster
    ADD COLUMN IF NOT EXISTS http_method LowCardinality(String)
        MATERIALIZED if(attributes_string['http.request.method'] != '', attributes_string['http.request.method'], attributes_string['http.method']),
    ADD COLUMN IF NOT EXISTS http_route LowCardinality(String)
        MATERIALIZED attributes_string['http.route'],
    ADD COLUMN IF NOT EXISTS server_address LowCardinality(String)
        MATERIALIZED if(attributes_string['server.address'] != '', attributes_string['server.address'], attributes_string['net.peer.name']),
    ADD COLUMN IF NOT EXISTS db_system LowCardinality(String)
        MATERIALIZED if(attributes_string['db.system.name'] != '', attributes_string['db.system.name'], attributes_string['db.system']),
    ADD COLUMN IF NOT EXISTS rpc_service LowCardinality(String)
        MATERIALIZED attributes_string['rpc.service'],
    ADD COLUMN IF NOT EXISTS messaging_system LowCardinality(String)
        MATERIALIZED attributes_string['messaging.system'],
    ADD COLUMN IF NOT EXISTS peer_service LowCardinality(String)
        MATERIALIZED attributes_string['peer.service'];

-- 003_trace_summaries.sql
CREATE TABLE IF NOT EXISTS faultline.trace_summaries_local ON CLUSTER faultline_cluster
(
    trace_id UInt128 CODEC(ZSTD(1)),
    start_time SimpleAggregateFunction(min, DateTime64(9)) CODEC(Delta, ZSTD(1)),
    end_time SimpleAggregateFunction(max, DateTime64(9)) CODEC(Delta, ZSTD(1)),
    root AggregateFunction(argMinIf, Tuple(String, String), DateTime64(9), UInt8),
    span_count AggregateFunction(uniq, UInt64, UInt8),
    error_count AggregateFunction(uniqIf, UInt64, UInt8),
    services SimpleAggregateFunction(groupUniqArrayArray, Array(String)) CODEC(ZSTD(1))
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(start_time)
ORDER BY trace_id
TTL toDateTime(start_time) + INTERVAL 7 DAY DELETE
SETTINGS ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS faultline.trace_summaries ON CLUSTER faultline_cluster AS faultline.trace_summaries_local
ENGINE = Distributed(faultline_cluster, faultline, trace_summaries_local, cityHash64(trace_id));

CREATE MATERIALIZED VIEW IF NOT EXISTS faultline.trace_summaries_mv ON CLUSTER faultline_cluster
TO faultline.trace_summaries_local
AS SELECT
    trace_id,
    min(start_time) AS start_time,
    max(end_time) AS end_time,
    argMinIfState((toString(service_name), toString(name)), start_time, toUInt8(parent_span_id = 0)) AS root,
    uniqState(span_id, toUInt8(kind)) AS span_count,
    uniqIfState(span_id, toUInt8(is_error)) AS error_count,
    groupUniqArray(toString(service_name)) AS services
FROM faultline.spans_local
GROUP BY trace_id;

-- 004_operation_minutes.sql
CREATE TABLE IF NOT EXISTS faultline.operation_minutes_local ON CLUSTER faultline_cluster
(
    minute DateTime CODEC(Delta, ZSTD(1)),
    service_name LowCardinality(String),
    name LowCardinality(String),
    kind Enum8('UNSPECIFIED' = 0, 'INTERNAL' = 1, 'SERVER' = 2, 'CLIENT' = 3, 'PRODUCER' = 4, 'CONSUMER' = 5),
    calls SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    latency AggregateFunction(quantilesTDigest(0.5, 0.95, 0.99), UInt64)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(minute)
ORDER BY (service_name, name, kind, minute)
TTL minute + INTERVAL 7 DAY DELETE
SETTINGS ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS faultline.operation_minutes ON CLUSTER faultline_cluster AS faultline.operation_minutes_local
ENGINE = Distributed(faultline_cluster, faultline, operation_minutes_local, rand());

CREATE MATERIALIZED VIEW IF NOT EXISTS faultline.operation_minutes_mv ON CLUSTER faultline_cluster
TO faultline.operation_minutes_local
AS SELECT
    toStartOfMinute(start_time) AS minute,
    service_name,
    name,
    kind,
    toUInt64(count()) AS calls,
    toUInt64(countIf(is_error)) AS errors,
    quantilesTDigestState(0.5, 0.95, 0.99)(duration_ns) AS latency
FROM faultline.spans_local
GROUP BY minute, service_name, name, kind;

-- 005_dependency_minutes.sql
CREATE TABLE IF NOT EXISTS faultline.dependency_minutes_local ON CLUSTER faultline_cluster
(
    minute DateTime CODEC(Delta, ZSTD(1)),
    caller LowCardinality(String),
    callee LowCardinality(String),
    virtual_callee Bool,
    calls SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    latency AggregateFunction(quantilesTDigest(0.5, 0.95, 0.99), UInt64)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(minute)
ORDER BY (minute, caller, callee, virtual_callee)
TTL minute + INTERVAL 7 DAY DELETE
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 100000;

CREATE TABLE IF NOT EXISTS faultline.dependency_minutes ON CLUSTER faultline_cluster AS faultline.dependency_minutes_local
ENGINE = Distributed(faultline_cluster, faultline, dependency_minutes_local, toUnixTimestamp(minute));

CREATE TABLE IF NOT EXISTS faultline.dependency_resolved_minutes_local ON CLUSTER faultline_cluster
(
    minute DateTime,
    resolved_at DateTime DEFAULT now()
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY minute
TTL minute + INTERVAL 7 DAY DELETE;

CREATE TABLE IF NOT EXISTS faultline.dependency_resolved_minutes ON CLUSTER faultline_cluster AS faultline.dependency_resolved_minutes_local
ENGINE = Distributed(faultline_cluster, faultline, dependency_resolved_minutes_local, toUnixTimestamp(minute));

-- 006_spans_deduplication.sql
ALTER TABLE faultline.spans_local ON CLUSTER faultline_cluster
    MODIFY SETTING non_replicated_deduplication_window = 1000;

-- 007_denser_codecs.sql
ALTER TABLE faultline.spans_local ON CLUSTER faultline_cluster
    MODIFY COLUMN attributes_string Map(LowCardinality(String), String) CODEC(ZSTD(3)),
    MODIFY COLUMN attributes_int Map(LowCardinality(String), Int64) CODEC(ZSTD(3)),
    MODIFY COLUMN event_attributes Array(String) CODEC(ZSTD(3)),
    MODIFY COLUMN event_times Array(DateTime64(9)) CODEC(Delta, ZSTD(1));

-- 008_call_spans.sql
CREATE TABLE IF NOT EXISTS faultline.call_spans_local ON CLUSTER faultline_cluster
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
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toStartOfHour(minute)
ORDER BY (minute, kind, trace_id, span_id)
TTL minute + INTERVAL 1 DAY DELETE
SETTINGS ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS faultline.call_spans ON CLUSTER faultline_cluster AS faultline.call_spans_local
ENGINE = Distributed(faultline_cluster, faultline, call_spans_local, cityHash64(trace_id));

CREATE MATERIALIZED VIEW IF NOT EXISTS faultline.call_spans_mv ON CLUSTER faultline_cluster
TO faultline.call_spans_local
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
FROM faultline.spans_local
WHERE kind IN ('CLIENT', 'PRODUCER', 'SERVER', 'CONSUMER');

INSERT INTO faultline.call_spans
SELECT toStartOfMinute(start_time), kind, trace_id, span_id, parent_span_id, start_time,
    duration_ns, service_name, remote_service, is_error
FROM faultline.spans
WHERE kind IN ('CLIENT', 'PRODUCER', 'SERVER', 'CONSUMER')
    AND start_time >= now() - INTERVAL 1 DAY;

-- 009_compact_spans.sql
DROP TABLE IF EXISTS faultline.spans_next ON CLUSTER faultline_cluster SYNC;

DROP TABLE IF EXISTS faultline.spans_next_local ON CLUSTER faultline_cluster SYNC;

CREATE TABLE faultline.spans_next_local ON CLUSTER faultline_cluster
(
    trace_id UInt128 CODEC(ZSTD(1)),
    span_id UInt64 CODEC(ZSTD(1)),
    parent_span_id UInt64 CODEC(ZSTD(1)),
    trace_state String CODEC(ZSTD(1)),
    flags UInt32 CODEC(ZSTD(1)),
    name LowCardinality(String) CODEC(ZSTD(1)),
    kind Enum8('UNSPECIFIED' = 0, 'INTERNAL' = 1, 'SERVER' = 2, 'CLIENT' = 3, 'PRODUCER' = 4, 'CONSUMER' = 5) CODEC(ZSTD(1)),
    start_time DateTime64(9) CODEC(Delta, ZSTD(1)),
    end_time DateTime64(9) ALIAS start_time + toIntervalNanosecond(duration_ns),
    duration_ns UInt64 CODEC(T64, ZSTD(1)),
    status_code Enum8('UNSET' = 0, 'OK' = 1, 'ERROR' = 2) CODEC(ZSTD(1)),
    status_message String CODEC(ZSTD(1)),
    service_name LowCardinality(String) CODEC(ZSTD(1)),
    service_version LowCardinality(String) CODEC(ZSTD(1)),
    deployment_environment LowCardinality(String) CODEC(ZSTD(1)),
    remote_service LowCardinality(String) CODEC(ZSTD(1)),
    http_status_code UInt16 CODEC(T64, ZSTD(1)),
    is_error Bool CODEC(ZSTD(1)),
    attributes_string Map(LowCardinality(String), LowCardinality(String)) CODEC(ZSTD(9)),
    attributes_int Map(LowCardinality(String), Int64) CODEC(ZSTD(3)),
    attributes_float Map(LowCardinality(String), Float64) CODEC(ZSTD(1)),
    attributes_bool Map(LowCardinality(String), Bool) CODEC(ZSTD(3)),
    attributes_complex Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    dropped_attributes_count UInt32 CODEC(ZSTD(1)),
    resource_attributes LowCardinality(String) CODEC(ZSTD(1)),
    dropped_resource_attributes_count UInt32 CODEC(ZSTD(1)),
    scope_name LowCardinality(String) CODEC(ZSTD(1)),
    scope_version LowCardinality(String) CODEC(ZSTD(1)),
    scope_attributes LowCardinality(String) CODEC(ZSTD(1)),
    events Nested(
        time_offset_ns Int64,
        name LowCardinality(String),
        attributes LowCardinality(String),
        dropped_attributes_count UInt32
    ) CODEC(ZSTD(1)),
    event_times Array(DateTime64(9))
        ALIAS arrayMap(offset -> start_time + toIntervalNanosecond(offset), events.time_offset_ns),
    event_names Array(LowCardinality(String)) ALIAS events.name,
    event_attributes Array(LowCardinality(String)) ALIAS events.attributes,
    event_dropped_attributes_counts Array(UInt32) ALIAS events.dropped_attributes_count,
    dropped_events_count UInt32 CODEC(ZSTD(1)),
    link_trace_ids Array(UInt128) CODEC(ZSTD(1)),
    link_span_ids Array(UInt64) CODEC(ZSTD(1)),
    link_trace_states Array(String) CODEC(ZSTD(1)),
    link_attributes Array(String) CODEC(ZSTD(1)),
    link_dropped_attributes_counts Array(UInt32) CODEC(ZSTD(1)),
    link_flags Array(UInt32) CODEC(ZSTD(1)),
    dropped_links_count UInt32 CODEC(ZSTD(1)),
    ingest_warnings Array(LowCardinality(String)) CODEC(ZSTD(1)),
    http_method LowCardinality(String)
        MATERIALIZED if(attributes_string['http.request.method'] != '', attributes_string['http.request.method'], attributes_string['http.method']) CODEC(ZSTD(1)),
    http_route LowCardinality(String)
        MATERIALIZED attributes_string['http.route'] CODEC(ZSTD(1)),
    server_address LowCardinality(String)
        MATERIALIZED if(attributes_string['server.address'] != '', attributes_string['server.address'], attributes_string['net.peer.name']) CODEC(ZSTD(1)),
    db_system LowCardinality(String)
        MATERIALIZED if(attributes_string['db.system.name'] != '', attributes_string['db.system.name'], attributes_string['db.system']) CODEC(ZSTD(1)),
    rpc_service LowCardinality(String)
        MATERIALIZED attributes_string['rpc.service'] CODEC(ZSTD(1)),
    messaging_system LowCardinality(String)
        MATERIALIZED attributes_string['messaging.system'] CODEC(ZSTD(1)),
    peer_service LowCardinality(String)
        MATERIALIZED attributes_string['peer.service'] CODEC(ZSTD(1)),
    INDEX idx_start_time start_time TYPE minmax GRANULARITY 1,
    INDEX idx_service service_name TYPE set(256) GRANULARITY 4,
    INDEX idx_duration duration_ns TYPE minmax GRANULARITY 1
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(start_time)
ORDER BY (toStartOfTenMinutes(start_time), trace_id, start_time, span_id, kind)
TTL toDateTime(start_time) + INTERVAL 7 DAY DELETE
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS faultline.spans_next ON CLUSTER faultline_cluster AS faultline.spans_next_local
ENGINE = Distributed(faultline_cluster, faultline, spans_next_local, cityHash64(trace_id));

INSERT INTO faultline.spans_next (
    trace_id, span_id, parent_span_id, trace_state, flags, name, kind, start_time,
    duration_ns, status_code, status_message, service_name, service_version,
    deployment_environment, remote_service, http_status_code, is_error,
    attributes_string, attributes_int, attributes_float, attributes_bool,
    attributes_complex, dropped_attributes_count, resource_attributes,
    dropped_resource_attributes_count, scope_name, scope_version, scope_attributes,
    events.time_offset_ns, events.name, events.attributes, events.dropped_attributes_count,
    dropped_events_count, link_trace_ids, link_span_ids, link_trace_states,
    link_attributes, link_dropped_attributes_counts, link_flags, dropped_links_count,
    ingest_warnings
)
SELECT
    trace_id, span_id, parent_span_id, trace_state, flags, name, kind, start_time,
    duration_ns, status_code, status_message, service_name, service_version,
    deployment_environment, remote_service, http_status_code, is_error,
    attributes_string, attributes_int, attributes_float, attributes_bool,
    attributes_complex, dropped_attributes_count, resource_attributes,
    dropped_resource_attributes_count, scope_name, scope_version, scope_attributes,
    arrayMap(time -> toUnixTimestamp64Nano(time) - toUnixTimestamp64Nano(start_time), event_times),
    event_names, event_attributes, event_dropped_attributes_counts,
    dropped_events_count, link_trace_ids, link_span_ids, link_trace_states,
    link_attributes, link_dropped_attributes_counts, link_flags, dropped_links_count,
    ingest_warnings
FROM faultline.spans
SETTINGS insert_distributed_sync = 1;

EXCHANGE TABLES faultline.spans_local AND faultline.spans_next_local ON CLUSTER faultline_cluster;

DROP TABLE IF EXISTS faultline.spans ON CLUSTER faultline_cluster SYNC;

CREATE TABLE IF NOT EXISTS faultline.spans ON CLUSTER faultline_cluster AS faultline.spans_local
ENGINE = Distributed(faultline_cluster, faultline, spans_local, cityHash64(trace_id));

DROP TABLE IF EXISTS faultline.spans_next ON CLUSTER faultline_cluster SYNC;

DROP TABLE IF EXISTS faultline.spans_next_local ON CLUSTER faultline_cluster SYNC;

-- 010_latency_minutes.sql
CREATE TABLE IF NOT EXISTS faultline.latency_minutes_local ON CLUSTER faultline_cluster
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
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(minute)
ORDER BY (minute, service_name, name, kind, remote_service, service_version, deployment_environment, is_root)
TTL minute + INTERVAL 7 DAY DELETE
SETTINGS ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS faultline.latency_minutes ON CLUSTER faultline_cluster AS faultline.latency_minutes_local
ENGINE = Distributed(faultline_cluster, faultline, latency_minutes_local, rand());

CREATE MATERIALIZED VIEW IF NOT EXISTS faultline.latency_minutes_mv ON CLUSTER faultline_cluster
TO faultline.latency_minutes_local
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
FROM faultline.spans_local
GROUP BY minute, service_name, service_version, deployment_environment, name, kind, remote_service, is_root;

INSERT INTO faultline.latency_minutes
SELECT toStartOfMinute(start_time) AS minute, service_name, service_version,
    deployment_environment, name, kind, remote_service, parent_span_id = 0 AS is_root,
    toUInt64(count()), toUInt64(countIf(is_error)),
    sumMap([toUInt16(floor(log(greatest(duration_ns, 1)) * 16))], [toUInt64(1)])
FROM faultline.spans
GROUP BY minute, service_name, service_version, deployment_environment, name, kind,
    remote_service, is_root;

ALTER TABLE faultline.spans_local ON CLUSTER faultline_cluster
    ADD COLUMN IF NOT EXISTS enduser_id LowCardinality(String)
        MATERIALIZED attributes_string['enduser.id'];

ALTER TABLE faultline.spans ON CLUSTER faultline_cluster
    ADD COLUMN IF NOT EXISTS enduser_id LowCardinality(String)
        MATERIALIZED attributes_string['enduser.id'];

-- 020_reports.sql
CREATE TABLE IF NOT EXISTS faultline.reports_local ON CLUSTER faultline_cluster
(
    id String,
    created_at DateTime64(3),
    window_start DateTime64(3),
    window_end DateTime64(3),
    findings UInt32,
    top_finding String,
    report String CODEC(ZSTD(3))
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (created_at, id)
TTL toDateTime(created_at) + INTERVAL 7 DAY DELETE;

CREATE TABLE IF NOT EXISTS faultline.reports ON CLUSTER faultline_cluster AS faultline.reports_local
ENGINE = Distributed(faultline_cluster, faultline, reports_local, cityHash64(id));

-- 021_incidents.sql
CREATE TABLE IF NOT EXISTS faultline.incidents_local ON CLUSTER faultline_cluster
(
    id String,
    fingerprint String,
    status LowCardinality(String),
    severity LowCardinality(String),
    opened_at DateTime64(3),
    updated_at DateTime64(3),
    incident String CODEC(ZSTD(3))
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', updated_at)
ORDER BY id;

CREATE TABLE IF NOT EXISTS faultline.incidents ON CLUSTER faultline_cluster AS faultline.incidents_local
ENGINE = Distributed(faultline_cluster, faultline, incidents_local, cityHash64(id));

-- 022_notifications.sql
CREATE TABLE IF NOT EXISTS faultline.notifications_local ON CLUSTER faultline_cluster
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
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', updated_at)
ORDER BY id;

CREATE TABLE IF NOT EXISTS faultline.notifications ON CLUSTER faultline_cluster AS faultline.notifications_local
ENGINE = Distributed(faultline_cluster, faultline, notifications_local, cityHash64(id));

-- 023_collector_backlog.sql
CREATE TABLE IF NOT EXISTS faultline.collector_backlog_local ON CLUSTER faultline_cluster
(
    collector String,
    reported_at DateTime64(3),
    oldest_unstored DateTime64(3)
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (collector, reported_at)
TTL toDateTime(reported_at) + INTERVAL 1 DAY DELETE;

CREATE TABLE IF NOT EXISTS faultline.collector_backlog ON CLUSTER faultline_cluster AS faultline.collector_backlog_local
ENGINE = Distributed(faultline_cluster, faultline, collector_backlog_local, cityHash64(collector));

-- 024_ingest_cpu.sql
DROP VIEW IF EXISTS faultline.operation_minutes_mv ON CLUSTER faultline_cluster SYNC;

DROP TABLE IF EXISTS faultline.operation_minutes ON CLUSTER faultline_cluster SYNC;

DROP TABLE IF EXISTS faultline.operation_minutes_local ON CLUSTER faultline_cluster SYNC;

ALTER TABLE faultline.spans_local ON CLUSTER faultline_cluster
    MODIFY COLUMN attributes_string Map(LowCardinality(String), LowCardinality(String)) CODEC(ZSTD(3)),
    MODIFY COLUMN parent_span_id UInt64 CODEC(ZSTD(3)),
    MODIFY COLUMN attributes_float Map(LowCardinality(String), Float64) CODEC(ZSTD(9));

ALTER TABLE faultline.spans_local ON CLUSTER faultline_cluster
    MODIFY SETTING merge_selector_base = 10;

ALTER TABLE faultline.trace_summaries_local ON CLUSTER faultline_cluster
    MODIFY SETTING merge_selector_base = 10;

ALTER TABLE faultline.call_spans_local ON CLUSTER faultline_cluster
    MODIFY SETTING merge_selector_base = 10;

-- 025_merge_base.sql
ALTER TABLE faultline.spans_local ON CLUSTER faultline_cluster
    MODIFY SETTING merge_selector_base = 20;

ALTER TABLE faultline.trace_summaries_local ON CLUSTER faultline_cluster
    MODIFY SETTING merge_selector_base = 20;

ALTER TABLE faultline.call_spans_local ON CLUSTER faultline_cluster
    MODIFY SETTING merge_selector_base = 20;
