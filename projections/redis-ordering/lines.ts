import type { CampaignTerms } from '../../src/domain/campaign.js';
import type { CampaignEvent } from '../../src/domain/events.js';
import { logger, type Logger } from '../../src/logger.js';
import type { CampaignLines, LineAnswer, LineWork } from '../../src/writer/ports.js';
import { parsePlaces } from './answers.js';
import { queueFact } from './facts.js';
import type { RedisOrdering } from './reads.js';
import { RedisReplyChannel } from './replies.js';
import { RedisChangeFeed } from './changes.js';
import { finishRebuild, markBuilt, saveRebuildProgress } from './rebuild.js';
import { SlotPipelines } from './slots.js';

/** The single writer's view of the Redis ordering projection (its CampaignLines port). */
export class RedisCampaignLines implements CampaignLines {
  constructor(
    private readonly o: RedisOrdering,
    private readonly topic: string,
    private readonly log: Logger,
  ) {}

  isBuilt(partition: number): Promise<boolean> {
    return this.o.isBuilt({ topic: this.topic, partition });
  }

  markBuilt(partition: number): Promise<void> {
    return markBuilt(this.o, { topic: this.topic, partition });
  }

  rebuildProgress(partition: number, next: bigint, until: bigint): Promise<void> {
    return saveRebuildProgress(this.o, { topic: this.topic, partition }, { next, until });
  }

  finishRebuild(partition: number, created: Iterable<string>): Promise<boolean> {
    return finishRebuild(this.o, { topic: this.topic, partition }, created);
  }

  async terms(campaignIds: readonly string[]): Promise<Map<string, CampaignTerms>> {
    const metas = await Promise.all(campaignIds.map((id) => this.o.meta(id)));
    const out = new Map<string, CampaignTerms>();
    metas.forEach((m, i) => m && out.set(campaignIds[i]!, m.terms));
    return out;
  }

  /** One round trip (per node, on a cluster): the facts, then place.lua per campaign, each campaign's in order on its slot. */
  async place(partition: number, work: LineWork): Promise<LineAnswer[][] | 'REBUILD'> {
    const k = this.o.keys;
    const pipes = new SlotPipelines(this.o.redis);
    for (const f of work.facts) queueFact(pipes.on, k, f.event, partition, f.replaying);
    for (const line of work.lines) {
      const meta = k.meta(line.campaignId);
      pipes.on(meta).fcPlace(meta, k.line(line.campaignId), k.pending(line.campaignId), ...line.entries.flatMap((e) => [e.offset.toString(), e.userId, e.rejection ?? '']));
    }
    const results = await pipes.exec();
    for (const [err] of results) if (err) throw err;
    const out: LineAnswer[][] = [];
    for (const [, r] of results.slice(results.length - work.lines.length)) {
      const places = parsePlaces(r as (string | number)[]);
      if (places === 'REBUILD') return 'REBUILD';
      out.push(places);
    }
    return out;
  }

  async applyCommitted(partition: number, events: readonly CampaignEvent[]): Promise<boolean> {
    const pipes = new SlotPipelines(this.o.redis);
    for (const e of events) queueFact(pipes.on, this.o.keys, e, partition, false);
    return pipes.exec().then(
      (results) => results.every(([err]) => !err),
      (err) => (this.log.warn({ err }, 'applying committed decisions to Redis failed'), false),
    );
  }
}

/** The single writer's two Redis ports over one client. */
export const writerPorts = (o: RedisOrdering, topic: string) => ({
  lines: new RedisCampaignLines(o, topic, logger.child({ role: 'decider', component: 'redis-lines' })),
  replies: new RedisReplyChannel(o),
  changes: new RedisChangeFeed(o, logger.child({ role: 'decider', component: 'change-feed' })),
});
