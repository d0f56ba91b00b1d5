import type { RoleFactory } from '../src/plugin.js';
import { createEventStore } from '../src/infra/eventstore/eventStore.js';
import { logger } from '../src/logger.js';
import { ARCHIVE_PROJECTION, EventStoreArchive } from './eventstore-archive/archive.js';
import { Lag, registerLagGauge } from './lag.js';
import { ParkedProjector } from './parked/projector.js';
import { PRISMA_PROJECTION, PrismaProjector } from './prisma-tables/projector.js';

export { PRISMA_PROJECTION, rewindPrismaProjection } from './prisma-tables/projector.js';
export { readCampaignEvents } from './eventstore-archive/archive.js';

const log = logger.child({ role: 'projector' });

/**
 * The `projector` role: the Prisma tables always, the EventStoreDB archive when EVENTSTORE_URL is
 * set. Each is its own consumer group, so each scales (and lags) on its own.
 */
export const startProjectors: RoleFactory = async (shared) => {
  const { config, kafka, prisma, metrics, health } = shared;
  const lags: Lag[] = [];

  const tablesLag = new Lag(PRISMA_PROJECTION, log);
  lags.push(tablesLag);
  const tables = new PrismaProjector(prisma, kafka, config, tablesLag, shared.parking);
  tables.health = health.reporter(`projector/${PRISMA_PROJECTION}`);
  await tables.start();
  metrics.counterFrom('firstcome_projector_batches_total', 'batches written to the Prisma tables', () => tables.stats.batches);
  metrics.counterFrom('firstcome_projector_events_total', 'events applied to the Prisma tables', () => tables.stats.events);
  metrics.counterFrom('firstcome_projector_rewinds_total', 'times a checkpoint was found moved (replays)', () => tables.stats.rewinds);

  const parked = new ParkedProjector(prisma, kafka, config);
  await parked.start();

  let archive: EventStoreArchive | null = null;
  if (config.EVENTSTORE_URL) {
    const archiveLag = new Lag(ARCHIVE_PROJECTION, log);
    lags.push(archiveLag);
    archive = new EventStoreArchive(createEventStore(config.EVENTSTORE_URL), kafka, config, archiveLag, shared.parking);
    archive.health = health.reporter(`projector/${ARCHIVE_PROJECTION}`);
    await archive.start();
    const a = archive;
    metrics.counterFrom('firstcome_archive_events_total', 'events appended to EventStoreDB', () => a.stats.appended);
  } else {
    log.info('EVENTSTORE_URL is not set: the EventStoreDB archive is off');
  }
  registerLagGauge(metrics.registry, lags);

  return {
    ready: () => tables.ready() && parked.ready() && (archive?.ready() ?? true),
    stop: async () => {
      await archive?.stop();
      await parked.stop();
      await tables.stop();
    },
  };
};
