import fs from 'node:fs';
import path from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';

const MIGRATIONS_DIR = path.join(__dirname, 'migrations');
const FILE_PATTERN = /^(\d{3})_[a-z0-9_]+\.sql$/;

export interface MigrationOptions {
  database: string;
  retentionDays: number;
}

export interface Migration {
  version: number;
  name: string;
  statements: string[];
}

/** Reads the migration files in version order and fills in their `${...}` placeholders. */
export function loadMigrations(options: MigrationOptions): Migration[] {
  const values: Record<string, string> = {
    database: options.database,
    retentionDays: String(options.retentionDays),
  };
  return fs
    .readdirSync(MIGRATIONS_DIR)
    .filter((file) => FILE_PATTERN.test(file))
    .sort()
    .map((file) => {
      const text = fs.readFileSync(path.join(MIGRATIONS_DIR, file), 'utf8');
      const filled = text.replace(/\$\{(\w+)\}/g, (_match, key: string) => {
        const value = values[key];
        if (value === undefined)
          throw new Error(`unknown placeholder \${${key}} in migration ${file}`);
        return value;
      });
      return {
        version: Number(file.slice(0, 3)),
        name: file,
        statements: splitStatements(filled),
      };
    });
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
 * so running the migrations on every start is safe; applied versions are recorded so
 * that later migrations which alter tables run once.
 */
export async function runMigrations(
  client: ClickHouseClient,
  options: MigrationOptions,
): Promise<number[]> {
  const db = options.database;
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${db}` });
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

  const ran: number[] = [];
  for (const migration of loadMigrations(options)) {
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
