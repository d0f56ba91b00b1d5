import type { ReplyChannel } from '../../src/writer/ports.js';
import type { Reply } from '../../src/writer/replies.js';
import type { RedisOrdering } from './reads.js';
import { queuePublish } from './channels.js';
import { SlotPipelines } from './slots.js';

/** The pub/sub channel on which one API process hears the decisions it waits for. */
export const replyChannelOf = (o: RedisOrdering, instance: string): string => o.keys.reply(instance);

/** Answers the API processes waiting for decisions: one message per process, on its own channel. */
export class RedisReplyChannel implements ReplyChannel {
  constructor(private readonly o: RedisOrdering) {}

  async tell(replies: readonly { instance: string; reply: Reply }[]): Promise<void> {
    if (replies.length === 0) return;
    const byInstance = new Map<string, Reply[]>();
    // pushed, not copied: a batch's replies to one process were an array copy each, n² in the batch
    for (const { instance, reply } of replies) {
      const rs = byInstance.get(instance);
      if (rs) rs.push(reply);
      else byInstance.set(instance, [reply]);
    }
    const pipes = new SlotPipelines(this.o.redis);
    for (const [instance, rs] of byInstance) {
      const channel = replyChannelOf(this.o, instance);
      queuePublish(pipes.on(channel), this.o.redis, channel, JSON.stringify(rs));
    }
    for (const [err] of await pipes.exec()) if (err) throw err;
  }
}
