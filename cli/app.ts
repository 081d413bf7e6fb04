import { startAnalyzer, type Analyzer } from '../analyzer/analyzer';
import { startCollector, type Collector } from '../collector/collector';
import { SETTINGS, type FaultlineConfig } from '../lib/config';
import { checkPortsFree } from '../lib/http-server';
import type { Logger } from '../lib/logger';
import { openStorage, type Storage } from '../lib/storage/clickhouse';
import { readBacklog } from '../lib/storage/collector-backlog';

export type Role = 'collector' | 'analyzer';

/** The running roles of one process and the storage they share. */
export interface FaultlineApp {
  storage: Storage;
  collector?: Collector;
  analyzer?: Analyzer;
  /** Stops the collector first (flushing accepted spans), then the analyzer, then storage. */
  stop(): Promise<void>;
}

export async function startApp(
  config: FaultlineConfig,
  roles: Role[],
  logger: Logger,
): Promise<FaultlineApp> {
  // A taken port fails the start before storage opens, so the data folder is left as it was.
  const portSettings = [
    ...(roles.includes('collector') ? (['otlpHttpPort', 'otlpGrpcPort'] as const) : []),
    ...(roles.includes('analyzer') ? (['queryPort'] as const) : []),
  ];
  await checkPortsFree(
    config.host,
    portSettings.map((name) => ({ port: config[name], setting: SETTINGS[name] })),
  );
  const storage = await openStorage({
    dataDir: config.dataDir,
    url: config.clickhouseUrl,
    database: config.database,
    retentionDays: config.retentionDays,
    clusterName: config.clusterName,
  });
  logger.info(
    { storage: storage.mode, location: storage.location, database: storage.database },
    'storage ready',
  );

  let collector: Collector | undefined;
  let analyzer: Analyzer | undefined;
  // In one process the collector sets the storage handle's unstoredSince. Roles in separate
  // processes share the spans waiting in a collector's log through collector_backlog.
  const apart = roles.length === 1;
  try {
    if (roles.includes('collector')) {
      collector = await startCollector({ config, storage, logger, reportBacklog: apart });
    }
    if (roles.includes('analyzer')) {
      if (apart) storage.unstoredSince = () => readBacklog(storage);
      analyzer = await startAnalyzer({ config, storage, logger });
    }
  } catch (error) {
    await collector?.stop();
    await storage.close();
    throw error;
  }

  let stopping: Promise<void> | undefined;
  return {
    storage,
    collector,
    analyzer,
    stop() {
      stopping ??= (async () => {
        await collector?.stop();
        await analyzer?.stop();
        await storage.close();
        logger.info('storage closed');
      })();
      return stopping;
    },
  };
}
