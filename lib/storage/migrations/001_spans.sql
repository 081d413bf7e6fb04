-- One row a span. Ids are stored as integers (16 and 8 bytes) and turned into hex
-- only at the API edge. ReplacingMergeTree on (trace_id, span_id, kind) collapses a
-- span stored twice by a retried insert; readers still collapse duplicates that
-- merges have not reached yet. The kind is part of the key because Zipkin clients
-- give the client and server halves of a call one span id.
CREATE TABLE IF NOT EXISTS ${database}.${table:spans} ${onCluster}
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
    -- Arrays, key-value lists and bytes, each as its OTLP/JSON AnyValue.
    attributes_complex Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    dropped_attributes_count UInt32 CODEC(ZSTD(1)),
    -- OTLP/JSON KeyValue lists.
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
ENGINE = ${engine:ReplacingMergeTree}
PARTITION BY toDate(start_time)
ORDER BY (trace_id, span_id, kind)
TTL toDateTime(start_time) + INTERVAL ${retentionDays} DAY DELETE
SETTINGS ttl_only_drop_parts = 1;

${distributed:spans:cityHash64(trace_id)};
