-- Rebuilds spans in a denser layout, because a sort key cannot change in place. On 200k
-- spans of bench/storage.ts after OPTIMIZE ... FINAL, the table went from 63.7 to 39.6
-- bytes a span (docs/storage.md gives the gain of each change):
-- - Sort key (toStartOfTenMinutes(start_time), trace_id, start_time, span_id, kind):
--   a query over a time range reads only the ten-minute blocks it covers, where a sort
--   by trace id alone made every range query read the time column of the whole day.
--   Trace lookups take the trace's first start and last end from trace_summaries to
--   find its blocks. Inside a block the spans of a trace sit in start order, so Delta
--   stores start times as small steps. A retried insert repeats every value, so it
--   still collapses. Zipkin's client and server halves keep their kinds.
-- - end_time is an ALIAS of start_time + duration_ns. The ingest sets the end to the
--   start when a span ends before it starts, so the sum is the end stored before.
-- - Events in one Nested column that shares one array of sizes, with times stored as
--   nanosecond offsets from the span start. ALIAS columns keep the former event_*
--   columns readable with the former types.
-- - LowCardinality string values: attribute values, event attributes, resource and
--   scope attributes repeat across spans and become small dictionary indexes.
-- - ZSTD on the LowCardinality and Enum columns, which had the default LZ4.
-- The copy reads only columns that both layouts have, so it runs again unchanged if a
-- start stopped partway. The first statements drop what such a start left behind.
-- NOTE: in cluster mode, spans written to the old table by another process during the
-- copy are lost with it, so the collectors must be stopped while one process migrates.
${clusterOnly} DROP TABLE IF EXISTS ${database}.spans_next ${onCluster} SYNC;

DROP TABLE IF EXISTS ${database}.${table:spans_next} ${onCluster} SYNC;

CREATE TABLE ${database}.${table:spans_next} ${onCluster}
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
    -- Arrays, key-value lists and bytes, each as its OTLP/JSON AnyValue.
    attributes_complex Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    dropped_attributes_count UInt32 CODEC(ZSTD(1)),
    -- OTLP/JSON KeyValue lists.
    resource_attributes LowCardinality(String) CODEC(ZSTD(1)),
    dropped_resource_attributes_count UInt32 CODEC(ZSTD(1)),
    scope_name LowCardinality(String) CODEC(ZSTD(1)),
    scope_version LowCardinality(String) CODEC(ZSTD(1)),
    scope_attributes LowCardinality(String) CODEC(ZSTD(1)),
    -- time_offset_ns: event time minus start_time, negative for an event before the start.
    -- attributes: OTLP/JSON KeyValue lists.
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
ENGINE = ${engine:ReplacingMergeTree}
PARTITION BY toDate(start_time)
ORDER BY (toStartOfTenMinutes(start_time), trace_id, start_time, span_id, kind)
TTL toDateTime(start_time) + INTERVAL ${retentionDays} DAY DELETE
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

${distributed:spans_next:cityHash64(trace_id)};

-- Through the Distributed tables in cluster mode, so every shard's rows are copied, in
-- the foreground, so the copy is complete before the exchange. insert_distributed_sync
-- is the name that 22.8 knows; later releases keep it as an alias of
-- distributed_foreground_insert. spans_next has no materialized views, so the copy adds
-- nothing to the rollups.
INSERT INTO ${database}.spans_next (
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
FROM ${database}.spans
SETTINGS insert_distributed_sync = 1;

-- The materialized views over spans follow the name, so after the exchange they read
-- inserts into the new table.
EXCHANGE TABLES ${database}.${table:spans} AND ${database}.${table:spans_next} ${onCluster};

-- The Distributed table keeps the column list it was created with, so it is created
-- again over the new local table.
${clusterOnly} DROP TABLE IF EXISTS ${database}.spans ${onCluster} SYNC;

${distributed:spans:cityHash64(trace_id)};

${clusterOnly} DROP TABLE IF EXISTS ${database}.spans_next ${onCluster} SYNC;

DROP TABLE IF EXISTS ${database}.${table:spans_next} ${onCluster} SYNC;
