import type { Caller } from './auth.js';

/**
 * Who sees a gifticon's code. Every Gifticon the API answers (an entry's, a winner's, the admin
 * list's, a subscription's) holds its code as stored (sealed, or a plaintext one from before issue
 * 29), and this field resolver alone opens it:
 * - its owner sees it;
 * - an admin whose token also carries CODES_READ_ROLE sees it, and the read is recorded first (who,
 *   when, which campaign; one record per request and campaign): no record, no code;
 * - anyone else, or a code whose key is shredded or cannot be unwrapped, reads `null`.
 */
export interface CodeAccess {
  open(campaignId: string, stored: string): Promise<string | null>;
  /** the role an admin needs besides `admin` (CODES_READ_ROLE) */
  readRole: string;
  record(read: { reader: string; campaignId: string; field: string; codes: number }): Promise<void>;
}

/** A Gifticon as resolvers hand it over: `code` as stored, null while PENDING. */
export interface GifticonOut {
  id: string;
  campaignId: string;
  userId: string;
  code: string | null;
  status: 'PENDING' | 'ISSUED' | 'FAILED';
  issuedAt: Date | null;
  expiresAt?: Date | null;
}

/** An issued gifticon's node; `expiresAt`: a PROVIDER voucher's expiry (null for a code firstcome minted or a brand loaded). */
export const issuedGifticon = (g: {
  id: string;
  campaignId: string;
  userId: string;
  code: string;
  issuedAt: Date;
  expiresAt?: Date | null;
}): GifticonOut => ({
  ...g,
  status: 'ISSUED',
  expiresAt: g.expiresAt ?? null,
});

/**
 * A winner's gifticon not issued yet: PENDING (an INVENTORY campaign short of codes, a PROVIDER's
 * call under way), or FAILED when the winner's PROVIDER issuance is parked (`parked`: the log holds
 * an IssuanceParked of the winner and no GifticonIssued). FAILED holds through a retry under way
 * and ends only with the GifticonIssued a successful one appends.
 */
export const pendingGifticon = (campaignId: string, userId: string, parked = false): GifticonOut => ({
  id: `gifticon:${campaignId}:${userId}`,
  campaignId,
  userId,
  code: null,
  status: parked ? 'FAILED' : 'PENDING',
  issuedAt: null,
  expiresAt: null,
});

export const canReadCodes = (caller: Caller | null, readRole: string): boolean =>
  Boolean(caller?.admin && caller.roles?.includes(readRole));

interface CodeCtx {
  caller: Caller | null;
  services: { codes?: CodeAccess };
  /** this request's records of admin reads, by campaign (server.ts gives each request its own) */
  codeReads?: Map<string, { codes: number; recorded: Promise<void> }>;
}

interface FieldInfo {
  path: { key: string | number; prev: FieldInfo['path'] | undefined };
}

/** The root field a resolver's path starts at (`gifticons`, `winners`, `entry`, …). */
function rootField(info: FieldInfo): string {
  let p: FieldInfo['path'] | undefined = info.path;
  while (p?.prev) p = p.prev;
  return String(p?.key ?? 'unknown');
}

/**
 * One record per request and campaign, written once every code of the request's answer has asked
 * (they all ask within the tick the list resolves in), counting them; each waits for the record.
 */
function recordRead(ctx: CodeCtx, access: CodeAccess, campaignId: string, field: string): Promise<void> {
  const reader = ctx.caller!.userId;
  const reads = ctx.codeReads;
  if (!reads) return access.record({ reader, campaignId, field, codes: 1 });
  let r = reads.get(campaignId);
  if (!r) {
    const entry = { codes: 0, recorded: Promise.resolve() };
    entry.recorded = new Promise<void>((resolve) => setImmediate(resolve)).then(() =>
      access.record({ reader, campaignId, field, codes: entry.codes }),
    );
    reads.set(campaignId, (r = entry));
  }
  r.codes++;
  return r.recorded;
}

export function gifticonResolvers() {
  return {
    Gifticon: {
      status: (g: GifticonOut) => g.status ?? 'ISSUED',
      code: async (g: GifticonOut, _: unknown, ctx: CodeCtx, info: FieldInfo) => {
        const access = ctx.services.codes;
        if (g.code === null || !access || !ctx.caller) return null;
        if (ctx.caller.userId !== g.userId) {
          if (!canReadCodes(ctx.caller, access.readRole)) return null;
          await recordRead(ctx, access, g.campaignId, rootField(info));
        }
        return access.open(g.campaignId, g.code);
      },
    },
  };
}
