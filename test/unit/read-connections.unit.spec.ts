import { describe, expect, it } from 'vitest';
import { GraphQLError } from 'graphql';
import { connectionOf, decodeCursor, encodeCursor, pageSize } from '../../src/api/fields/connections.js';

function badField(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GraphQLError);
    expect((err as GraphQLError).extensions.code).toBe('BAD_USER_INPUT');
    return (err as GraphQLError).extensions.field as string;
  }
  return undefined;
}

describe('admin connections: first, cursors, pages', () => {
  it('first is 1..1000; absent or null takes the default', () => {
    expect(pageSize(undefined, 20)).toBe(20);
    expect(pageSize(null, 100)).toBe(100);
    expect(pageSize(1, 20)).toBe(1);
    expect(pageSize(1000, 20)).toBe(1000);
    for (const bad of [0, -1, 1001, 2.5]) expect(badField(() => pageSize(bad, 20))).toBe('first');
  });

  it('a cursor round-trips, is opaque base64url, and belongs to one list and one campaign', () => {
    const w = encodeCursor({ list: 'winners', campaignId: 'c1', position: 37 });
    expect(w).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor('winners', w, 'c1')).toEqual({ list: 'winners', campaignId: 'c1', position: 37 });
    const g = encodeCursor({ list: 'gifticons', campaignId: 'c1', logOffset: 9_007_199_254_740_993n });
    expect(decodeCursor('gifticons', g, 'c1')!.logOffset).toBe(9_007_199_254_740_993n);
    const c = encodeCursor({ list: 'campaigns', createdAt: 1_700_000_000_123, id: 'c-9' });
    expect(decodeCursor('campaigns', c)).toEqual({ list: 'campaigns', createdAt: 1_700_000_000_123, id: 'c-9' });
    expect(decodeCursor('winners', null, 'c1')).toBeNull();

    expect(badField(() => decodeCursor('winners', w, 'c2'))).toBe('after'); // another campaign's cursor
    expect(badField(() => decodeCursor('gifticons', w, 'c1'))).toBe('after'); // another list's cursor
    for (const bad of ['', 'not a cursor!', 'e30', Buffer.from('["w","c1",-1]').toString('base64url'), 'x'.repeat(500)]) {
      expect(badField(() => decodeCursor('winners', bad, 'c1'))).toBe('after');
    }
  });

  it('a page of first + 1 rows says there is a next page and ends at its last edge', () => {
    const rows = [1, 2, 3, 4];
    const conn = connectionOf(
      rows,
      3,
      10,
      (p) => ({ list: 'winners', campaignId: 'c', position: p }),
      (p) => ({ p }),
    );
    expect(conn.edges.map((e) => e.node.p)).toEqual([1, 2, 3]);
    expect(conn.pageInfo).toEqual({ hasNextPage: true, endCursor: conn.edges[2]!.cursor });
    expect(conn.totalCount).toBe(10);
    const last = connectionOf(
      [4],
      3,
      10,
      (p) => ({ list: 'winners', campaignId: 'c', position: p }),
      (p) => p,
    );
    expect(last.pageInfo.hasNextPage).toBe(false);
    expect(
      connectionOf(
        [],
        3,
        0,
        () => ({ list: 'campaigns', createdAt: 0, id: 'x' }),
        (p) => p,
      ).pageInfo,
    ).toEqual({ hasNextPage: false, endCursor: null });
  });
});
