import {
  compareIdentity,
  identityKey,
  parseIdentityKey,
  type IdentityVerdict,
  type LogIdentity,
} from '../../src/infra/kafka/logIdentity.js';
import type { PartitionRef, Store } from './keys.js';
import { scanKeys } from './slots.js';

/**
 * The log the projection was built from, on each partition's sentinel (`{p:…}:built`): its value is
 * the identity (`identityKey`) and the build's token, set in the one command that marks the
 * partition built. A sentinel with a token alone is from before identities: it is adopted.
 *
 * Every sentinel of the prefix is read, whatever its topic: campaign keys are not scoped by topic,
 * so a REDIS_PREFIX that holds another log's projection (another cluster, a recreated topic, or
 * another deployment's topic) is refused as a whole, never answered from.
 */

export function sentinelValue(o: Pick<Store, 'logTag'>, token: string): string {
  return o.logTag ? `${o.logTag} ${token}` : token;
}

/** The identity a sentinel's value names; null for a token alone. */
function identityOf(value: string): LogIdentity | null {
  const cut = value.lastIndexOf(' ');
  return cut < 0 ? null : parseIdentityKey(value.slice(0, cut));
}

export interface Sentinel extends PartitionRef {
  key: string;
  value: string;
  identity: LogIdentity | null;
}

export async function sentinels(o: Store): Promise<Sentinel[]> {
  const found: Sentinel[] = [];
  for await (const keys of scanKeys(o.redis, o.keys.anyBuilt())) {
    for (const key of keys) {
      const where = o.keys.builtOf(key);
      const value = where ? await o.redis.get(key) : null;
      if (where && value !== null) found.push({ ...where, key, value, identity: identityOf(value) });
    }
  }
  return found;
}

/**
 * What Redis says of the log this process found: `other` when any sentinel names another log (or,
 * from before identities, another topic), `adopt` when a sentinel of this topic has none yet, or
 * none is set (a new or flushed Redis: the writer rebuilds it), else `same`.
 */
export function redisVerdict(found: readonly Sentinel[], current: LogIdentity): IdentityVerdict {
  let adopt = found.length === 0;
  for (const s of found) {
    const recorded =
      s.identity ??
      (s.topic === current.topic ? null : { clusterId: 'unknown', topic: s.topic, partitions: current.partitions, logId: null });
    const v = compareIdentity(recorded, current);
    if (v.kind === 'other') return v;
    if (v.kind === 'adopt') adopt = true;
  }
  return adopt ? { kind: 'adopt' } : { kind: 'same' };
}

/** Writes this log's identity on the sentinels of its topic that have none (from before identities); the token stays. */
export async function adoptSentinels(o: Store, found: readonly Sentinel[], current: LogIdentity): Promise<number> {
  let adopted = 0;
  for (const s of found) {
    if (s.identity !== null || s.topic !== current.topic) continue;
    // XX: a flush meanwhile is not undone
    if ((await o.redis.set(s.key, `${identityKey(current)} ${s.value}`, 'XX')) === 'OK') adopted++;
  }
  return adopted;
}

/** Every key of the prefix goes: the writers rebuild the projection from the log they follow (`npm run adopt-log`). */
export async function wipeProjection(o: Store): Promise<number> {
  let n = 0;
  for await (const keys of scanKeys(o.redis, `${o.keys.prefix}:*`)) {
    for (const k of keys) n += await o.redis.unlink(k);
  }
  return n;
}
