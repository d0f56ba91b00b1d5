import { describe, expect, it } from 'vitest';
import { PushQueue } from '../../src/api/live/pushQueue.js';
import { AnnouncingLines, AnnouncingReplies, noticesOfCommitted, type ChangeFeed } from '../../src/writer/changeFeed.js';
import type { CampaignLines } from '../../src/writer/ports.js';
import type { CampaignEvent } from '../../src/domain/events.js';

describe('a subscription source (PushQueue)', () => {
  it('ends a reader waiting for the next value at once when the socket goes, and frees its watch once', async () => {
    let ended = 0;
    const q = new PushQueue<number>(() => ended++);
    const waiting = q.next();
    await q.return();
    await q.return();
    expect(await waiting).toEqual({ value: undefined, done: true });
    expect(ended).toBe(1);
    q.push(1);
    expect(await q.next()).toEqual({ value: undefined, done: true });
  });

  it('keeps only the latest values for a slow reader, in order', async () => {
    const q = new PushQueue<number>(() => undefined, 2);
    [1, 2, 3].forEach((v) => q.push(v));
    expect([(await q.next()).value, (await q.next()).value]).toEqual([2, 3]);
  });

  it('delivers a failure after what was queued, then ends', async () => {
    let ended = 0;
    const q = new PushQueue<number>(() => ended++);
    q.push(1);
    q.fail(new Error('redis gone'));
    expect((await q.next()).value).toBe(1);
    await expect(q.next()).rejects.toThrow('redis gone');
    expect(ended).toBe(1);
  });
});

describe("the writer's change notices", () => {
  const base = { version: 1, occurredAt: new Date(0).toISOString() };
  it('name the users whose entries committed decisions changed, once per campaign', () => {
    const events = [
      { ...base, type: 'WinnerSelected', eventId: 'w1', campaignId: 'a', userId: 'u1', position: 1, ticket: '0-1' },
      { ...base, type: 'GifticonIssued', eventId: 'g1', campaignId: 'a', userId: 'u1', gifticonId: 'x', code: 'c', position: 1 },
      { ...base, type: 'CampaignSoldOut', eventId: 's', campaignId: 'b', winners: 1 },
    ] as unknown as CampaignEvent[];
    expect(noticesOfCommitted(events)).toEqual([
      { campaignId: 'a', users: ['u1'] },
      { campaignId: 'b', users: [] },
    ]);
  });

  it('announce every decision the reply channel tells, grouped by campaign', async () => {
    const told: unknown[] = [];
    const announced: unknown[] = [];
    const feed: ChangeFeed = { announce: async (n) => void announced.push(...n) };
    const replies = new AnnouncingReplies({ tell: async (r) => void told.push(...r) }, feed);
    const reply = (campaignId: string, userId: string) => ({
      instance: 'i',
      reply: { request: userId, campaignId, userId, kind: 'placed' as const, ticket: '0-1', position: 1, stock: 1 },
    });
    await replies.tell([reply('a', 'u1'), reply('a', 'u2'), reply('b', 'u3')]);
    expect(told).toHaveLength(3);
    expect(announced).toEqual([
      { campaignId: 'a', users: ['u1', 'u2'] },
      { campaignId: 'b', users: ['u3'] },
    ]);
  });

  it("announce a winner's gifticon the issuer issued or parked to that winner, and nothing a rebuild re-applies", async () => {
    const announced: unknown[] = [];
    const feed: ChangeFeed = { announce: async (n) => void announced.push(...n) };
    const inner = { place: async () => [] } as unknown as CampaignLines;
    const lines = new AnnouncingLines(inner, feed);
    const fact = (event: Record<string, unknown>, replaying = false) => ({
      event: { ...base, ...event } as unknown as CampaignEvent,
      replaying,
    });
    await lines.place(0, {
      lines: [],
      facts: [
        fact({ type: 'GifticonIssued', eventId: 'g1', campaignId: 'a', userId: 'u1', gifticonId: 'x', sealedCode: 's', position: 1 }),
        fact({ type: 'IssuanceParked', eventId: 'p2', campaignId: 'a', userId: 'u2', position: 2, parkedId: 'issuer:a:2' }),
        fact({ type: 'IssuanceParked', eventId: 'p3', campaignId: 'b', userId: 'u3', position: 1, parkedId: 'issuer:b:1' }, true),
        fact({ type: 'IssuanceRequested', eventId: 'r', campaignId: 'c', userId: 'u4', position: 1, winnerEventId: 'w', by: 'job:1' }),
      ],
    });
    expect(announced).toEqual([{ campaignId: 'a', users: ['u1', 'u2'] }]);
  });
});
