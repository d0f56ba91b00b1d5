import { randomUUID } from 'node:crypto';
import type { Config } from './config.js';
import type { ApiRole } from './api/role.js';
import { Front } from './front.js';
import { Health } from './health.js';
import { createKafka } from './infra/kafka/client.js';
import { identityKey } from './infra/kafka/logIdentity.js';
import { Parking } from './infra/kafka/parking.js';
import { reachKafka, watchKafka } from './infra/kafka/reach.js';
import { createPrisma } from './infra/prisma/client.js';
import { prepareDatabase } from './infra/prisma/prepare.js';
import { untilOwnLog } from './logCheck.js';
import { logger, type Logger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import type { ReadSideShared, RoleContext, RoleHandle } from './plugin.js';
import { loadReadSide, startReadSide } from './read-side/index.js';
import { ReadSideThread, type ReadSideHandle } from './read-side/threaded.js';
import { apiFields, inStartOrder, readSideRoles, roleEntry, type Role } from './roles.js';
import { createRedis, RedisOrdering } from '../projections/redis-ordering/index.js';

export interface App {
  port: number;
  instance: string;
  stop(): Promise<void>;
}

/**
 * The composition root: the one place that imports everything. It opens the clients, listens for
 * probes at once, waits for Kafka and Postgres and for stores that follow this log, then starts the
 * roles (src/roles.ts) beside the read side's consumer host, and serves GraphQL once they all run.
 */
export async function startApp(config: Config, roles: readonly Role[]): Promise<App> {
  const instance = `${process.pid}-${randomUUID().slice(0, 8)}`;
  const log = logger.child({ instance, roles });
  warnOfDefaults(config, roles, log);

  // the read side's own thread loads while this one connects and prepares the database
  const readSideThread =
    roles.includes('api') && config.READ_SIDE_THREAD && readSideRoles(roles).length > 0
      ? new ReadSideThread(config, instance, readSideRoles(roles))
      : null;
  const kafka = createKafka(config, `firstcome-${instance}`);
  const admin = kafka.admin();
  const redis = createRedis(config);
  const prisma = createPrisma(config.DATABASE_URL, { poolSize: 8 });
  const metrics = createMetrics();
  const health = new Health();

  // /healthz and /readyz answer from here on, before Kafka is reached; GraphQL once the roles run
  const front = new Front(config, roles, { redis, prisma, metrics, health });
  const port = await front.listen(config.PORT);

  // Kafka or Postgres away at start: the process stays up, not ready, and tries each again with a
  // backoff, saying on /readyz what it waits for; both are waited on at once
  const kafkaReached = reachKafka(config, kafka, admin, log, (why) => (front.kafkaDown = why));
  try {
    await prepareDatabase(config, front.dbReporter, log);
  } catch (err) {
    await readSideThread?.terminate();
    front.server.close();
    await admin.disconnect().catch(() => undefined);
    await prisma.$disconnect().catch(() => undefined);
    redis.disconnect();
    throw err;
  }
  const logIdentity = await kafkaReached;
  front.kafkaDown = null;
  const kafkaProbe = watchKafka(admin, (why) => (front.kafkaDown = why));
  const ordering = new RedisOrdering(redis, config.REDIS_PREFIX, identityKey(logIdentity));
  const parking = await Parking.connect(kafka, config);
  const ctx: RoleContext = {
    config,
    kafka,
    redis,
    ordering,
    prisma,
    metrics,
    parking,
    health,
    readSide: { ready: () => front.readSide?.ready() ?? false },
    instance,
    logIdentity,
    roles,
    server: front.server,
    apiFields: apiFields(),
  };
  const handles: RoleHandle[] = [];
  countParked(metrics, parking, handles, front);

  // no role reads or writes a store built from another log
  await untilOwnLog({ admin, prisma, ordering, topic: config.topics.events }, logIdentity, health, log);

  // started beside the roles: a thread takes a moment to connect and join
  const readSideStarting = startTheReadSide(ctx, readSideThread);
  // a failure of the roles first does not leave it unhandled
  readSideStarting?.catch(() => undefined);
  const api = await startRoles(ctx, handles);
  front.readSide = await readSideStarting;
  front.serve(handles, api?.endpoint ?? null);
  log.info({ port }, 'firstcome is up');

  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      log.info('draining');
      clearInterval(kafkaProbe);
      await api?.closeSockets();
      // stop taking requests, let those in flight finish (they may be waiting for a decision)
      await front.server.drain(config.ENTER_WAIT_MS + 2000);
      await front.readSide?.stop().catch((err) => log.warn({ err }, 'consumer host stop failed'));
      // the last started first: the api, then the roles it served
      for (const h of handles.reverse()) await h.stop().catch((err) => log.warn({ err }, 'role stop failed'));
      await admin.disconnect();
      await parking.close().catch(() => undefined);
      await prisma.$disconnect();
      redis.disconnect();
      log.info('stopped');
    })());
  return { port, instance, stop };
}

function warnOfDefaults(config: Config, roles: readonly Role[], log: Logger) {
  if (config.jwtSecretIsDefault) log.warn('JWT_SECRET is not set: using the development default (never in production)');
  if (config.codeKeysAreDefault)
    log.warn('CODE_KEYS is not set: gifticon codes are sealed under the development key ring (never in production)');
  if (config.challengeSecretIsDefault && roles.includes('api'))
    log.warn('CHALLENGE_SECRET is not set: proof-of-work challenges are signed with the development default (never in production)');
  for (const warning of config.renamed) log.warn(warning);
}

/** Each of the process's roles started in the registry's order, its handle pushed to `handles`; the api role's is returned. */
async function startRoles(ctx: RoleContext, handles: RoleHandle[]): Promise<ApiRole | null> {
  let api: ApiRole | null = null;
  for (const role of inStartOrder(ctx.roles)) {
    const handle = await (await roleEntry(role).start())(ctx);
    handles.push(handle);
    // the registry's api entry starts src/api/role.ts's `startApi`
    if (role === 'api') api = handle as ApiRole;
  }
  return api;
}

/** The consumer host and the processors of the roles' read-side parts: in its own thread, or in this one. */
function startTheReadSide(ctx: RoleContext, thread: ReadSideThread | null): Promise<ReadSideHandle> | null {
  if (thread) return thread.start(ctx.health, ctx.logIdentity);
  const names = readSideRoles(ctx.roles);
  if (names.length === 0) return null;
  const { config, kafka, prisma, metrics, parking, health, instance, logIdentity } = ctx;
  const shared: ReadSideShared = { config, kafka, prisma, metrics, parking, health, instance, logIdentity };
  return loadReadSide(names).then((parts) => startReadSide(shared, parts));
}

/** Records parked, by the consumer that met them: this thread's producer's, and those of the roles' and read side's threads. */
function countParked(metrics: Metrics, parking: Parking, handles: readonly RoleHandle[], front: Front) {
  metrics.labeledCounterFrom(
    'firstcome_parked_total',
    'records parked in the dead-letter topic, by the consumer that met them',
    'consumer',
    () => {
      const counts = new Map(parking.counts);
      const add = ([consumer, n]: [string, number]) => counts.set(consumer, (counts.get(consumer) ?? 0) + n);
      for (const h of handles) for (const c of h.parked?.() ?? []) add(c);
      for (const c of front.readSideParked()) add(c);
      return counts;
    },
  );
}
