import fs from 'node:fs';
import path from 'node:path';
import { renderSchema } from '../deploy/render-schema';
import { openStorage, type Storage } from '../lib/storage/clickhouse';
import { loadMigrations, renderMigration } from '../lib/storage/migrations';
import { makeTempDir } from './helpers/faultline';

const SCHEMA_DIR = path.join(__dirname, '..', 'deploy', 'schema');
// After a migration changes, regenerate the pinned files:
//   npx tsx deploy/render-schema.ts --cluster faultline_cluster > deploy/schema/cluster.sql
//   npx tsx deploy/render-schema.ts > deploy/schema/single.sql

describe('cluster DDL', () => {
  const cluster = loadMigrations({
    database: 'faultline',
    retentionDays: 7,
    clusterName: 'faultline_cluster',
  });
  const statements = cluster.flatMap((migration) => migration.statements);

  it('matches the pinned cluster file', () => {
    const pinned = fs.readFileSync(path.join(SCHEMA_DIR, 'cluster.sql'), 'utf8');
    const rendered = renderSchema({
      database: 'faultline',
      retentionDays: 7,
      clusterName: 'faultline_cluster',
    });
    expect(rendered).toBe(pinned);
  });

  it('matches the pinned single-server file', () => {
    const pinned = fs.readFileSync(path.join(SCHEMA_DIR, 'single.sql'), 'utf8');
    expect(renderSchema({ database: 'faultline', retentionDays: 7 })).toBe(pinned);
  });

  it('replicates every table and puts a Distributed table over it', () => {
    const creates = statements.filter((sql) => /^CREATE TABLE/.test(sql));
    const local = creates.filter((sql) => /_local ON CLUSTER/.test(sql.split('\n')[0]));
    const distributed = creates.filter((sql) => sql.includes('ENGINE = Distributed('));
    expect(local.length).toBeGreaterThanOrEqual(5);
    for (const sql of local) {
      expect(sql).toMatch(/ENGINE = Replicated\w*MergeTree\('\/clickhouse\/tables\/\{shard\}/);
    }
    // A rebuilt table gets its Distributed table created again, so compare names.
    const localNames = new Set(local.map((sql) => /\.(\w+)_local ON CLUSTER/.exec(sql)?.[1]));
    const distributedNames = new Set(distributed.map((sql) => /, (\w+)_local, /.exec(sql)?.[1]));
    expect(distributedNames).toEqual(localNames);
    for (const sql of statements.filter((text) => text.includes('MATERIALIZED VIEW'))) {
      expect(sql).toMatch(/TO faultline\.\w+_local/);
      expect(sql).toMatch(/FROM faultline\.spans_local/);
    }
  });

  it('leaves out a tuning the server lacks', () => {
    const text = `ALTER TABLE \${database}.\${table:spans} \${onCluster} MODIFY COLUMN x UInt8;
\${ifSetting:merge_selector_base} ALTER TABLE \${database}.\${table:spans} \${onCluster}
    MODIFY SETTING merge_selector_base = 10;`;
    const options = { database: 'faultline', retentionDays: 7, clusterName: 'faultline_cluster' };
    const older = renderMigration('tuning.sql', text, {
      ...options,
      mergeTreeSettings: new Set(['ttl_only_drop_parts']),
    });
    expect(older).toEqual([
      'ALTER TABLE faultline.spans_local ON CLUSTER faultline_cluster MODIFY COLUMN x UInt8',
    ]);
    const newer = renderMigration('tuning.sql', text, {
      ...options,
      mergeTreeSettings: new Set(['merge_selector_base']),
    });
    expect(newer[1]).toBe(
      'ALTER TABLE faultline.spans_local ON CLUSTER faultline_cluster\n    MODIFY SETTING merge_selector_base = 10',
    );
    // Rendered for review, with no server to ask.
    expect(renderMigration('tuning.sql', text, options)).toEqual(newer);
  });

  describe('parsed by the embedded engine', () => {
    let storage: Storage;
    let dataDir: string;

    beforeAll(async () => {
      dataDir = makeTempDir('cluster-ddl');
      storage = await openStorage({ dataDir, url: '', database: 'faultline', retentionDays: 7 });
    });

    afterAll(async () => {
      await storage.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    });

    it('parses every statement', async () => {
      for (const statement of statements) {
        const result = await storage.client.query({
          query: 'SELECT formatQuery({statement:String}) AS formatted',
          query_params: { statement },
          format: 'JSONEachRow',
        });
        const [row] = await result.json<{ formatted: string }>();
        expect(row.formatted.length).toBeGreaterThan(20);
      }
    });
  });
});
