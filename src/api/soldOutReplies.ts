import type { IncomingMessage } from 'node:http';

/** Requests remembered at once: a client sends one body per campaign, and a crowd shares a client. */
const MOST_REQUESTS = 256;
/** Longer bodies are never remembered: a crowd's `enter` is a line of GraphQL. */
const MOST_BODY_CHARS = 2048;

/** What Apollo answered to one request that the crowd memory told SOLD_OUT. */
export interface SoldOutReply {
  campaignId: string;
  status: number;
  headers: [string, string][];
  body: string;
}

/**
 * The edge's copy of Apollo's answer to a sold-out crowd, so that a repeat of the same request
 * skips GraphQL altogether (issue 33: a sold-out call cost 31 µs of the API's main thread more than
 * a `{ __typename }`, most of it Apollo and graphql executing `enter`).
 *
 * An answer is remembered only when it cannot depend on who asks: a user's `enter`, the only field
 * of a mutation, that the crowd memory (soldOut.ts) answered SOLD_OUT, with 200 and a body Apollo
 * completed. Such a body holds nothing of the user: `entry` is null, `rejection` is SOLD_OUT, and
 * the rest is the document's own shape (aliases, `__typename`). A repeat is the same body text with
 * the same content type and accept header, so Apollo would parse, validate and shape it the same
 * way; only the crowd memory's answer for this user can differ, and it is asked again every time.
 * A user who may be in line ('counted') or a campaign the memory no longer answers goes on to
 * Apollo as before. The edge's budgets are spent before this, as for every request.
 */
export class SoldOutReplies {
  private readonly replies = new Map<string, SoldOutReply>();

  /** The request's key, or null when it can never be remembered. */
  keyOf(req: IncomingMessage, body: string): string | null {
    if (req.method !== 'POST' || body.length > MOST_BODY_CHARS) return null;
    const type = req.headers['content-type'];
    if (type === undefined || !type.startsWith('application/json')) return null;
    return `${type}\n${req.headers.accept ?? ''}\n${body}`;
  }

  get(key: string): SoldOutReply | undefined {
    return this.replies.get(key);
  }

  /**
   * After Apollo answered: `body` is the parsed request (a `query` and no `extensions`: an
   * automatic persisted query's answer can depend on Apollo's cache), `soldOutFrom` the campaign
   * the crowd memory answered SOLD_OUT for, set by the resolver of a lone root `enter`.
   */
  learn(key: string, body: unknown, soldOutFrom: string, reply: Omit<SoldOutReply, 'campaignId'>): void {
    if (reply.status !== 200 || this.replies.has(key)) return;
    const b = body as { query?: unknown; extensions?: unknown };
    if (typeof b?.query !== 'string' || b.extensions !== undefined) return;
    if (this.replies.size >= MOST_REQUESTS) this.replies.delete(this.replies.keys().next().value!);
    this.replies.set(key, { campaignId: soldOutFrom, ...reply });
  }
}
