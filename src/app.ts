import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Config } from './config.js';
import { Worker } from 'node:worker_threads';
import type { ApiPluginFactory, ReadSideShared, RoleFactory, RoleHandle, Shared } from './plugin.js';
import { SingleWriter, WRITER } from './writer/singleWriter.js';
import { ReadModelRebuildBound } from './writer/rebuildBound.js';
import { readModelArchive } from '../projections/prisma-tables/archive.js';
import type { FromWriter } from './writer/thread.js';
import { loadReadSide, readSideRoles, startReadSide } from './read-side/index.js';
import { ReadSideThread, type ReadSideHandle, type ThreadMetrics } from './read-side/threaded.js';
import { PowChallenges } from './api/challenge.js';
import { codeAccess } from './api/fields/codeReads.js';
import { EnterService, ReplyWaiter } from './api/enter.js';
import type { ApiServices } from './api/resolvers.js';
import { createApollo, createHttpServer, type ApiEndpoint } from './api/server.js';
import { startLive } from './api/live/index.js';
import { describeError, Health, type HealthReporter } from './health.js';
import { createKafka } from './infra/kafka/client.js';
import { ensureTopics } from './infra/kafka/topics.js';
import { readLogIdentity } from './infra/kafka/genesis.js';
import { describeIdentity, identityKey, type LogIdentity } from './infra/kafka/logIdentity.js';
import { checkLog, reportLogFault } from './logCheck.js';
import { EventAppender } from './infra/kafka/appender.js';
import { Parking } from './infra/kafka/parking.js';
import { createPrisma } from './infra/prisma/client.js';
import { prepareDatabase } from './infra/prisma/prepare.js';
import {
  ChannelSubscriber,
  createRedis,
  EnterGate,
  RedisOrdering,
  replyChannelOf,
  writerPorts,
} from '../projections/redis-ordering/index.js';
import { logger, type Logger } from './logger.js';
import { createMetrics, type Timing } from './metrics.js';

export const ROLES = ['api', 'writer', 'projector', 'worker'] as const;
/** Old names of roles, still taken (with a warning) for a release. */
export const ROLE_ALIASES: Readonly<Record<string, Role>> = { decider: 'writer' };
export type Role = (typeof ROLES)[number];

/** Roles that live outside src/ plug in here (projections/, batch/). */
const external: Partial<Record<Role, () => Promise<RoleFactory>>> = {};
export function registerRole(role: Role, load: () => Promise<RoleFactory>) {
  external[role] = load;
}

/** GraphQL fields served by the API role but answered from elsewhere (see `ApiPlugin`). */
const apiPlugins: (() => Promise<ApiPluginFactory>)[] = [];
export function registerApiPlugin(load: () => Promise<ApiPluginFactory>) {
  apiPlugins.push(load);
}

export interface App {
  port: number;
  instance: string;
  stop(): Promise<void>;
}

export async function startApp(config: Config, roles: readonly Role[]): Promise<App> {
  const instance = `${process.pid}-${randomUUID().slice(0, 8)}`;
  const log = logger.child({ instance, roles });
  if (config.jwtSecretIsDefault) log.warn('JWT_SECRET is not set: using the development default (never in production)');
  if (config.codeKeysAreDefault)
    log.warn('CODE_KEYS is not set: gifticon codes are sealed under the development key ring (never in production)');
  if (config.challengeSecretIsDefault && roles.includes('api'))
    log.warn('CHALLENGE_SECRET is not set: proof-of-work challenges are signed with the development default (never in production)');

  // the read side's own thread loads while this one connects and prepares the database
  const readSideRoleNames = readSideRoles(roles);
  const readSideThread =
    roles.includes('api') && config.READ_SIDE_THREAD && readSideRoleNames.length > 0
      ? new ReadSideThread(config, instance, readSideRoleNames)
      : null;

  const kafka = createKafka(config, `firstcome-${instance}`);
  const admin = kafka.admin();
  const redis = createRedis(config);
  const prisma = createPrisma(config.DATABASE_URL, { poolSize: 8 });
  const metrics = createMetrics();
  const health = new Health();
  /** resolves at the database's first answer at start, whatever it was */
  let dbAnswer!: () => void;
  const dbAnswered = new Promise<void>((r) => (dbAnswer = r));
  const postgres = health.reporter('postgres');
  const dbReporter: HealthReporter = {
    ok: (part) => (postgres.ok(part), dbAnswer()),
    failing: (err, part) => (postgres.failing(err, part), dbAnswer()),
  };
  /** what the read side's thread showed of itself at this scrape */
  let readSideMetrics: ThreadMetrics | null = null;
  // the consumer host and its processors: in this thread, or in their own once they have started
  let readSide: ReadSideHandle | null = null;

  // /healthz and /readyz answer from here on, before Kafka is reached; GraphQL once the roles run
  const handles: RoleHandle[] = [];
  let started = false;
  let endpoint: ApiEndpoint | null = null;
  /** null while the brokers answer, else why not */
  let kafkaDown: string | null = `connecting to ${config.KAFKA_BROKERS.join(',')}`;
  const server = createHttpServer(() => endpoint ?? (roles.includes('api') ? 'starting' : null), {
    ready: async () => {
      // the database's first answer to the migration runner says why it fails better than a probe's
      await Promise.race([dbAnswered, new Promise((r) => setTimeout(r, 2000).unref())]);
      const failing: Record<string, string> = {};
      // a server that never answers (a dropped packet, not a refused connection) must not hang the probe
      const probe = (name: string, p: Promise<unknown>) =>
        Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 2 s')), 2000).unref())]).then(
          () => true,
          (err: unknown) => ((failing[name] = describeError(err)), false),
        );
      const [redisOk, pgOk] = await Promise.all([probe('redis', redis.ping()), probe('postgres', prisma.$queryRaw`SELECT 1`)]);
      if (kafkaDown) failing.kafka = kafkaDown;
      Object.assign(failing, health.failing());
      // consumers: every role started and its consumers assigned; failing: what is failing now, with its last error
      const checks: Record<string, boolean> = {
        kafka: !kafkaDown,
        redis: redisOk,
        postgres: pgOk,
        consumers: started && handles.every((h) => h.ready()),
      };
      return { ok: Object.values(checks).every(Boolean) && Object.keys(failing).length === 0, checks, failing };
    },
    metrics: async () => {
      readSideMetrics = (await readSide?.metrics?.()) ?? null;
      return { contentType: metrics.registry.contentType, body: (await metrics.registry.metrics()) + (readSideMetrics?.text ?? '') };
    },
    observe: (op, s, ok) => metrics.requests.observe({ operation: op, ok: String(ok) }, s),
    limits: metrics.limits,
    edge: metrics.edge,
    metricsToken: config.METRICS_TOKEN,
  });
  await new Promise<void>((resolve) => server.listen(config.PORT, '0.0.0.0', resolve));
  const port = (server.address() as AddressInfo).port;

  // Kafka or Postgres away at start: the process stays up, not ready, and tries each again with a
  // backoff, saying on /readyz what it waits for; both are waited on at once
  const kafkaReached = untilKafka(
    config,
    log,
    (why) => (kafkaDown = why),
    async () => {
      await admin.connect();
      await ensureTopics(admin, config, kafka);
      const identity = await readLogIdentity(kafka, admin, config.topics.events);
      kafkaDown = null;
      return identity;
    },
  );
  try {
    await prepareDatabase(config, dbReporter, log);
  } catch (err) {
    await readSideThread?.terminate();
    server.close();
    await admin.disconnect().catch(() => undefined);
    await prisma.$disconnect().catch(() => undefined);
    redis.disconnect();
    throw err;
  }
  const logIdentity = await kafkaReached;
  kafkaDown = null;
  const kafkaProbe = setInterval(() => {
    admin.describeCluster().then(
      () => (kafkaDown = null),
      (err: unknown) => (kafkaDown = describeError(err)),
    );
  }, 2000);
  const ordering = new RedisOrdering(redis, config.REDIS_PREFIX, identityKey(logIdentity));
  const parking = await Parking.connect(kafka, config);
  const shared: Shared = {
    config,
    kafka,
    redis,
    ordering,
    prisma,
    metrics,
    parking,
    health,
    readSide: { ready: () => readSide?.ready() ?? false },
    instance,
    logIdentity,
  };
  // a single writer in its own thread parks with its own producer and reports its count
  let threadParked = 0;
  metrics.labeledCounterFrom(
    'firstcome_parked_total',
    'records parked in the dead-letter topic, by the consumer that met them',
    'consumer',
    () => {
      const counts = new Map(parking.counts);
      if (threadParked > 0) counts.set(WRITER, (counts.get(WRITER) ?? 0) + threadParked);
      for (const [consumer, n] of readSideMetrics?.parked ?? []) counts.set(consumer, (counts.get(consumer) ?? 0) + n);
      return counts;
    },
  );

  // No role reads or writes a store built from another log. The process stays up and waits,
  // /readyz says why and names the command; once `npm run adopt-log` has run, the roles start.
  for (let refused = false; ; refused = true) {
    const fault = await checkLog({ admin, prisma, ordering, topic: config.topics.events }, logIdentity).catch((err: unknown) => ({
      reason: `the stores' log could not be checked yet: ${describeError(err)}`,
      recorded: null,
      found: logIdentity,
    }));
    reportLogFault(health, fault);
    if (!fault) break;
    if (!refused)
      log.error({ found: describeIdentity(logIdentity), recorded: fault.recorded && describeIdentity(fault.recorded) }, fault.reason);
    await new Promise((r) => setTimeout(r, 2000));
  }
  if (!logIdentity.logId)
    log.warn(
      { topic: config.topics.events },
      'the topic has no genesis record (created before them): a topic created again under its name is told apart by its end offsets only',
    );

  if (roles.includes('writer')) {
    const reporter = health.reporter('writer');
    const d =
      roles.includes('api') && config.DECIDER_THREAD
        ? await startWriterThread(config, instance, logIdentity, reporter, (n) => (threadParked = n))
        : await startWriter(shared, reporter);
    metrics.counterFrom('firstcome_decider_batches_total', 'fetched batches decided', () => d.stats.batches);
    metrics.counterFrom('firstcome_decider_entries_total', 'entries placed', () => d.stats.entries);
    metrics.counterFrom('firstcome_decider_winners_total', 'winners selected', () => d.stats.winners);
    metrics.counterFrom('firstcome_decider_rebuilds_total', 'Redis projection rebuilds from the log', () => d.stats.rebuilds);
    d.timing = metrics.timing;
    handles.push(d);
  }

  // started beside the other roles: a thread takes a moment to connect and join
  const readSideStarting = readSideThread
    ? readSideThread.start(health, logIdentity)
    : readSideRoleNames.length > 0
      ? loadReadSide(readSideRoleNames).then((parts) =>
          startReadSide({ config, kafka, prisma, metrics, parking, health, instance, logIdentity } satisfies ReadSideShared, parts),
        )
      : null;
  // a failure of the other roles first does not leave it unhandled
  readSideStarting?.catch(() => undefined);
  for (const role of roles) {
    if (role === 'api' || role === 'writer') continue;
    const load = external[role];
    if (!load) throw new Error(`role ${role} is not available in this build`);
    handles.push(await (await load())(shared));
  }
  readSide = await readSideStarting;

  let services: ApiServices | null = null;
  let appender: EventAppender | null = null;
  let waiter: ReplyWaiter | null = null;
  if (roles.includes('api')) {
    appender = await EventAppender.connect(kafka, config);
    waiter = await ReplyWaiter.listen(ChannelSubscriber.of(redis), replyChannelOf(ordering, instance));
    const challenges = new PowChallenges(config.CHALLENGE_SECRET);
    const enter = new EnterService(ordering, new EnterGate(ordering), appender, waiter, challenges, {
      instance,
      topic: config.topics.events,
      partitions: config.EVENT_PARTITIONS,
      waitMs: config.ENTER_WAIT_MS,
    });
    appender.timing = metrics.timing;
    enter.timing = metrics.timing;
    const extraResolvers: Record<string, Record<string, unknown>> = {};
    for (const load of apiPlugins) {
      const plugin = await (await load())(shared);
      handles.push({ ready: () => true, stop: plugin.stop });
      for (const [t, f] of Object.entries(plugin.resolvers)) extraResolvers[t] = { ...(extraResolvers[t] ?? {}), ...f };
    }
    services = {
      config,
      ordering,
      appender,
      enter,
      challenges,
      extraResolvers,
      archive: readModelArchive(prisma, config.EVENT_PARTITIONS),
      codes: codeAccess(prisma, config),
    };
    metrics.counterFrom('firstcome_challenges_issued_total', 'proof-of-work challenges issued', () => challenges.stats.issued);
    metrics.counterFrom('firstcome_challenges_solved_total', 'proof-of-work solutions accepted', () => challenges.stats.solved);
    metrics.counterFrom(
      'firstcome_challenges_refused_total',
      "proof-of-work solutions refused as wrong, expired or another's",
      () => challenges.stats.refused,
    );
    metrics.counterFrom(
      'firstcome_challenges_reused_total',
      'proof-of-work solutions refused as used before',
      () => challenges.stats.reused,
    );
    metrics.counterFrom('firstcome_enter_appended_total', 'entries appended to the log', () => enter.stats.appended);
    metrics.counterFrom('firstcome_enter_rejected_total', 'enter calls rejected at the gate', () => enter.stats.rejected);
    metrics.counterFrom('firstcome_enter_queued_total', 'enter calls answered QUEUED', () => enter.stats.queued);
    metrics.gauge('firstcome_enter_waiting', 'enter calls waiting for a decision', () => waiter!.size);
  }

  const apollo = services ? await createApollo(services) : null;
  if (apollo && services) endpoint = { apollo, services };
  // GraphQL subscriptions on the same port and path, pushed from the writer's notices
  const live = services ? startLive(server, { config, services, redis, ordering, metrics }) : null;
  started = true;
  log.info({ port }, 'firstcome is up');

  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      log.info('draining');
      clearInterval(kafkaProbe);
      // sockets first: each is told 1001 (going away) and its watches end
      await live?.close();
      // stop taking requests, let those in flight finish (they may be waiting for a decision)
      await server.drain(config.ENTER_WAIT_MS + 2000);
      await apollo?.stop();
      await appender?.close();
      await readSide?.stop().catch((err) => log.warn({ err }, 'consumer host stop failed'));
      for (const h of handles.reverse()) await h.stop().catch((err) => log.warn({ err }, 'role stop failed'));
      await waiter?.close();
      await admin.disconnect();
      await parking.close().catch(() => undefined);
      await prisma.$disconnect();
      redis.disconnect();
      log.info('stopped');
    })());
  return { port, instance, stop };
}

interface WriterHandle extends RoleHandle {
  stats: SingleWriter['stats'];
  timing: Timing;
}

async function startWriter(shared: Shared, health: HealthReporter): Promise<WriterHandle> {
  const bound = new ReadModelRebuildBound(shared.prisma, shared.kafka, shared.config);
  const writer = new SingleWriter(
    shared.kafka,
    writerPorts(shared.ordering, shared.config.topics.events),
    shared.config,
    shared.parking,
    undefined,
    bound,
  );
  writer.health = health;
  let assigned = false;
  const handle: WriterHandle = {
    stats: writer.stats,
    timing: () => undefined,
    ready: () => assigned && writer.stops.size === 0,
    stop: () => writer.stop().finally(() => bound.close()),
  };
  writer.timing = (...a) => handle.timing(...a);
  await writer.start();
  void writer.ready().then(() => (assigned = true));
  return handle;
}

/** The single writer in a worker thread of this process (see src/writer/thread.ts for why). */
async function startWriterThread(
  config: Config,
  instance: string,
  logIdentity: LogIdentity,
  health: HealthReporter,
  parked: (count: number) => void,
): Promise<WriterHandle> {
  const entry = import.meta.url.endsWith('.ts') ? './writer/thread-entry.mjs' : './writer/thread.js';
  const worker = new Worker(new URL(entry, import.meta.url), { workerData: { config, instance, logTag: identityKey(logIdentity) } });
  let assigned = false;
  const handle: WriterHandle = {
    stats: { batches: 0, entries: 0, winners: 0, rebuilds: 0 },
    timing: () => undefined,
    ready: () => assigned,
    async stop() {
      const stopped = new Promise<void>((r) => worker.on('message', (m: FromWriter) => m.type === 'stopped' && r()));
      worker.postMessage('stop');
      await Promise.race([stopped, new Promise((r) => setTimeout(r, 15_000))]);
      await worker.terminate();
    },
  };
  const started = new Promise<void>((resolve, reject) => {
    worker.on('message', (m: FromWriter) => {
      if (m.type === 'assigned') assigned = true;
      if (m.type === 'health') {
        if (m.error === null) health.ok(m.part);
        else health.failing(m.error, m.part);
      }
      if (m.type === 'stats') {
        handle.stats = m.stats;
        parked(m.parked);
        for (const [stage, seconds, size] of m.timings) handle.timing(stage, seconds, size);
      }
      if (m.type === 'failed') reject(new Error(`single writer thread: ${m.message}`));
      resolve();
    });
    worker.once('error', reject);
  });
  worker.on('error', (err) => logger.fatal({ err }, 'single writer thread failed'));
  await started;
  return handle;
}

/**
 * Runs `connect` until it succeeds: at first at once, then with a backoff doubling from 0.5 s to
 * 10 s. Each failure is told to `waiting` (for /readyz) and logged at warn the first time and
 * every tenth, so a long outage does not fill the log.
 */
async function untilKafka<T>(config: Config, log: Logger, waiting: (why: string) => void, connect: () => Promise<T>): Promise<T> {
  let delayMs = 500;
  for (let attempt = 1; ; attempt++) {
    try {
      return await connect();
    } catch (err) {
      const why = `waiting for Kafka at ${config.KAFKA_BROKERS.join(',')} (attempt ${attempt}, next in ${delayMs} ms): ${describeError(err)}`;
      waiting(why);
      if (attempt === 1 || attempt % 10 === 0) log.warn(why);
      await new Promise((r) => setTimeout(r, delayMs));
      delayMs = Math.min(delayMs * 2, 10_000);
    }
  }
}
