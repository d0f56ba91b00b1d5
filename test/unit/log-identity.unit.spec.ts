import { describe, expect, it } from 'vitest';
import { compareIdentity, identityKey, mismatchOf, parseIdentityKey, type LogIdentity } from '../../src/infra/kafka/logIdentity.js';

const log: LogIdentity = { clusterId: 'single-broker-id', topic: 'firstcome.events', partitions: 6, logId: 'log-a' };

describe('a store compares the log identity it recorded with the log it finds', () => {
  it('goes on when it was built from the same log', () => {
    expect(compareIdentity({ ...log }, log)).toEqual({ kind: 'same' });
  });

  it('refuses another cluster under the same topic name (a move to a new cluster)', () => {
    const v = compareIdentity(log, { ...log, clusterId: 'three-broker-id' });
    expect(v.kind).toBe('other');
    expect(v.kind === 'other' && v.differences).toEqual(['another Kafka cluster (single-broker-id → three-broker-id)']);
  });

  it('refuses a topic deleted and created again under the same name (a new genesis id)', () => {
    const v = compareIdentity(log, { ...log, logId: 'log-b' });
    expect(v.kind === 'other' && v.differences[0]).toMatch(/created again \(log log-a → log-b\)/);
    // a topic from before genesis records, recreated by this build, is a new log too
    expect(compareIdentity({ ...log, logId: null }, log).kind).toBe('other');
  });

  it('refuses another partition count, and another topic (a second deployment on the same database)', () => {
    expect(compareIdentity(log, { ...log, partitions: 2 })).toMatchObject({
      kind: 'other',
      differences: ['another partition count (6 → 2)'],
    });
    expect(compareIdentity(log, { ...log, topic: 'other.events', logId: 'log-c' })).toMatchObject({
      kind: 'other',
      differences: ['another topic (firstcome.events → other.events)'],
    });
  });

  it('adopts the log when the store has recorded no identity yet (a new store, or one from before identities)', () => {
    expect(compareIdentity(null, log)).toEqual({ kind: 'adopt' });
  });

  it('names both logs and the command that adopts the new one', () => {
    const v = compareIdentity(log, { ...log, clusterId: 'three-broker-id' });
    if (v.kind !== 'other') throw new Error('expected a mismatch');
    const m = mismatchOf('postgres read model', v).message;
    expect(m).toContain('cluster single-broker-id topic firstcome.events');
    expect(m).toContain('cluster three-broker-id topic firstcome.events');
    // first: /readyz shows one short line per component
    expect(m).toMatch(/^run `npm run adopt-log`: postgres read model was built from another log \(another Kafka cluster/);
  });

  it('round-trips through the string kept in Redis and job records', () => {
    expect(parseIdentityKey(identityKey(log))).toEqual(log);
    expect(parseIdentityKey(identityKey({ ...log, logId: null }))).toEqual({ ...log, logId: null });
    expect(parseIdentityKey('3f2c-uuid-token')).toBeNull();
  });
});
