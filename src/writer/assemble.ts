import type { Kafka } from 'kafkajs';
import type { Config } from '../config.js';
import type { Parking } from '../infra/kafka/parking.js';
import type { PrismaClient } from '../infra/prisma/client.js';
import { writerPorts, type RedisOrdering } from '../../projections/redis-ordering/index.js';
import { ReadModelRebuildBound } from './rebuildBound.js';
import { SingleWriter } from './singleWriter.js';

export interface AssembledWriter {
  writer: SingleWriter;
  /** the writer stopped, then what it holds open (its rebuild bound's consumer) */
  stop(): Promise<void>;
}

/**
 * The single writer, built from a thread's clients: on the Redis ordering projection's ports, with
 * a rebuild bound read from the Postgres read model. One build for both places it runs: the
 * process's main thread (./role.ts) and its own thread (./thread.ts).
 */
export function assembleWriter(deps: {
  kafka: Kafka;
  ordering: RedisOrdering;
  prisma: PrismaClient;
  config: Config;
  parking: Parking;
}): AssembledWriter {
  const { kafka, ordering, prisma, config, parking } = deps;
  const bound = new ReadModelRebuildBound(prisma, kafka, config);
  const writer = new SingleWriter(kafka, writerPorts(ordering, config.topics.events), config, parking, undefined, bound);
  return { writer, stop: () => writer.stop().finally(() => bound.close()) };
}
