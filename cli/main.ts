import { Command, Option } from 'commander';
import { loadConfig, SETTINGS, type ConfigKey, type FaultlineConfig } from '../lib/config';
import { FaultlineError, errorMessage } from '../lib/errors';
import { createLogger } from '../lib/logger';
import { startApp, type Role } from './app';
import { runDemoCommand } from './demo-command';
import { runIncidentAction, runIncidentShow, runIncidentsList } from './incidents-command';
import { runReportCommand } from './report-command';

/** Settings that commands reading storage directly use: where the data is, and logging. */
const STORAGE_SETTINGS: ConfigKey[] = [
  'dataDir',
  'clickhouseUrl',
  'database',
  'retentionDays',
  'clusterName',
  'logLevel',
];

/**
 * Adds a flag for every setting, so that each can be given on the command line. With
 * `listedInHelp`, the help lists only those, and the others are still accepted.
 */
function withSettings(command: Command, listedInHelp?: ConfigKey[]): Command {
  // Each flag is the kebab-case form of its setting's key, so commander stores it under that key.
  for (const [key, spec] of Object.entries(SETTINGS) as [
    ConfigKey,
    (typeof SETTINGS)[ConfigKey],
  ][]) {
    const option = new Option(`${spec.flag} <value>`, `${spec.description} (env ${spec.env})`);
    command.addOption(listedInHelp && !listedInHelp.includes(key) ? option.hideHelp() : option);
  }
  return command;
}

function configFrom(options: Record<string, unknown>): FaultlineConfig {
  const overrides: Partial<Record<ConfigKey, unknown>> = {};
  for (const key of Object.keys(SETTINGS) as ConfigKey[]) {
    if (options[key] !== undefined) overrides[key] = options[key];
  }
  return loadConfig(overrides);
}

async function runServer(roles: Role[], options: Record<string, unknown>): Promise<void> {
  const config = configFrom(options);
  const logger = createLogger(config.logLevel);
  const app = await startApp(config, roles, logger);
  logger.info(
    {
      otlpHttp: app.collector
        ? `http://${config.host}:${app.collector.httpPort}/v1/traces`
        : undefined,
      queryApi: app.analyzer ? `http://${config.host}:${app.analyzer.port}/api` : undefined,
      data: app.storage.location,
    },
    'faultline started',
  );

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      // Acknowledged spans are stored or in the write-ahead log, which the next start stores.
      logger.warn({ signal }, 'second signal: exiting without waiting for the shutdown');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    app.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

export function buildProgram(): Command {
  const program = new Command('faultline')
    .description('OpenTelemetry tracing collector and analyzer that finds the failing dependency')
    .showHelpAfterError()
    .enablePositionalOptions();

  withSettings(
    program.command('start').description('run the collector and the analyzer in one process'),
  ).action((options: Record<string, unknown>) => runServer(['collector', 'analyzer'], options));
  withSettings(program.command('collector').description('run only the collector (ingest)')).action(
    (options: Record<string, unknown>) => runServer(['collector'], options),
  );
  withSettings(program.command('analyzer').description('run only the analyzer (query API)')).action(
    (options: Record<string, unknown>) => runServer(['analyzer'], options),
  );
  withSettings(
    program
      .command('report')
      .description('print the dependency-failure report of a recent window')
      .option(
        '--since <duration>',
        'window length ending now, such as 15m or 1h; 10m or more is widened to whole minutes',
        '15m',
      )
      .option('--from <time>', 'window start: RFC 3339 or epoch milliseconds (overrides --since)')
      .option('--to <time>', 'window end: RFC 3339 or epoch milliseconds; default now')
      .option('--format <format>', 'md, html or json', 'md')
      .option(
        '--query-url <url>',
        'analyzer to ask; when none answers there, storage is read directly',
        'http://127.0.0.1:16686',
      ),
    [...STORAGE_SETTINGS, 'userAttribute', 'baselineMs'],
  ).action((options: Record<string, unknown>) => runReportCommand(options, configFrom(options)));
  addIncidentCommands(program);
  withSettings(
    program
      .command('demo')
      .description('run Faultline with demo services, inject faults and print the report')
      .option('--duration <duration>', 'how long to drive traffic, such as 60s', '60s')
      .option('--rate <requests>', 'requests a second sent to the demo frontend', '20'),
  ).action((options: Record<string, unknown>) => runDemoCommand(options, configFrom(options)));
  return program;
}

const QUERY_URL_HELP = 'analyzer to ask; when none answers there, storage is read directly';

function addIncidentCommands(program: Command): void {
  const incidents = withSettings(
    program
      .command('incidents')
      .description('list incidents: findings that held long enough to open, and their state')
      .option('--status <status>', 'pending, open or resolved; default open and resolved')
      .option('--format <format>', 'table or json', 'table')
      .option('--limit <count>', 'incidents to list, newest first', '50')
      .option('--query-url <url>', QUERY_URL_HELP, 'http://127.0.0.1:16686')
      // Options after `show`, `ack` or `silence` belong to that subcommand.
      .enablePositionalOptions(),
    STORAGE_SETTINGS,
  ).action((options: Record<string, unknown>) => runIncidentsList(options, configFrom(options)));
  withSettings(
    incidents
      .command('show <id>')
      .description('print an incident as the start of a post-incident review')
      .option('--format <format>', 'md, html or json', 'md')
      .option('--query-url <url>', QUERY_URL_HELP, 'http://127.0.0.1:16686'),
    STORAGE_SETTINGS,
  ).action((id: string, options: Record<string, unknown>) =>
    runIncidentShow(id, options, configFrom(options)),
  );
  incidents
    .command('ack <id>')
    .description('acknowledge an incident: no more notifications of severity increases')
    .option('--query-url <url>', 'running analyzer', 'http://127.0.0.1:16686')
    .action((id: string, options: Record<string, unknown>) =>
      runIncidentAction('ack', id, options),
    );
  incidents
    .command('silence <id>')
    .description('hold back every notification of an incident for a while')
    .option('--for <duration>', 'how long, such as 30m or 2h', '1h')
    .option('--query-url <url>', 'running analyzer', 'http://127.0.0.1:16686')
    .action((id: string, options: Record<string, unknown>) =>
      runIncidentAction('silence', id, options),
    );
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (error) {
    const code = error instanceof FaultlineError ? `${error.code}: ` : '';
    process.stderr.write(`faultline: ${code}${errorMessage(error)}\n`);
    process.exit(1);
  }
}
