import type { ReadSideFactory, RoleFactory } from '../src/plugin.js';
import type { Processor } from '../src/read-side/processor.js';
import { logger } from '../src/logger.js';
import type { EventStoreArchive } from './eventstore-archive/archive.js';
import { Lag, registerLagGauge } from './lag.js';
import { ParkedProjector } from './parked/projector.js';
import { PRISMA_PROJECTION, PrismaTables } from './prisma-tables/projector.js';

export { PRISMA_PROJECTION, rewindPrismaProjection } from './prisma-tables/projector.js';

const log = logger.child({ role: 'projector' });

/**
 * The `projector` role: the parked records list, which reads its own topic. Its processors
 * (`projectorProcessors`) run in the process's consumer host.
 */
export const startProjectors: RoleFactory = async (shared) => {
  const { config, kafka, prisma, readSide } = shared;
  const parked = new ParkedProjector(prisma, kafka, config);
  await parked.start();
  return {
    ready: () => readSide.ready() && parked.ready(),
    stop: () => parked.stop(),
  };
};

/**
 * The `projector` role's processors of the consumer host: the Prisma tables always, the
 * EventStoreDB archive when EVENTSTORE_URL is set (one fetch of the log for every processor of
 * the read side); each keeps its own checkpoint and lags on its own.
 */
export const projectorProcessors: ReadSideFactory = async (shared) => {
  const { config, prisma, metrics, health } = shared;
  const topic = config.topics.events;
  const lags: Lag[] = [];
  const processors: Processor[] = [];

  const tablesLag = new Lag(PRISMA_PROJECTION, log);
  lags.push(tablesLag);
  const tables = new PrismaTables(
    prisma,
    topic,
    tablesLag,
    shared.parking,
    health.reporter(`projector/${PRISMA_PROJECTION}`),
    config.DATABASE_URL,
    shared.logIdentity,
  );
  processors.push(tables);
  metrics.counterFrom('firstcome_projector_batches_total', 'batches written to the Prisma tables', () => tables.stats.batches);
  metrics.counterFrom('firstcome_projector_events_total', 'events applied to the Prisma tables', () => tables.stats.events);
  metrics.counterFrom('firstcome_projector_rewinds_total', 'times a checkpoint was found moved (replays)', () => tables.stats.rewinds);
  metrics.counterFrom(
    'firstcome_projector_lookups_total',
    'batch writes that looked up which of their users the tables already hold',
    () => tables.stats.lookups,
  );
  metrics.counterFrom(
    'firstcome_projector_lookup_retries_total',
    "batch writes refused for a user's second entry and written again with the lookup",
    () => tables.stats.retries,
  );

  let archive: EventStoreArchive | null = null;
  if (config.EVENTSTORE_URL) {
    // loaded only when on: its gRPC client is a third of what a read side thread loads
    const [{ ARCHIVE_PROJECTION, EventStoreArchive }, { createEventStore }] = await Promise.all([
      import('./eventstore-archive/archive.js'),
      import('../src/infra/eventstore/eventStore.js'),
    ]);
    const archiveLag = new Lag(ARCHIVE_PROJECTION, log);
    lags.push(archiveLag);
    archive = new EventStoreArchive(
      createEventStore(config.EVENTSTORE_URL),
      prisma,
      topic,
      archiveLag,
      health.reporter(`projector/${ARCHIVE_PROJECTION}`),
      shared.logIdentity,
    );
    processors.push(archive);
    const a = archive;
    metrics.counterFrom('firstcome_archive_events_total', 'events appended to EventStoreDB', () => a.stats.appended);
  } else {
    log.info('EVENTSTORE_URL is not set: the EventStoreDB archive is off');
  }
  registerLagGauge(metrics.registry, lags);

  return {
    processors,
    // the host stops first, so nothing is offered to the archive once its client is gone
    stop: async () => {
      await archive?.stop();
    },
  };
};
