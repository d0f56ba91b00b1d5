import { describe, expect, it } from 'vitest';
import { EVENT_VERSION, type Logged } from '../../src/domain/events.js';
import { ARCHIVE_NAMESPACE, fromRecorded, streamOf, toEventData, uuidV5 } from '../../src/infra/eventstore/eventStore.js';

const DNS = '6ba7b810-9dad-11d1-80b4-00c04fd430c8';
const URL_NS = '6ba7b811-9dad-11d1-80b4-00c04fd430c8';

const logged = (eventId: string, offset = 7n): Logged => ({
  event: {
    type: 'GifticonIssued',
    version: EVENT_VERSION,
    eventId,
    campaignId: 'c1',
    occurredAt: '2026-11-25T09:00:00.000Z',
    userId: 'alice',
    gifticonId: 'g_1',
    code: 'ABCD-EFGH',
    position: 1,
  },
  partition: 3,
  offset,
});

describe('EventStoreDB mapping', () => {
  it('uuidV5 is RFC 4122 version 5 (known vectors)', () => {
    expect(uuidV5('python.org', DNS)).toBe('886313e1-3b8a-5372-9b90-0c9aee199e5d');
    expect(uuidV5('https://example.com/', URL_NS)).toBe('dd2c1780-811a-5296-81c5-178a0ef488bc');
  });

  it('an event id is a function of the eventId alone: a re-delivery carries the same id', () => {
    const a = toEventData(logged('gifticon:c1:alice', 7n));
    const again = toEventData(logged('gifticon:c1:alice', 7n));
    const other = toEventData(logged('gifticon:c1:bob', 8n));
    expect(a.id).toBe(again.id);
    expect(a.id).not.toBe(other.id);
    expect(a.id).toBe(uuidV5('gifticon:c1:alice', ARCHIVE_NAMESPACE));
    expect(a.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('maps an event to a JSON event of its type, with its place in the log, and back', () => {
    const l = logged('gifticon:c1:alice', 9_007_199_254_740_993n);
    const data = toEventData(l);
    expect(data).toMatchObject({ type: 'GifticonIssued', contentType: 'application/json', data: l.event });
    expect(data.metadata).toEqual({ partition: 3, offset: '9007199254740993', eventId: 'gifticon:c1:alice' });
    expect(fromRecorded({ type: data.type, data: data.data, metadata: data.metadata })).toEqual(l);
    expect(streamOf('c1')).toBe('campaign-c1');
  });

  it("records the log it was archived from, and a new log's event is never taken for an old one's repeat", () => {
    const a = { tag: '["cluster-a","t.events",2,"log-a"]', logId: 'log-a' };
    const b = { tag: '["cluster-b","t.events",2,"log-b"]', logId: 'log-b' };
    const onA = toEventData(logged('gifticon:c1:alice'), a);
    expect(onA.metadata).toMatchObject({ log: a.tag });
    expect(toEventData(logged('gifticon:c1:alice'), a).id).toBe(onA.id);
    expect(toEventData(logged('gifticon:c1:alice'), b).id).not.toBe(onA.id);
    // a topic from before genesis records keeps the ids it always had: an upgrade re-archives nothing
    expect(toEventData(logged('gifticon:c1:alice'), { tag: a.tag, logId: null }).id).toBe(toEventData(logged('gifticon:c1:alice')).id);
    expect(fromRecorded({ type: onA.type, data: onA.data, metadata: onA.metadata })).toEqual(logged('gifticon:c1:alice'));
  });

  it('ignores what the archive did not write', () => {
    const data = toEventData(logged('x'));
    expect(fromRecorded({ type: 'Other', data: data.data, metadata: data.metadata })).toBeNull();
    expect(fromRecorded({ type: data.type, data: { hello: 1 }, metadata: data.metadata })).toBeNull();
    expect(fromRecorded({ type: data.type, data: data.data, metadata: { partition: 1 } })).toBeNull();
  });
});
