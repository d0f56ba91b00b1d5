import { Kafka, logLevel } from 'kafkajs';
import type { Config } from '../../config.js';
import { logger } from '../../logger.js';
import { RepeatFilter } from '../../retrying.js';
import { clientLogLevel } from './clientLog.js';
import './compression.js';

// every message names its partition (partitionFor), so KafkaJS's partitioner never runs
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

const kafkaErrors = new RepeatFilter();

/**
 * The one KafkaJS client of a process, its log lines leveled by `clientLogLevel` and routed to ours;
 * its consumers read batches of every codec this process can load (registered by `compression.ts`).
 */
export function createKafka(config: Pick<Config, 'KAFKA_BROKERS'>, clientId = 'firstcome'): Kafka {
  const log = logger.child({ component: 'kafkajs' });
  return new Kafka({
    clientId,
    brokers: config.KAFKA_BROKERS,
    connectionTimeout: 3000,
    requestTimeout: 30000,
    retry: { initialRetryTime: 100, retries: 8 },
    logLevel: process.env.KAFKAJS_DEBUG ? logLevel.DEBUG : logLevel.WARN,
    logCreator:
      () =>
      ({ level, log: entry }) => {
        const { message, ...rest } = entry;
        const chosen = clientLogLevel(level, message, rest.error);
        if (chosen !== 'error') log[chosen](rest, message);
        else {
          // a consumer crash-looping on the same cause says so once a minute, with a count
          const pass = kafkaErrors.admit(`${String(rest.groupId ?? '')} ${message.replace(/\d+/g, '#')}`);
          if (pass?.held) log.error({ ...rest, repeated: pass.held + 1 }, `${message} (${pass.held + 1} times in the last minute)`);
          else if (pass) log.error(rest, message);
        }
      },
  });
}
