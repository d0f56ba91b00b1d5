import type { Admin, Kafka } from 'kafkajs';
import type { Config } from '../../config.js';
import { describeError } from '../../health.js';
import type { Logger } from '../../logger.js';
import { readLogIdentity } from './genesis.js';
import type { LogIdentity } from './logIdentity.js';
import { ensureTopics } from './topics.js';

/**
 * The brokers reached, the topics there and the log's identity read. A broker away at start keeps
 * the process up and not ready: each attempt's failure is told to `waiting` (for /readyz), and it
 * tries again (see `untilKafka`).
 */
export function reachKafka(config: Config, kafka: Kafka, admin: Admin, log: Logger, waiting: (why: string) => void): Promise<LogIdentity> {
  return untilKafka(config, log, waiting, async () => {
    await admin.connect();
    await ensureTopics(admin, config, kafka);
    return readLogIdentity(kafka, admin, config.topics.events);
  });
}

/** Asks the brokers every 2 s whether they answer, telling `down` why not, or null. The timer is returned to clear. */
export function watchKafka(admin: Admin, down: (why: string | null) => void): NodeJS.Timeout {
  return setInterval(() => {
    admin.describeCluster().then(
      () => down(null),
      (err: unknown) => down(describeError(err)),
    );
  }, 2000);
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
