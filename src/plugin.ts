import type { Server } from 'node:http';
import type { Kafka } from 'kafkajs';
import type { Config } from './config.js';
import type { Health } from './health.js';
import type { LogIdentity } from './infra/kafka/logIdentity.js';
import type { Parking } from './infra/kafka/parking.js';
import type { Processor } from './read-side/processor.js';
import type { PrismaClient } from './infra/prisma/client.js';
import type { RedisClient, RedisOrdering } from '../projections/redis-ordering/index.js';
import type { Metrics, ReadSideMetrics } from './metrics.js';

/**
 * What the composition root (src/app.ts) hands to the roles and API fields that live outside src/
 * (projections/, batch/): they depend on these types, never on the root itself.
 */

export interface RoleHandle {
  /** true once the role's consumers are assigned (or it needs none), and none of them is stopped */
  ready(): boolean;
  stop(): Promise<void>;
  /**
   * what works at a reduced pace without making the process unready (the issuer behind an open
   * breaker): part → why, shown by /readyz under `degraded`
   */
  degraded?(): Record<string, string>;
  /** records parked by a producer of its own (a role on its own thread), per consumer, for `firstcome_parked_total` */
  parked?(): Iterable<[string, number]>;
}

/** What every role may use: one Kafka client, one Redis, one Prisma, one metrics registry, one health registry. */
export interface Shared {
  config: Config;
  kafka: Kafka;
  redis: RedisClient;
  ordering: RedisOrdering;
  prisma: PrismaClient;
  metrics: Metrics;
  /** the dead-letter topic: every consumer of this process parks what it cannot use there */
  parking: Parking;
  /** components report failing / ok here; /readyz reads it */
  health: Health;
  /** the read side's one consumer (in this thread or its own): its processors come from the roles' read-side parts */
  readSide: ReadSideStatus;
  instance: string;
  /** the log this process follows (src/infra/kafka/logIdentity.ts): each store records it with its first write */
  logIdentity: LogIdentity;
}

/** Roles that live outside src/ plug in here (projections/, batch/). */
export type RoleFactory = (shared: Shared) => Promise<RoleHandle>;

/** What the composition root hands the roles of src/ (api, writer) beyond `Shared`. */
export interface RoleContext extends Shared {
  /** the roles this process runs: where it serves the API, the writer gets a thread of its own */
  roles: readonly string[];
  /** the process's HTTP server, listening from the start (probes, metrics); GraphQL subscriptions attach to it */
  server: Server;
  /** the GraphQL fields over the roles' stores (the registry's `apiFields`, src/roles.ts), served by the api role */
  apiFields: readonly (() => Promise<ApiPluginFactory>)[];
}

export interface ReadSideStatus {
  /** the consumer host has joined its group and no partition of it is stopped */
  ready(): boolean;
}

/**
 * What a role's read-side part is built from: the clients of the thread its consumer host runs in
 * (the process's main thread, or the read side's own thread where the API runs too, src/read-side).
 */
export interface ReadSideShared {
  config: Config;
  kafka: Kafka;
  prisma: PrismaClient;
  metrics: ReadSideMetrics;
  parking: Parking;
  health: Pick<Health, 'reporter'>;
  instance: string;
  /** the log this process follows: each processor's store records it with its first write */
  logIdentity: LogIdentity;
}

/** A role's processors of the consumer host, and what they hold open. */
export interface ReadSidePart {
  processors: Processor[];
  /** after the host has stopped: nothing is offered to the processors any more */
  stop(): Promise<void>;
}
export type ReadSideFactory = (shared: ReadSideShared) => Promise<ReadSidePart>;

/**
 * GraphQL fields served by the API role but answered from elsewhere (the Postgres read model, the
 * job queue). They work in an API process that runs no other role.
 */
export interface ApiPlugin {
  resolvers: Record<string, Record<string, unknown>>;
  stop(): Promise<void>;
}
export type ApiPluginFactory = (shared: Shared) => Promise<ApiPlugin>;
