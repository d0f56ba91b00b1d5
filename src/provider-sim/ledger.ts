import { randomBytes, randomInt } from 'node:crypto';

/**
 * The simulated provider's books: one voucher per idempotency key, what each key was answered, and
 * the counts a test reads to prove nothing was issued twice. A key whose first request is still
 * being worked on is `busy`: a second request with it is answered 409, as Stripe-like APIs do, so
 * two racing retries can never both issue.
 */

export interface VoucherOrder {
  product: string;
  recipient: string;
  campaignId: string;
}

export interface Voucher {
  voucherId: string;
  code: string;
  expiresAt: string;
}

/** One request as the provider saw it: when it came, and the status it was answered (null: never). */
export interface Seen {
  at: number;
  status: number | null;
  /** a 429's `Retry-After`, in ms */
  retryAfterMs?: number;
}

export interface LedgerStats {
  /** vouchers issued, all keys together */
  issued: number;
  /** keys that were issued a voucher */
  keys: number;
  /** keys that were issued more than one voucher */
  doubles: number;
  /** (campaign, recipient) pairs that hold vouchers under more than one key: a client that changed its key */
  recipientDoubles: number;
  /** requests that reached the voucher endpoint, and how many were being worked on at most at once */
  requests: number;
  maxInFlight: number;
}

const VOUCHER_LIFE_MS = 90 * 24 * 3600_000;

function newVoucher(now: number): Voucher {
  // a 16-digit PIN in four groups, as gifticon providers print them
  const code = Array.from({ length: 4 }, () => String(randomInt(0, 10_000)).padStart(4, '0')).join('-');
  return { voucherId: `v_${randomBytes(8).toString('hex')}`, code, expiresAt: new Date(now + VOUCHER_LIFE_MS).toISOString() };
}

export class Ledger {
  private readonly vouchers = new Map<string, Voucher[]>();
  private readonly busy = new Set<string>();
  private readonly byRecipient = new Map<string, Set<string>>();
  private readonly seen = new Map<string, Seen[]>();
  private requests = 0;
  private issued = 0;
  private doubles = 0;
  private recipientDoubles = 0;
  private inFlight = 0;
  private maxInFlight = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** A request arrived; the returned record gets its status once answered. */
  arrive(key: string | null): Seen {
    this.requests++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const s: Seen = { at: this.now(), status: null };
    if (key !== null) {
      const list = this.seen.get(key) ?? [];
      list.push(s);
      this.seen.set(key, list);
    }
    return s;
  }

  leave(s: Seen, status: number | null): void {
    this.inFlight--;
    s.status = status;
  }

  /** false: another request with this key is being worked on */
  claim(key: string): boolean {
    if (this.busy.has(key)) return false;
    this.busy.add(key);
    return true;
  }

  release(key: string): void {
    this.busy.delete(key);
  }

  voucherOf(key: string): Voucher | undefined {
    return this.vouchers.get(key)?.[0];
  }

  /** The key's voucher, issued now if it has none. */
  issue(key: string, order: VoucherOrder): { voucher: Voucher; created: boolean } {
    const have = this.voucherOf(key);
    if (have) return { voucher: have, created: false };
    const voucher = newVoucher(this.now());
    const list = this.vouchers.get(key) ?? [];
    list.push(voucher);
    this.vouchers.set(key, list);
    this.issued++;
    if (list.length === 2) this.doubles++;
    const who = `${order.campaignId}\n${order.recipient}`;
    const keys = this.byRecipient.get(who) ?? new Set<string>();
    keys.add(key);
    this.byRecipient.set(who, keys);
    if (keys.size === 2) this.recipientDoubles++;
    return { voucher, created: true };
  }

  /** Every voucher issued to a campaign's recipient, under any key: one, for a client that never doubled. */
  vouchersOf(campaignId: string, recipient: string): Voucher[] {
    const keys = this.byRecipient.get(`${campaignId}\n${recipient}`) ?? new Set<string>();
    return [...keys].flatMap((k) => this.vouchers.get(k) ?? []);
  }

  /** Every key that reached the voucher endpoint, in the order each first came. */
  keys(): string[] {
    return [...this.seen.keys()];
  }

  /** The requests one key made, in arrival order. */
  history(key: string): Seen[] {
    return [...(this.seen.get(key) ?? [])];
  }

  stats(): LedgerStats {
    return {
      issued: this.issued,
      keys: this.vouchers.size,
      doubles: this.doubles,
      recipientDoubles: this.recipientDoubles,
      requests: this.requests,
      maxInFlight: this.maxInFlight,
    };
  }
}
