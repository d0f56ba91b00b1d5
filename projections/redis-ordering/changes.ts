import type { ChangeFeed, ChangeNotice } from '../../src/writer/changeFeed.js';
import type { Logger } from '../../src/logger.js';
import type { Store } from './keys.js';
import { queuePublish } from './channels.js';
import { SlotPipelines } from './slots.js';

/** The channel on which a campaign's changes are announced (see `RedisChangeFeed`). */
export const changesChannelOf = (o: Store, campaignId: string): string => o.keys.changes(campaignId);

/** One publish per campaign and batch, on the campaign's own channel (tagged like its keys; sharded on a cluster). */
export class RedisChangeFeed implements ChangeFeed {
  constructor(
    private readonly o: Store,
    private readonly log: Logger,
  ) {}

  async announce(notices: readonly Omit<ChangeNotice, 'at'>[]): Promise<void> {
    if (notices.length === 0) return;
    const at = Date.now();
    const pipes = new SlotPipelines(this.o.redis);
    for (const n of notices) {
      const channel = changesChannelOf(this.o, n.campaignId);
      queuePublish(pipes.on(channel), this.o.redis, channel, JSON.stringify({ ...n, at }));
    }
    // a lost notice costs a subscriber a push, never a decision: the writer does not wait on failure
    const failed = (await pipes.exec()).find(([err]) => err);
    if (failed) this.log.warn({ err: failed[0] }, 'announcing changes failed');
  }
}
