import fs from 'node:fs';
import path from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';

const MIGRATIONS_DIR = path.join(__dirname, 'migrations');
const FILE_PATTERN = /^(\d{3})_[a-z0-9_]+\.sql$/;
const PLACEHOLDER = /\$\{(\w+)(?::([^}]*))?\}/g;
const CLUSTER_ONLY = '${clusterOnly}';
const SETTING_GUARD = /^\$\{ifSetting:(\w+)\}\s*/;

export interface MigrationOptions {
  database: string;
  retentionDays: number;
  /**
   * ClickHouse cluster (a name from the server's `remote_servers`). When set, tables are
   * created `ON CLUSTER` as replicated `<table>_local` tables with a `Distributed` table
   * under the plain name over them; when empty, plain MergeTree tables.
   */
  clusterName?: string;
  /**
   * The MergeTree settings that the server supports. A statement that starts with
   * `${ifSetting:name}` runs only when `name` is one of them, so a tuning that only newer
   * servers offer leaves older ones as they were. Without the set, as when the schema is
   * rendered for review, such statements are kept.
   */
  mergeTreeSettings?: ReadonlySet<string>;
}

export interface Migration {
  version: number;
  name: string;
  statements: string[];
}

/**
 * Expands one `${name}` or `${name:argument}` placeholder of a migration file:
 * - `${database}`, `${retentionDays}`, `${onCluster}`;
 * - `${table:spans}`: the table that stores rows (`spans_local` in cluster mode);
 * - `${engine:ReplacingMergeTree}`: the engine, replicated in cluster mode; engine
 *   parameters follow a second colon, as in `${engine:ReplacingMergeTree:updated_at}`;
 * - `${distributed:spans:cityHash64(trace_id)}`: a whole statement that creates the
 *   Distributed table over `spans_local` with that sharding key, empty without a cluster.
 */
function expandPlaceholder(name: string, argument: string | undefined, options: MigrationOptions) {
  const cluster = options.clusterName ?? '';
  const db = options.database;
  switch (name) {
    case 'database':
      return db;
    case 'retentionDays':
      return String(options.retentionDays);
    case 'onCluster':
      return cluster ? `ON CLUSTER ${cluster}` : '';
    case 'table':
      return cluster ? `${argument}_local` : argument;
    case 'engine': {
      const [engine, parameters] = splitOnce(argument ?? '', ':');
      if (!cluster) return parameters ? `${engine}(${parameters})` : engine;
      const replication = `'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'`;
      return `Replicated${engine}(${parameters ? `${replication}, ${parameters}` : replication})`;
    }
    case 'distributed': {
      if (!cluster || !argument) return '';
      const [table, shardingKey] = splitOnce(argument, ':');
      return `CREATE TABLE IF NOT EXISTS ${db}.${table} ON CLUSTER ${cluster} AS ${db}.${table}_local\nENGINE = Distributed(${cluster}, ${db}, ${table}_local, ${shardingKey || 'rand()'})`;
    }
    default:
      return undefined;
  }
}

function splitOnce(text: string, separator: string): [string, string] {
  const index = text.indexOf(separator);
  return index < 0 ? [text, ''] : [text.slice(0, index), text.slice(index + 1)];
}

/**
 * Fills in the placeholders of one migration file, as `expandPlaceholder` describes. A
 * statement that starts with `${clusterOnly}` runs only in cluster mode, and one that
 * starts with `${ifSetting:name}` only on a server that supports that MergeTree setting.
 */
export function renderMigration(file: string, text: string, options: MigrationOptions): string[] {
  const statements = splitStatements(text)
    .filter((statement) => options.clusterName || !statement.startsWith(CLUSTER_ONLY))
    .map((statement) => statement.replace(CLUSTER_ONLY, '').trim())
    .filter((statement) => {
      const setting = SETTING_GUARD.exec(statement)?.[1];
      return !setting || !options.mergeTreeSettings || options.mergeTreeSettings.has(setting);
    })
    .map((statement) => statement.replace(SETTING_GUARD, ''));
  return statements
    .map((statement) =>
      statement.replace(PLACEHOLDER, (_match, name: string, argument?: string) => {
        const value = expandPlaceholder(name, argument, options);
        if (value === undefined)
          throw new Error(`unknown placeholder \${${name}} in migration ${file}`);
        return value;
      }),
    )
    .map((statement) => statement.replace(/[ \t]+\n/g, '\n').replace(/(\S) {2,}/g, '$1 '))
    .filter((statement) => statement.trim().length > 0);
}

/** Reads the migration files in version order and fills in their placeholders. */
export function loadMigrations(options: MigrationOptions): Migration[] {
  return fs
    .readdirSync(MIGRATIONS_DIR)
    .filter((file) => FILE_PATTERN.test(file))
    .sort()
    .map((file) => ({
      version: Number(file.slice(0, 3)),
      name: file,
      statements: renderMigration(
        file,
        fs.readFileSync(path.join(MIGRATIONS_DIR, file), 'utf8'),
        options,
      ),
    }));
}

function splitStatements(sql: string): string[] {
  const withoutComments = sql
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n');
  return withoutComments
    .split(/;\s*(?:\n|$)/)
    .map((statement) => statement.trim())
    .filter((statement) => statement.length > 0);
}

/**
 * Creates the database and every table. Each statement is idempotent (`IF NOT EXISTS`),
 * so the migrations run safely on every start. Applied versions are recorded, so a
 * later migration that alters a table runs once.
 */
export async function runMigrations(
  client: ClickHouseClient,
  options: MigrationOptions,
): Promise<number[]> {
  const db = options.database;
  const onCluster = options.clusterName ? ` ON CLUSTER ${options.clusterName}` : '';
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${db}${onCluster}` });
  // The version table stays local to each server: every collector or analyzer that
  // starts runs the ON CLUSTER statements, which are idempotent.
  await client.command({
    query: `CREATE TABLE IF NOT EXISTS ${db}.schema_migrations (version UInt32, name String, applied_at DateTime DEFAULT now()) ENGINE = MergeTree ORDER BY version`,
  });
  const result = await client.query({
    query: `SELECT version FROM ${db}.schema_migrations`,
    format: 'JSONEachRow',
  });
  const applied = new Set(
    (await result.json<{ version: number | string }>()).map((row) => Number(row.version)),
  );

  const settings = await client.query({
    query: 'SELECT name FROM system.merge_tree_settings',
    format: 'JSONEachRow',
  });
  const mergeTreeSettings = new Set(
    (await settings.json<{ name: string }>()).map((row) => row.name),
  );

  const ran: number[] = [];
  for (const migration of loadMigrations({ ...options, mergeTreeSettings })) {
    if (applied.has(migration.version)) continue;
    for (const statement of migration.statements) {
      await client.command({ query: statement });
    }
    await client.insert({
      table: `${db}.schema_migrations`,
      values: [{ version: migration.version, name: migration.name }],
      format: 'JSONEachRow',
    });
    ran.push(migration.version);
  }
  return ran;
}
