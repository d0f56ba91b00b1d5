import type { ChangeFeed, ChangeNotice } from '../../src/writer/changeFeed.js';
import type { Logger } from '../../src/logger.js';
import type { Store } from './keys.js';

/** The channel on which a campaign's changes are announced (see `RedisChangeFeed`). */
export const changesChannelOf = (o: Store, campaignId: string): string => o.keys.changes(campaignId);

/** One PUBLISH per campaign and batch, on the campaign's own channel (tagged like its keys). */
export class RedisChangeFeed implements ChangeFeed {
  constructor(
    private readonly o: Store,
    private readonly log: Logger,
  ) {}

  async announce(notices: readonly Omit<ChangeNotice, 'at'>[]): Promise<void> {
    if (notices.length === 0) return;
    const at = Date.now();
    const pipe = this.o.redis.pipeline();
    for (const n of notices) pipe.publish(changesChannelOf(this.o, n.campaignId), JSON.stringify({ ...n, at }));
    // a lost notice costs a subscriber a push, never a decision: the writer does not wait on failure
    await pipe.exec().catch((err) => this.log.warn({ err }, 'announcing changes failed'));
  }
}

