import type { Admin } from 'kafkajs';
import { describeError, type Health } from './health.js';
import { ADOPT_COMMAND, describeIdentity, type IdentityVerdict, type LogIdentity } from './infra/kafka/logIdentity.js';
import type { PrismaClient } from './infra/prisma/client.js';
import { checkpointsBeyondEnd, databaseVerdict, recordedIdentities } from './infra/prisma/logIdentities.js';
import type { Logger } from './logger.js';
import { adoptSentinels, redisVerdict, sentinels, type RedisOrdering } from '../projections/redis-ordering/index.js';

/**
 * The check a process makes before any role reads or writes a store: does each store follow the
 * log this process found? A store built from another log, or a checkpoint beyond its partition's
 * end (the log was replaced, or lost its tail), is a fault: the process stays up, /readyz answers
 * 503 naming both logs and `npm run adopt-log`, and no role starts until the stores agree.
 * Stores that have recorded no identity yet (a new deployment, or one from before identities)
 * take this one: Redis sentinels and the read model's checkpoints here, the rest with their first
 * write.
 */
export interface LogFault {
  /** one line, beginning with the command that adopts this log */
  reason: string;
  /** the log the store was built from, when it says */
  recorded: LogIdentity | null;
  found: LogIdentity;
}

export interface LogStores {
  admin: Admin;
  prisma: PrismaClient;
  ordering: RedisOrdering;
  topic: string;
}

export async function checkLog(stores: LogStores, current: LogIdentity): Promise<LogFault | null> {
  const { admin, prisma, ordering, topic } = stores;
  const fault = (store: string, v: Extract<IdentityVerdict, { kind: 'other' }>): LogFault => ({
    reason: `run \`${ADOPT_COMMAND}\`: ${store} was built from another log (${v.differences.join(', ')})`,
    recorded: v.recorded,
    found: current,
  });

  const db = databaseVerdict(await recordedIdentities(prisma), current);
  if (db.kind === 'other') return fault(`the database's ${db.projection ?? 'read model'}`, db);
  // from before identities: checkpoints of another topic are another deployment's read model
  const others = await prisma.projectionCheckpoint.findMany({
    where: { topic: { not: topic }, nextOffset: { gt: 0n } },
    select: { topic: true },
    distinct: ['topic'],
  });
  if (db.kind === 'adopt' && others.length > 0) {
    const other = { clusterId: 'unknown', topic: others[0]!.topic, partitions: current.partitions, logId: null };
    return fault("the database's read model", {
      kind: 'other',
      recorded: other,
      current,
      differences: [`another topic (${other.topic} → ${topic})`],
    });
  }

  const ends = new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, BigInt(o.high)]));
  const beyond = await checkpointsBeyondEnd(prisma, topic, ends);
  if (beyond.length > 0) {
    const b = beyond[0]!;
    return {
      reason:
        `run \`${ADOPT_COMMAND}\`: the ${b.projection} checkpoint of partition ${b.partition} is at offset ${b.next}, ` +
        `beyond the log's end (${b.end}): the log was replaced or lost its tail`,
      recorded: null,
      found: current,
    };
  }

  const found = await sentinels(ordering);
  const redis = redisVerdict(found, current);
  if (redis.kind === 'other') return fault(`Redis (prefix ${ordering.keys.prefix})`, redis);

  // nothing refused: stores from before identities take this one
  await adoptSentinels(ordering, found, current);
  if (db.kind === 'adopt') {
    await prisma.$executeRaw`
      INSERT INTO log_identities (projection, cluster_id, topic, partitions, log_id, recorded_at)
      SELECT DISTINCT projection, ${current.clusterId}::text, ${current.topic}::text, ${current.partitions}::int, ${current.logId}::text, ${new Date()}::timestamptz
        FROM projection_checkpoints WHERE topic = ${topic}
      ON CONFLICT (projection) DO NOTHING`;
  }
  return null;
}

/** /readyz's detail: the reason, and both logs on lines of their own (each line there is kept short). */
export function reportLogFault(health: Pick<Health, 'reporter'>, fault: LogFault | null): void {
  const parts = {
    'log-identity': fault?.reason,
    'log-identity/recorded': fault?.recorded && describeIdentity(fault.recorded),
    'log-identity/found': fault && describeIdentity(fault.found),
  };
  for (const [name, text] of Object.entries(parts)) {
    if (text) health.reporter(name).failing(text);
    else health.reporter(name).ok();
  }
}

/**
 * Resolves once every store follows `current`. Until then the process stays up and waits, /readyz
 * says why and names the command: once `npm run adopt-log` has run, the roles start.
 */
export async function untilOwnLog(stores: LogStores, current: LogIdentity, health: Pick<Health, 'reporter'>, log: Logger): Promise<void> {
  for (let refused = false; ; refused = true) {
    const fault = await checkLog(stores, current).catch((err: unknown) => ({
      reason: `the stores' log could not be checked yet: ${describeError(err)}`,
      recorded: null,
      found: current,
    }));
    reportLogFault(health, fault);
    if (!fault) break;
    if (!refused)
      log.error({ found: describeIdentity(current), recorded: fault.recorded && describeIdentity(fault.recorded) }, fault.reason);
    await new Promise((r) => setTimeout(r, 2000));
  }
  if (!current.logId)
    log.warn(
      { topic: stores.topic },
      'the topic has no genesis record (created before them): a topic created again under its name is told apart by its end offsets only',
    );
}
