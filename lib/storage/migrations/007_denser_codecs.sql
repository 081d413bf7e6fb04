-- Denser codecs for the columns that take the most bytes a span. On 100k synthetic
-- spans after OPTIMIZE ... FINAL (bench/storage.ts data), ZSTD(3) took the string map
-- from 16.3 to 13.9 bytes a span, and Delta took event times from 5.0 to 3.7, because
-- the events of a span are microseconds apart. DoubleDelta on start and end times was
-- larger than Delta, so those stay. Parts written before this keep their codecs until
-- merges rewrite them.
ALTER TABLE ${database}.${table:spans} ${onCluster}
    MODIFY COLUMN attributes_string Map(LowCardinality(String), String) CODEC(ZSTD(3)),
    MODIFY COLUMN attributes_int Map(LowCardinality(String), Int64) CODEC(ZSTD(3)),
    MODIFY COLUMN event_attributes Array(String) CODEC(ZSTD(3)),
    MODIFY COLUMN event_times Array(DateTime64(9)) CODEC(Delta, ZSTD(1));
