-- Under a sustained load, merges take a growing share of the CPU: every merge level
-- rewrites each row once more, and a load of minutes reaches more levels than one of
-- seconds. A base of 20 merges twice as many parts at a time as the base of 10 set in 024,
-- so a row needs fewer levels to reach a given part size, for more parts alive at once.
-- In two-minute runs of about 100k spans a second on two cores, the merge threads used
-- 0.34 cores against 0.42 with the base of 10 (docs/benchmarks.md). Queries read the
-- same rows from more parts: trace lookups and searches select parts by their time range
-- and primary key first. A server that does not support the setting keeps its default.
${ifSetting:merge_selector_base} ALTER TABLE ${database}.${table:spans} ${onCluster}
    MODIFY SETTING merge_selector_base = 20;
${ifSetting:merge_selector_base} ALTER TABLE ${database}.${table:trace_summaries} ${onCluster}
    MODIFY SETTING merge_selector_base = 20;
${ifSetting:merge_selector_base} ALTER TABLE ${database}.${table:call_spans} ${onCluster}
    MODIFY SETTING merge_selector_base = 20;
