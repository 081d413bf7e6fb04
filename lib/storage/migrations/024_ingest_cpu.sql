-- Every stored span costs CPU twice: when its insert writes a part, and each time a
-- background merge rewrites that part. On a small machine that CPU bounds the ingest
-- rate, so these changes cut both.

-- latency_minutes (010) keeps the spans, errors and a mergeable histogram of durations
-- of every operation and minute, and every report reads that rollup. operation_minutes
-- kept the same counts with a t-digest that nothing read, at the cost of a view run on
-- each insert and a table to merge.
DROP VIEW IF EXISTS ${database}.operation_minutes_mv ${onCluster} SYNC;
${clusterOnly} DROP TABLE IF EXISTS ${database}.operation_minutes ${onCluster} SYNC;
DROP TABLE IF EXISTS ${database}.${table:operation_minutes} ${onCluster} SYNC;

-- The string attribute map is the largest column in raw bytes, and ZSTD(9) was the
-- slowest step of writing it, at each insert and again at each merge. ZSTD(3) writes it
-- in much less CPU for under a byte a span more on disk. ZSTD(3) on parent_span_id and
-- ZSTD(9) on the float map, both small columns, win back about half of that byte. A
-- codec change is only metadata: parts written before it keep their codec until a merge
-- rewrites them.
ALTER TABLE ${database}.${table:spans} ${onCluster}
    MODIFY COLUMN attributes_string Map(LowCardinality(String), LowCardinality(String)) CODEC(ZSTD(3)),
    MODIFY COLUMN parent_span_id UInt64 CODEC(ZSTD(3)),
    MODIFY COLUMN attributes_float Map(LowCardinality(String), Float64) CODEC(ZSTD(9));

-- With the default base of 5, each row is rewritten by a merge about once for every
-- fivefold growth of its part. A base of 10 merges more parts at a time and so fewer
-- times over a row's life, for a few more parts alive at once. It applies to the tables
-- that get a row for most spans. A server that does not support the setting keeps its
-- default. NOTE: it keeps it after an upgrade too, because a migration runs only once.
${ifSetting:merge_selector_base} ALTER TABLE ${database}.${table:spans} ${onCluster}
    MODIFY SETTING merge_selector_base = 10;
${ifSetting:merge_selector_base} ALTER TABLE ${database}.${table:trace_summaries} ${onCluster}
    MODIFY SETTING merge_selector_base = 10;
${ifSetting:merge_selector_base} ALTER TABLE ${database}.${table:call_spans} ${onCluster}
    MODIFY SETTING merge_selector_base = 10;
