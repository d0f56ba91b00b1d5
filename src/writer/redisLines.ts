import type { CampaignTerms } from '../domain/campaign.js';
import type { CampaignEvent } from '../domain/events.js';
import { RedisOrdering } from '../infra/redis/ordering.js';
import type { Logger } from '../logger.js';
import type { CampaignLines, LineWork, Placed, ReplyChannel } from './ports.js';
import type { Reply } from './replies.js';

/** The writer's view of the Redis ordering projection (keys and Lua live in RedisOrdering). */
export class RedisCampaignLines implements CampaignLines {
  constructor(
    private readonly ordering: RedisOrdering,
    private readonly topic: string,
    private readonly log: Logger,
  ) {}

  isBuilt(partition: number): Promise<boolean> {
    return this.ordering.isBuilt(this.topic, partition);
  }

  async markBuilt(partition: number): Promise<void> {
    await this.ordering.redis.set(this.ordering.keys.built(this.topic, partition), '1');
  }

  async rebuildProgress(partition: number, next: bigint, until: bigint): Promise<void> {
    await this.ordering.redis.set(this.ordering.keys.rebuild(this.topic, partition), JSON.stringify({ next: String(next), until: String(until) }));
  }

  async finishRebuild(partition: number, campaigns: Iterable<string>): Promise<void> {
    const pipe = this.ordering.redis.pipeline();
    for (const id of campaigns) pipe.hdel(this.ordering.keys.meta(id), 'building');
    pipe.set(this.ordering.keys.built(this.topic, partition), '1');
    pipe.del(this.ordering.keys.rebuild(this.topic, partition));
    await pipe.exec();
  }

  async terms(campaignIds: readonly string[]): Promise<Map<string, CampaignTerms>> {
    const metas = await Promise.all(campaignIds.map((id) => this.ordering.meta(id)));
    const out = new Map<string, CampaignTerms>();
    metas.forEach((m, i) => m && out.set(campaignIds[i]!, m.terms));
    return out;
  }

  async place(partition: number, work: LineWork): Promise<Placed[][] | 'REBUILD'> {
    const { ordering } = this;
    const pipe = ordering.redis.pipeline();
    for (const f of work.facts) ordering.applyTo(pipe, f.event, partition, f.replaying);
    for (const r of work.rejected) pipe.hdel(ordering.keys.pending(r.campaignId), r.userId);
    for (const line of work.lines) ordering.queuePlace(pipe, line.campaignId, line.entries);
    const results = (await pipe.exec()) ?? [];
    for (const [err] of results) if (err) throw err;
    const out: Placed[][] = [];
    for (const [, r] of results.slice(results.length - work.lines.length)) {
      const places = RedisOrdering.parsePlaces(r as (string | number)[]);
      if (places === 'REBUILD') return 'REBUILD';
      out.push(places);
    }
    return out;
  }

  async applyCommitted(partition: number, events: readonly CampaignEvent[]): Promise<boolean> {
    const pipe = this.ordering.redis.pipeline();
    for (const e of events) this.ordering.applyTo(pipe, e, partition, false);
    return pipe.exec().then(
      (results) => (results ?? []).every(([err]) => !err),
      (err) => (this.log.warn({ err }, 'applying committed decisions to Redis failed'), false),
    );
  }
}

/** Answers the API processes waiting for decisions: one message per process, on its own channel. */
export class RedisReplyChannel implements ReplyChannel {
  constructor(private readonly ordering: RedisOrdering) {}

  async tell(replies: readonly { instance: string; reply: Reply }[]): Promise<void> {
    if (replies.length === 0) return;
    const byInstance = new Map<string, Reply[]>();
    for (const { instance, reply } of replies) byInstance.set(instance, [...(byInstance.get(instance) ?? []), reply]);
    const pipe = this.ordering.redis.pipeline();
    for (const [instance, rs] of byInstance) pipe.publish(this.ordering.keys.reply(instance), JSON.stringify(rs));
    await pipe.exec();
  }
}
