import type { RoleFactory } from '../src/plugin.js';
import { createEventStore } from '../src/infra/eventstore/eventStore.js';
import { logger } from '../src/logger.js';
import { ARCHIVE_PROJECTION, EventStoreArchive } from './eventstore-archive/archive.js';
import { Lag, registerLagGauge } from './lag.js';
import { ParkedProjector } from './parked/projector.js';
import { PRISMA_PROJECTION, PrismaTables } from './prisma-tables/projector.js';

export { PRISMA_PROJECTION, rewindPrismaProjection } from './prisma-tables/projector.js';
export { readCampaignEvents } from './eventstore-archive/archive.js';

const log = logger.child({ role: 'projector' });

/**
 * The `projector` role: the Prisma tables always, the EventStoreDB archive when EVENTSTORE_URL is
 * set, both processors of the process's consumer host (one fetch of the log for every processor
 * of the read side); each keeps its own checkpoint and lags on its own. The parked records list
 * reads its own topic.
 */
export const startProjectors: RoleFactory = async (shared) => {
  const { config, kafka, prisma, metrics, health, readSide } = shared;
  const topic = config.topics.events;
  const lags: Lag[] = [];

  const tablesLag = new Lag(PRISMA_PROJECTION, log);
  lags.push(tablesLag);
  const tables = new PrismaTables(prisma, topic, tablesLag, shared.parking, health.reporter(`projector/${PRISMA_PROJECTION}`));
  readSide.add(tables);
  metrics.counterFrom('firstcome_projector_batches_total', 'batches written to the Prisma tables', () => tables.stats.batches);
  metrics.counterFrom('firstcome_projector_events_total', 'events applied to the Prisma tables', () => tables.stats.events);
  metrics.counterFrom('firstcome_projector_rewinds_total', 'times a checkpoint was found moved (replays)', () => tables.stats.rewinds);

  const parked = new ParkedProjector(prisma, kafka, config);
  await parked.start();

  let archive: EventStoreArchive | null = null;
  if (config.EVENTSTORE_URL) {
    const archiveLag = new Lag(ARCHIVE_PROJECTION, log);
    lags.push(archiveLag);
    archive = new EventStoreArchive(createEventStore(config.EVENTSTORE_URL), prisma, topic, archiveLag, health.reporter(`projector/${ARCHIVE_PROJECTION}`));
    readSide.add(archive);
    const a = archive;
    metrics.counterFrom('firstcome_archive_events_total', 'events appended to EventStoreDB', () => a.stats.appended);
  } else {
    log.info('EVENTSTORE_URL is not set: the EventStoreDB archive is off');
  }
  registerLagGauge(metrics.registry, lags);

  return {
    ready: () => readSide.ready() && parked.ready(),
    // the host stops first (src/app.ts), so nothing is offered to the archive once its client is gone
    stop: async () => {
      await archive?.stop();
      await parked.stop();
    },
  };
};
