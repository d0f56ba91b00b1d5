import type { ChainableCommander } from 'ioredis';
import { storedCodeOf, type CampaignEvent, type ChallengeSetting } from '../../src/domain/events.js';
import type { Keys } from './keys.js';
import type { GiftView } from './reads.js';

/** A winner's field in the campaign's `won` hash: position|wonAt. */
export const wonValue = (e: Extract<CampaignEvent, { type: 'WinnerSelected' }>): string => `${e.position}|${e.occurredAt}`;

/** A proof-of-work setting as the meta's fields (both always given: an empty value removes one, metaSet.lua). */
export const challengeFields = (c: ChallengeSetting): string[] => [
  'challengeMode',
  c.mode,
  'challengeDifficulty',
  c.difficulty === null ? '' : String(c.difficulty),
];

/** A winner's field in the campaign's `gifts` hash: its code as the event holds it (sealed from issue 29 on). */
export const giftValue = (e: Extract<CampaignEvent, { type: 'GifticonIssued' }>): string =>
  JSON.stringify({
    id: e.gifticonId,
    code: storedCodeOf(e),
    issuedAt: e.occurredAt,
    // a PROVIDER voucher's; left out otherwise, as in every value before issue 30
    ...('expiresAt' in e && e.expiresAt ? { expiresAt: e.expiresAt } : {}),
  } satisfies GiftView);

/**
 * Queues the facts of a committed event onto the projection (idempotent: each write sets the same
 * value again on a replay). EntrantRegistered is placed by place.lua, not here; its fact is the
 * campaign's first entry. `building` marks a campaign re-created while its partition is rebuilt.
 * `on(key)` is the pipeline of that key's slot (slots.ts): one command each. A fact written by a
 * script counts one step of the writer on the campaign (`seq`, lua/create.lua), checked against
 * `expectedSeq` first: true when one such script was queued (its answer is the campaign's seq, or -1
 * when behind), as the first command queued here.
 */
export function queueFact(
  on: (key: string) => ChainableCommander,
  k: Keys,
  event: CampaignEvent,
  partition: number,
  building: boolean,
  expectedSeq: string,
): boolean {
  const id = event.campaignId;
  switch (event.type) {
    case 'CampaignCreated': {
      const fields: Record<string, string> = {
        id,
        title: event.title,
        reward: event.reward,
        stock: String(event.stock),
        opensAt: String(Date.parse(event.opensAt)),
        closesAt: String(Date.parse(event.closesAt)),
        createdAt: event.occurredAt,
        partition: String(partition),
      };
      if (building) fields.building = '1';
      // left out for MINTED, as for every campaign before issue 29
      if (event.issuance && event.issuance !== 'MINTED') fields.issuance = event.issuance;
      if (event.product) fields.product = event.product;
      // left out while OFF: the meta of a campaign without a challenge stays as it was before issue 34
      if (event.challenge && event.challenge.mode !== 'OFF') {
        fields.challengeMode = event.challenge.mode;
        if (event.challenge.difficulty !== null) fields.challengeDifficulty = String(event.challenge.difficulty);
      }
      on(k.meta(id)).fcCreate(k.meta(id), expectedSeq, ...Object.entries(fields).flat());
      on(k.campaigns()).zadd(k.campaigns(), Date.parse(event.occurredAt), id);
      return true;
    }
    case 'EntrantRegistered':
      on(k.meta(id)).fcMetaFact(k.meta(id), expectedSeq, 'firstEntryAt', event.occurredAt);
      return true;
    case 'WinnerSelected':
      on(k.won(id)).hset(k.won(id), event.userId, wonValue(event));
      return false;
    case 'GifticonIssued':
      on(k.gifts(id)).hset(k.gifts(id), event.userId, giftValue(event));
      return false;
    case 'CampaignSoldOut':
      on(k.meta(id)).fcMetaFact(k.meta(id), expectedSeq, 'soldOutAt', event.occurredAt);
      return true;
    case 'CampaignClosed':
      on(k.meta(id)).fcMetaFact(k.meta(id), expectedSeq, 'closedAt', String(Date.parse(event.occurredAt)));
      return true;
    case 'CampaignChallengeSet':
      on(k.meta(id)).fcMetaSet(k.meta(id), expectedSeq, ...challengeFields(event));
      return true;
    case 'CodesLoaded': {
      const pairs: string[] = [];
      for (const c of event.codes) pairs.push(c.hash, c.sealed);
      on(k.meta(id)).fcLoadCodes(k.meta(id), k.codes(id), k.codeHashes(id), k.chunks(id), expectedSeq, event.chunkId, pairs);
      return true;
    }
    case 'IssuanceParked':
      // the last parking's time; a GifticonIssued of the winner outranks it when read (reads.ts), in whatever order they came
      on(k.parkedIssuances(id)).hset(k.parkedIssuances(id), event.userId, event.occurredAt);
      return false;
    case 'LineHeadSigned': // heads are served from the Postgres read model
    case 'IssuanceRequested': // the issuer's to act on; nothing of the ordering changes
      return false;
    default: {
      const _exhaustive: never = event;
      return _exhaustive;
    }
  }
}
