-- The semantic-convention attributes that searches and reports filter on most, each in
-- its own LowCardinality column. They are MATERIALIZED from the typed maps at insert,
-- so writers send nothing new and the maps keep every attribute. A filter on a column
-- reads a few kilobytes a granule instead of the whole map. `SELECT *` leaves them out;
-- name them to read them. The current key wins over the one it replaced.
ALTER TABLE ${database}.${table:spans} ${onCluster}
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

-- The Distributed table needs the same columns, with the same expressions, so that an
-- insert through it leaves them for each shard to compute.
${clusterOnly} ALTER TABLE ${database}.spans ${onCluster}
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
