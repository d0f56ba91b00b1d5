import type { CampaignEvent, Issuance, Logged } from '../domain/events.js';

/** A winner whose voucher the issuer is to call for: from its WinnerSelected, or a request to drive it again. */
export interface Want {
  campaignId: string;
  userId: string;
  position: number;
  /** the WinnerSelected's id: the idempotency key is made from it, the same for every request about the winner */
  winnerEventId: string;
  /** the offset of the record that asked for it (set by `chunks`) */
  offset?: string;
}

/** What the issuer needs of a campaign: how its winners get codes, and the provider's product. */
export interface IssuerTerms {
  issuance: Issuance;
  product: string | null;
}

/**
 * One partition as the issuer sees it: each campaign's terms, and the winners that already hold a
 * gifticon or whose issuance is parked. Folded from the log (from offset 0 on every assignment, then
 * batch by batch), so no winner is issued twice by this issuer or by the one before it.
 */
export class IssuerLedger {
  private readonly terms = new Map<string, IssuerTerms>();
  /** `<campaignId>\n<userId>` of winners with a GifticonIssued */
  private readonly issued = new Set<string>();
  /** the same, for winners whose issuance this partition's issuer parked (kept in memory until the next assignment) */
  private readonly parked = new Set<string>();

  apply(e: CampaignEvent): void {
    switch (e.type) {
      case 'CampaignCreated':
        if (!this.terms.has(e.campaignId)) this.terms.set(e.campaignId, { issuance: e.issuance ?? 'MINTED', product: e.product ?? null });
        return;
      case 'GifticonIssued':
        this.issued.add(winnerKey(e.campaignId, e.userId));
        return;
      default:
        return;
    }
  }

  /**
   * The winner this event asks the issuer to call the provider for, if any: a WinnerSelected of a
   * PROVIDER campaign not issued nor parked; an IssuanceRequested of a winner not issued (parked or not).
   */
  wants(e: CampaignEvent): Want | null {
    if (e.type !== 'WinnerSelected' && e.type !== 'IssuanceRequested') return null;
    if (this.terms.get(e.campaignId)?.issuance !== 'PROVIDER') return null;
    const k = winnerKey(e.campaignId, e.userId);
    if (this.issued.has(k)) return null;
    if (e.type === 'WinnerSelected')
      return this.parked.has(k) ? null : { campaignId: e.campaignId, userId: e.userId, position: e.position, winnerEventId: e.eventId };
    return { campaignId: e.campaignId, userId: e.userId, position: e.position, winnerEventId: e.winnerEventId };
  }

  termsOf(campaignId: string): IssuerTerms | undefined {
    return this.terms.get(campaignId);
  }

  markIssued(campaignId: string, userId: string): void {
    this.issued.add(winnerKey(campaignId, userId));
  }

  markParked(campaignId: string, userId: string): void {
    this.parked.add(winnerKey(campaignId, userId));
  }

  /**
   * A batch cut into chunks of at most `max` winners to issue, each ending at a record boundary (a
   * packed record's events share its offset): a chunk's GifticonIssued events and the offset after its
   * last record are committed together. The ledger is folded as it goes.
   */
  chunks(logged: readonly Logged[], max: number): { winners: Want[]; lastOffset: bigint }[] {
    const out: { winners: Want[]; lastOffset: bigint }[] = [];
    let winners: Want[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < logged.length; i++) {
      const { event: e, offset } = logged[i]!;
      const want = this.wants(e);
      if (want && !seen.has(winnerKey(want.campaignId, want.userId))) {
        seen.add(winnerKey(want.campaignId, want.userId));
        winners.push({ ...want, offset: String(offset) });
      }
      this.apply(e);
      const boundary = i + 1 === logged.length || logged[i + 1]!.offset !== offset;
      if (boundary && winners.length >= max) {
        out.push({ winners, lastOffset: offset });
        winners = [];
      }
    }
    const last = logged[logged.length - 1]?.offset;
    if (last !== undefined && out[out.length - 1]?.lastOffset !== last) out.push({ winners, lastOffset: last });
    return out;
  }
}

const winnerKey = (campaignId: string, userId: string) => `${campaignId}\n${userId}`;
