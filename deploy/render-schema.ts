/**
 * Prints the DDL that the migrations run, for review or to apply by hand:
 *   npx tsx deploy/render-schema.ts [--cluster NAME] [--database NAME] [--retention-days N]
 * deploy/schema/*.sql are this script's output, pinned by test/cluster-ddl.test.ts.
 */
import { parseArgs } from 'node:util';
import { loadMigrations, type MigrationOptions } from '../lib/storage/migrations';

/** Renders every migration as one SQL text, a comment naming each file. */
export function renderSchema(options: MigrationOptions): string {
  const sections = loadMigrations(options).map(
    (migration) =>
      `-- ${migration.name}\n${migration.statements.map((statement) => `${statement};\n`).join('\n')}`,
  );
  return sections.join('\n');
}

if (require.main === module) {
  const { values } = parseArgs({
    options: {
      cluster: { type: 'string', default: '' },
      database: { type: 'string', default: 'faultline' },
      'retention-days': { type: 'string', default: '7' },
    },
  });
  process.stdout.write(
    renderSchema({
      clusterName: values.cluster,
      database: values.database,
      retentionDays: Number(values['retention-days']),
    }),
  );
}
