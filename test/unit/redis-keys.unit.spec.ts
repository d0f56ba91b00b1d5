import { describe, expect, it } from 'vitest';
import { Keys } from '../../projections/redis-ordering/keys.js';

/** Redis's own glob, as far as the layout's patterns use it: `*` is any run of characters, `{` and `}` are literal. */
const matches = (pattern: string, key: string) =>
  new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`).test(key);

describe('the key layout, for tests and benches that look at Redis', () => {
  const k = new Keys('fc');
  const other = new Keys('fc-replay');

  it('`all` matches every key of its prefix and none of another prefix', () => {
    for (const key of [k.meta('c1'), k.built('events', 3), k.reply('i1'), k.campaigns(), k.socketsOf('u')])
      expect(matches(k.all(), key), key).toBe(true);
    for (const key of [other.meta('c1'), other.built('events', 3)]) expect(matches(k.all(), key), key).toBe(false);
  });

  it('`anyPartition` matches the partition keys, not the campaign keys', () => {
    for (const key of [k.built('events', 3), k.rebuild('events', 3), k.replayMarker('events', 3, 'j')])
      expect(matches(k.anyPartition(), key), key).toBe(true);
    for (const key of [k.meta('c1'), k.line('c1'), k.campaigns()]) expect(matches(k.anyPartition(), key), key).toBe(false);
  });

  it('`partitionOf` names the partition of any of its keys, and of nothing else', () => {
    expect(k.partitionOf(k.rebuild('fc.campaign-events', 3))).toEqual({ topic: 'fc.campaign-events', partition: 3 });
    expect(k.partitionOf(k.replayMarker('a:b', 12, 'job-1'))).toEqual({ topic: 'a:b', partition: 12 });
    expect(k.partitionOf(k.meta('c1'))).toBeNull();
    expect(k.partitionOf(other.built('events', 3))).toBeNull();
  });
});
