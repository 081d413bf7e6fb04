-- Keeps the hashes of the last 1000 inserted blocks of spans, so an insert retried with
-- the same insert_deduplication_token (see writeSpans) is stored once. Replicated
-- tables deduplicate by their own replicated_deduplication_window as well.
ALTER TABLE ${database}.${table:spans} ${onCluster}
    MODIFY SETTING non_replicated_deduplication_window = 1000;
