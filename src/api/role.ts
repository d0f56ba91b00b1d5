import { readModelArchive } from '../../projections/prisma-tables/archive.js';
import { ChannelSubscriber, EnterGate, replyChannelOf } from '../../projections/redis-ordering/index.js';
import { EventAppender } from '../infra/kafka/appender.js';
import { CodeVault } from '../infra/codeKeys/vault.js';
import { logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { RoleContext, RoleHandle } from '../plugin.js';
import { PowChallenges } from './challenge.js';
import { EnterService, ReplyWaiter } from './enter.js';
import { codeAccess } from './fields/codeReads.js';
import { FairnessKey } from '../domain/fairness/line.js';
import { FairnessReader } from './fairness/reader.js';
import { fairnessResolvers } from './fairness/resolvers.js';
import { SoldOutCrowd } from './soldOut.js';
import { startLive } from './live/index.js';
import type { ApiServices } from './resolvers.js';
import { createApollo, type ApiEndpoint } from './server.js';

const log = logger.child({ role: 'api' });

export interface ApiRole extends RoleHandle {
  /** what GraphQL is answered by: the process serves it once every role runs */
  endpoint: ApiEndpoint;
  /** before the server drains: each socket is told 1001 (going away) and its watches end */
  closeSockets(): Promise<void>;
}

/**
 * The `api` role: `enter`'s write path (the gate, the appender, the wait for a decision), the
 * GraphQL fields over the other roles' stores, and the subscriptions pushed from the writer's
 * notices, on the process's HTTP server.
 */
export async function startApi(ctx: RoleContext): Promise<ApiRole> {
  const { config, kafka, redis, ordering, prisma, metrics, instance } = ctx;
  const appender = await EventAppender.connect(kafka, config);
  const waiter = await ReplyWaiter.listen(ChannelSubscriber.of(redis), replyChannelOf(ordering, instance));
  const challenges = new PowChallenges(config.CHALLENGE_SECRET);
  const crowd = SoldOutCrowd.start(ordering, metrics);
  const enter = new EnterService(ordering, new EnterGate(ordering), appender, waiter, challenges, {
    instance,
    topic: config.topics.events,
    partitions: config.EVENT_PARTITIONS,
    waitMs: config.ENTER_WAIT_MS,
    crowd,
  });
  appender.timing = metrics.timing;
  enter.timing = metrics.timing;
  const fieldStops: (() => Promise<void>)[] = [];
  const fairness = new FairnessReader(prisma, FairnessKey.parse(config.FAIRNESS_KEY));
  const extraResolvers: Record<string, Record<string, unknown>> = fairnessResolvers(fairness);
  for (const load of ctx.apiFields) {
    const fields = await (await load())(ctx);
    fieldStops.push(fields.stop);
    for (const [t, f] of Object.entries(fields.resolvers)) extraResolvers[t] = { ...(extraResolvers[t] ?? {}), ...f };
  }
  const vault = new CodeVault(prisma, config.CODE_KEYS);
  const services: ApiServices = {
    config,
    ordering,
    appender,
    enter,
    challenges,
    extraResolvers,
    archive: readModelArchive(prisma, config.EVENT_PARTITIONS),
    fairness,
    codes: codeAccess(prisma, config, vault),
    codeKeys: vault,
  };
  countCalls(metrics, challenges, enter, waiter);
  const apollo = await createApollo(services);
  // GraphQL subscriptions on the same port and path, pushed from the writer's notices
  const live = startLive(ctx.server, { config, services, redis, ordering, metrics });
  return {
    endpoint: { apollo, services },
    ready: () => true,
    closeSockets: () => live.close(),
    async stop() {
      await apollo.stop();
      await appender.close();
      for (const stop of fieldStops.reverse()) await stop().catch((err) => log.warn({ err }, 'GraphQL fields stop failed'));
      await waiter.close();
      await crowd?.close();
    },
  };
}

function countCalls(metrics: Metrics, challenges: PowChallenges, enter: EnterService, waiter: ReplyWaiter) {
  metrics.counterFrom('firstcome_challenges_issued_total', 'proof-of-work challenges issued', () => challenges.stats.issued);
  metrics.counterFrom('firstcome_challenges_solved_total', 'proof-of-work solutions accepted', () => challenges.stats.solved);
  metrics.counterFrom(
    'firstcome_challenges_refused_total',
    "proof-of-work solutions refused as wrong, expired or another's",
    () => challenges.stats.refused,
  );
  metrics.counterFrom('firstcome_challenges_reused_total', 'proof-of-work solutions refused as used before', () => challenges.stats.reused);
  metrics.counterFrom('firstcome_enter_appended_total', 'entries appended to the log', () => enter.stats.appended);
  metrics.counterFrom('firstcome_enter_rejected_total', 'enter calls rejected at the gate', () => enter.stats.rejected);
  metrics.counterFrom('firstcome_enter_queued_total', 'enter calls answered QUEUED', () => enter.stats.queued);
  metrics.gauge('firstcome_enter_waiting', 'enter calls waiting for a decision', () => waiter.size);
}
