import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { auditCampaign } from '../../src/domain/audit.js';
import { cryptoMinter, decide, evolve, initialState } from '../../src/domain/campaign.js';
import { EVENT_VERSION, SEALED_GIFTICON_VERSION, type CampaignEvent, type Issuance, type Logged } from '../../src/domain/events.js';
import { isSealed, newDataKey, openCode, sealCode, SealError, unwrapKey, wrapKey } from '../../src/domain/sealing.js';
import { parseKeyRing } from '../../src/infra/codeKeys/keyRing.js';
import { decodeValue, eventSchema, isGifticonIssued } from '../../src/infra/kafka/codec.js';
import { memoryCodes } from '../support/codes.js';

const T0 = Date.parse('2026-12-06T09:00:00Z');

describe('a code sealed under its campaign’s data key', () => {
  const dk = newDataKey('drop');

  it('opens to the code with that key, and names the key', () => {
    const sealed = sealCode(dk, 'BRAND-PIN-0001');
    expect(sealed).toMatch(new RegExp(`^fcs1\\.${dk.id}\\.[A-Za-z0-9_-]+$`));
    expect(sealed).not.toContain('BRAND-PIN-0001');
    expect(isSealed(sealed)).toBe(true);
    expect(isSealed('BRAND-PIN-0001')).toBe(false);
    expect(openCode(dk, sealed)).toBe('BRAND-PIN-0001');
    // a fresh IV each time: the same code seals differently
    expect(sealCode(dk, 'BRAND-PIN-0001')).not.toBe(sealed);
  });

  it('never repeats an IV, across the random pool refilled many times over', () => {
    const ivs = new Set<string>();
    for (let i = 0; i < 2_000; i++) {
      const sealed = sealCode(dk, `CODE-${i}`);
      ivs.add(Buffer.from(sealed.split('.')[2]!, 'base64url').subarray(0, 12).toString('hex'));
      expect(openCode(dk, sealed)).toBe(`CODE-${i}`);
    }
    expect(ivs.size).toBe(2_000);
  });

  it('does not open with another key, as another campaign’s, or altered', () => {
    const sealed = sealCode(dk, 'X');
    expect(() => openCode({ ...newDataKey('drop'), id: dk.id }, sealed)).toThrow(SealError);
    expect(() => openCode({ ...dk, campaignId: 'other' }, sealed)).toThrow(SealError);
    const [p, id, body] = sealed.split('.');
    const flipped = Buffer.from(body!, 'base64url');
    flipped[flipped.length - 1]! ^= 1;
    expect(() => openCode(dk, `${p}.${id}.${flipped.toString('base64url')}`)).toThrow(SealError);
    expect(() => openCode(newDataKey('drop'), sealed)).toThrow(/sealed under key/);
  });

  it('is wrapped by a key-encryption key, and unwraps only with it', () => {
    const kek = randomBytes(32);
    const wrapped = wrapKey(kek, dk);
    expect(unwrapKey(kek, wrapped, dk.id, 'drop').key.equals(dk.key)).toBe(true);
    expect(() => unwrapKey(randomBytes(32), wrapped, dk.id, 'drop')).toThrow(SealError);
    expect(() => unwrapKey(kek, wrapped, dk.id, 'another-campaign')).toThrow(SealError);
  });
});

describe('CODE_KEYS', () => {
  const k = () => randomBytes(32).toString('base64');
  it('takes kid:base64 keys, the first one wrapping', () => {
    const ring = parseKeyRing(`new:${k()}, old:${k()}`);
    expect(ring.current.id).toBe('new');
    expect([...ring.byId.keys()]).toEqual(['new', 'old']);
  });
  it.each([
    ['no kid', k(), /kid/],
    ['a short key', `a:${randomBytes(16).toString('base64')}`, /32 bytes/],
    ['a kid twice', `a:${k()},a:${k()}`, /twice/],
    ['nothing', ' , ', /expected/],
  ])('refuses %s, without printing a key', (_, value, why) => {
    let message = '';
    try {
      parseKeyRing(value);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(why);
    for (const part of value.split(/[,:]/)) if (part.trim().length > 20) expect(message).not.toContain(part.trim());
  });
});

describe('GifticonIssued version 2 in the log', () => {
  const base = {
    type: 'GifticonIssued',
    eventId: 'gifticon:drop:u',
    campaignId: 'drop',
    occurredAt: '2026-12-06T09:00:00.000Z',
    userId: 'u',
    gifticonId: 'g1',
    position: 1,
  };
  const sealed = sealCode(newDataKey('drop'), 'CODE');

  it('is read sealed, and version 1 with its plaintext code still is', () => {
    for (const e of [
      { ...base, version: SEALED_GIFTICON_VERSION, sealedCode: sealed },
      { ...base, version: EVENT_VERSION, code: 'OLD-PLAINTEXT' },
    ]) {
      expect(isGifticonIssued(e)).toBe(true);
      expect(eventSchema.safeParse(e).success).toBe(true);
      expect(decodeValue(Buffer.from(JSON.stringify(e)), 0, 1n).kind).toBe('event');
    }
  });

  it('is foreign with a plaintext code beside or instead of the sealed one', () => {
    for (const e of [
      { ...base, version: SEALED_GIFTICON_VERSION, sealedCode: sealed, code: 'CODE' },
      { ...base, version: SEALED_GIFTICON_VERSION, code: 'CODE' },
      { ...base, version: SEALED_GIFTICON_VERSION, sealedCode: 'CODE' },
      { ...base, version: EVENT_VERSION, sealedCode: sealed },
    ]) {
      expect(isGifticonIssued(e)).toBe(false);
      expect(eventSchema.safeParse(e).success).toBe(false);
      expect(decodeValue(Buffer.from(JSON.stringify(e)), 0, 1n).kind).toBe('foreign');
    }
  });
});

describe('the decider issues at the decision only for MINTED campaigns', () => {
  function drop(issuance: Issuance | undefined, stock: number, users: string[]) {
    const codes = memoryCodes();
    const log: Logged[] = [];
    let state = initialState();
    let offset = 0n;
    const push = (event: CampaignEvent) => {
      const l = { event, partition: 0, offset: offset++ };
      log.push(l);
      const out = decide(state, l, new Date(T0), cryptoMinter, codes.sealer);
      state = evolve(state, l);
      for (const e of out) push(e);
    };
    const at = new Date(T0).toISOString();
    push({
      type: 'CampaignCreated',
      version: EVENT_VERSION,
      eventId: 'created:c',
      campaignId: 'c',
      occurredAt: at,
      title: 't',
      reward: 'r',
      stock,
      opensAt: at,
      closesAt: new Date(T0 + 3_600_000).toISOString(),
      ...(issuance ? { issuance } : {}),
    });
    for (const u of users)
      push({ type: 'EntrantRegistered', version: EVENT_VERSION, eventId: `e:${u}`, campaignId: 'c', occurredAt: at, userId: u });
    return { log, codes };
  }
  const types = (log: Logged[]) => log.map((l) => l.event.type).filter((t) => t !== 'EntrantRegistered' && t !== 'CampaignCreated');

  it('MINTED (and a campaign from before, with no issuance): each winner’s code sealed, and only sealed', () => {
    for (const issuance of ['MINTED', undefined] as const) {
      const { log, codes } = drop(issuance, 2, ['a', 'b', 'c']);
      expect(types(log)).toEqual(['WinnerSelected', 'GifticonIssued', 'WinnerSelected', 'GifticonIssued', 'CampaignSoldOut']);
      const gifts = log.flatMap((l) => (l.event.type === 'GifticonIssued' ? [l.event] : []));
      for (const g of gifts) {
        expect(g.version).toBe(SEALED_GIFTICON_VERSION);
        expect('code' in g).toBe(false);
        expect(JSON.stringify(g)).not.toContain(codes.open(g)!);
      }
      expect(auditCampaign(log, codes.open).problems).toEqual([]);
    }
  });

  it.each(['INVENTORY', 'PROVIDER'] as const)('%s: winners are selected and no gifticon is issued (they wait PENDING)', (issuance) => {
    const { log, codes } = drop(issuance, 2, ['a', 'b', 'c']);
    expect(types(log)).toEqual(['WinnerSelected', 'WinnerSelected', 'CampaignSoldOut']);
    expect(codes.keys.size).toBe(0);
    const a = auditCampaign(log, codes.open);
    expect(a.problems).toEqual([]);
    expect(a).toMatchObject({ winners: 2, gifticons: 0 });
  });

  it('the audit finds a plaintext code in a version 2 event (I6), and a MINTED winner with none (I2)', () => {
    const { log, codes } = drop('MINTED', 1, ['a']);
    const leaked = log.map((l) => (l.event.type === 'GifticonIssued' ? { ...l, event: { ...l.event, code: codes.open(l.event)! } } : l));
    expect(auditCampaign(leaked, codes.open).problems.join('\n')).toMatch(/I6: a's gifticon is written in plaintext/);
    const none = log.filter((l) => l.event.type !== 'GifticonIssued');
    expect(auditCampaign(none, codes.open).problems.join('\n')).toMatch(/I2: 0 gifticons for 1 winners/);
  });
});
