import { badInput } from '../errors.js';

/**
 * Relay connections over the read model: keyset pagination (no OFFSET, so a page costs the same
 * deep in a list of millions), opaque base64url cursors that name the list they belong to.
 */

export const MAX_FIRST = 1000;

/** `first` as the schema gives it: null or absent means the field's default. */
export function pageSize(first: unknown, fallback: number): number {
  if (first === undefined || first === null) return fallback;
  if (typeof first !== 'number' || !Number.isInteger(first) || first < 1 || first > MAX_FIRST) {
    throw badInput('first', `must be an integer from 1 to ${MAX_FIRST}`);
  }
  return first;
}

/** The key a list is ordered by; a cursor carries it. */
export type CursorKey =
  | { list: 'campaigns'; createdAt: number; id: string }
  | { list: 'winners'; campaignId: string; position: number }
  | { list: 'gifticons'; campaignId: string; logOffset: bigint }
  | { list: 'parked'; parkedAt: number; id: string }
  | { list: 'codeReads'; id: bigint };

export function encodeCursor(key: CursorKey): string {
  const parts =
    key.list === 'campaigns'
      ? ['c', key.createdAt, key.id]
      : key.list === 'parked'
        ? ['p', key.parkedAt, key.id]
        : key.list === 'codeReads'
          ? ['r', 0, key.id.toString()]
          : key.list === 'winners'
            ? ['w', key.campaignId, key.position]
            : ['g', key.campaignId, key.logOffset.toString()];
  return Buffer.from(JSON.stringify(parts), 'utf8').toString('base64url');
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;
const INVALID = 'is not a cursor of this list';

/**
 * The key in `after`, which must come from the same list (and the same campaign); null when
 * `after` is absent. Anything else is BAD_USER_INPUT naming `after`.
 */
export function decodeCursor<L extends CursorKey['list']>(
  list: L,
  after: unknown,
  campaignId?: string,
): Extract<CursorKey, { list: L }> | null {
  if (after === undefined || after === null) return null;
  if (typeof after !== 'string' || after.length > 400 || !BASE64URL.test(after)) throw badInput('after', INVALID);
  let parts: unknown;
  try {
    parts = JSON.parse(Buffer.from(after, 'base64url').toString('utf8'));
  } catch {
    throw badInput('after', INVALID);
  }
  if (!Array.isArray(parts) || parts.length !== 3) throw badInput('after', INVALID);
  const [tag, a, b] = parts as unknown[];
  let key: CursorKey | null = null;
  if (list === 'campaigns' && tag === 'c' && Number.isSafeInteger(a) && typeof b === 'string') {
    key = { list, createdAt: a as number, id: b };
  } else if (list === 'parked' && tag === 'p' && Number.isSafeInteger(a) && typeof b === 'string') {
    key = { list, parkedAt: a as number, id: b };
  } else if (list === 'winners' && tag === 'w' && a === campaignId && Number.isSafeInteger(b) && (b as number) >= 0) {
    key = { list, campaignId: a as string, position: b as number };
  } else if (list === 'gifticons' && tag === 'g' && a === campaignId && typeof b === 'string' && /^\d{1,19}$/.test(b)) {
    key = { list, campaignId: a as string, logOffset: BigInt(b) };
  } else if (list === 'codeReads' && tag === 'r' && a === 0 && typeof b === 'string' && /^\d{1,19}$/.test(b)) {
    key = { list, id: BigInt(b) };
  }
  if (!key) throw badInput('after', INVALID);
  return key as Extract<CursorKey, { list: L }>;
}

export interface Connection<N> {
  edges: { cursor: string; node: N }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
  totalCount: number;
}

/** `rows` were fetched with `first + 1`, so one more row than the page tells there is a next page. */
export function connectionOf<R, N>(
  rows: readonly R[],
  first: number,
  totalCount: number,
  keyOf: (r: R) => CursorKey,
  nodeOf: (r: R) => N,
): Connection<N> {
  const page = rows.slice(0, first);
  const edges = page.map((r) => ({ cursor: encodeCursor(keyOf(r)), node: nodeOf(r) }));
  return {
    edges,
    pageInfo: { hasNextPage: rows.length > first, endCursor: edges.at(-1)?.cursor ?? null },
    totalCount,
  };
}
