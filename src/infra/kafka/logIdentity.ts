/**
 * Which log a store follows. Offsets mean something only within one log: a topic of the same name
 * on another cluster, or deleted and created again, starts at 0 again, below every checkpoint a
 * store kept of the old one. So each store records the identity it was built from, and a process
 * compares it with the log it finds before it reads or writes the store.
 *
 * The identity is the cluster's id (KafkaJS's describeCluster), the topic's name, its partition
 * count, and the log's own id: KafkaJS 2.2.4 speaks Metadata up to v6, which has no topic ids, so
 * firstcome writes a genesis record with an id of its own at offset 0 of every partition when it
 * creates the topic (genesis.ts). A topic created before that has no such record: its `logId` is
 * null, and it is told apart from a recreated one by its cluster, its partitions, and checkpoints
 * beyond its end.
 */
export interface LogIdentity {
  clusterId: string;
  topic: string;
  partitions: number;
  /** the genesis record's id; null for a topic created without one */
  logId: string | null;
}

/** What a store's recorded identity says about the log this process found. */
export type IdentityVerdict =
  /** the store was built from this log */
  | { kind: 'same' }
  /** the store has recorded none yet (a new store, or one from before identities): it takes this one with its first write */
  | { kind: 'adopt' }
  /** the store was built from another log: never read or written as if it were this one */
  | { kind: 'other'; recorded: LogIdentity; current: LogIdentity; differences: string[] };

export function compareIdentity(recorded: LogIdentity | null, current: LogIdentity): IdentityVerdict {
  if (recorded === null) return { kind: 'adopt' };
  const differences: string[] = [];
  if (recorded.clusterId !== current.clusterId) differences.push(`another Kafka cluster (${recorded.clusterId} → ${current.clusterId})`);
  if (recorded.topic !== current.topic) differences.push(`another topic (${recorded.topic} → ${current.topic})`);
  if (recorded.partitions !== current.partitions)
    differences.push(`another partition count (${recorded.partitions} → ${current.partitions})`);
  if (differences.length === 0 && recorded.logId !== current.logId) {
    differences.push(`the topic was created again (log ${recorded.logId ?? 'without genesis'} → ${current.logId ?? 'without genesis'})`);
  }
  return differences.length === 0 ? { kind: 'same' } : { kind: 'other', recorded, current, differences };
}

/** One line naming a log, as /readyz and the logs show it. */
export function describeIdentity(id: LogIdentity): string {
  return `cluster ${id.clusterId} topic ${id.topic} (${id.partitions} partitions, log ${id.logId ?? 'without genesis'})`;
}

/** The identity as one string (Redis sentinels, job records, archive metadata). */
export function identityKey(id: LogIdentity): string {
  return JSON.stringify([id.clusterId, id.topic, id.partitions, id.logId]);
}

/** The inverse of `identityKey`; null for anything else. */
export function parseIdentityKey(key: string): LogIdentity | null {
  try {
    const v = JSON.parse(key) as unknown;
    if (!Array.isArray(v) || v.length !== 4) return null;
    const [clusterId, topic, partitions, logId] = v as unknown[];
    if (
      typeof clusterId !== 'string' ||
      typeof topic !== 'string' ||
      !Number.isInteger(partitions) ||
      (logId !== null && typeof logId !== 'string')
    )
      return null;
    return { clusterId, topic, partitions: partitions as number, logId: logId as string | null };
  } catch {
    return null;
  }
}

export const ADOPT_COMMAND = 'npm run adopt-log';

/** A store built from another log; the message names both and the one command that adopts this one. */
export class LogMismatchError extends Error {
  constructor(
    readonly store: string,
    readonly recorded: LogIdentity | null,
    readonly current: LogIdentity,
    reason: string,
  ) {
    // the command first: /readyz keeps one short line per component
    super(
      `run \`${ADOPT_COMMAND}\`: ${store} was built from another log (${reason}); it holds ` +
        `${recorded ? describeIdentity(recorded) : 'an unknown log'}, this process found ${describeIdentity(current)}; ` +
        'nothing is read or written until it rebuilds the store from this log (`--keep-old` archives what the old log alone knew)',
    );
    this.name = 'LogMismatchError';
  }
}

/** The error a verdict of `other` stands for. */
export function mismatchOf(store: string, verdict: Extract<IdentityVerdict, { kind: 'other' }>): LogMismatchError {
  return new LogMismatchError(store, verdict.recorded, verdict.current, verdict.differences.join(', '));
}
