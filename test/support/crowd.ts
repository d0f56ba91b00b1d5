import type { Audit } from '../../src/domain/audit.js';
import { gql, pool, token } from './app.js';
import { elapse } from './wait.js';

/**
 * A crowd over several API processes, as a failover test needs it: every answer kept with when it
 * came, duplicate clicks of one user sent to two processes at once, a caller told UNAVAILABLE trying
 * again as a client would. Then the answers are held to what the log decided.
 */
const ENTER = `mutation($c: ID!) { enter(campaignId: $c) { rejection entry { ticket position status } } }`;

export type Outcome =
  | { kind: 'entry'; ticket: string; position: number | null; status: string }
  | { kind: 'rejection'; rejection: string }
  /** a GraphQL error code, or 'no answer' (the request itself failed) */
  | { kind: 'error'; code: string };

export interface Call {
  user: string;
  api: number;
  startedAt: number;
  endedAt: number;
  outcome: Outcome;
}

export interface CrowdOptions {
  campaignId: string;
  apiPorts: number[];
  users: number;
  /** every `dupEvery`-th user clicks twice at once, on two API processes */
  dupEvery: number;
  userPrefix: string;
  concurrency: number;
  /** called after each finished user; faults are injected from here */
  onProgress?: (done: number) => void;
}

export async function runCrowd(o: CrowdOptions): Promise<Call[]> {
  const calls: Call[] = [];
  const tokens = await Promise.all(Array.from({ length: o.users }, (_, i) => token(`${o.userPrefix}${i}`)));
  const call = async (user: number, api: number): Promise<void> => {
    // a caller told to retry does, as a client would (UNAVAILABLE, or no answer at all)
    for (let attempt = 0; attempt < 40; attempt++) {
      const startedAt = Date.now();
      const r = await gql(o.apiPorts[api]!, tokens[user]!, ENTER, { c: o.campaignId }).catch(() => null);
      const e = r?.data?.enter;
      const outcome: Outcome = e?.entry
        ? { kind: 'entry', ...e.entry }
        : e?.rejection
          ? { kind: 'rejection', rejection: e.rejection }
          : { kind: 'error', code: r?.errors?.[0]?.extensions?.code ?? 'no answer' };
      calls.push({ user: `${o.userPrefix}${user}`, api, startedAt, endedAt: Date.now(), outcome });
      if (outcome.kind !== 'error' || !['UNAVAILABLE', 'no answer'].includes(outcome.code)) return;
      await elapse(250, 'a client backing off before it tries again');
    }
  };
  let done = 0;
  await pool(
    Array.from({ length: o.users }, (_, i) => i),
    o.concurrency,
    async (user) => {
      const api = user % o.apiPorts.length;
      const twice = user % o.dupEvery === 0 && o.apiPorts.length > 1;
      await Promise.all([call(user, api), twice ? call(user, (api + 1) % o.apiPorts.length) : undefined]);
      o.onProgress?.(++done);
    },
  );
  return calls;
}

export interface Outage {
  /** from the fault to the end of the last call that failed or stalled */
  windowMs: number;
  /** calls answered with an error (UNAVAILABLE, no answer, …) */
  failed: number;
  /** calls answered, but slower than a normal answer can be */
  stalled: number;
  slowestMs: number;
  /** the slowest call that ended before the fault, for scale */
  slowestBeforeMs: number;
}

/**
 * What callers saw of a fault at `at`. A normal answer, QUEUED included, comes within ENTER_WAIT_MS;
 * a call slower than `slowMs` waited on the failover, and one that failed got no answer from it.
 */
export function outage(calls: readonly Call[], at: number, slowMs: number): Outage {
  const took = (c: Call) => c.endedAt - c.startedAt;
  const after = calls.filter((c) => c.endedAt >= at);
  const failed = after.filter((c) => c.outcome.kind === 'error');
  const stalled = after.filter((c) => c.outcome.kind !== 'error' && took(c) > slowMs);
  const hit = [...failed, ...stalled];
  return {
    windowMs: hit.length === 0 ? 0 : Math.max(...hit.map((c) => c.endedAt)) - at,
    failed: failed.length,
    stalled: stalled.length,
    slowestMs: Math.max(0, ...after.map(took)),
    slowestBeforeMs: Math.max(0, ...calls.filter((c) => c.endedAt < at).map(took)),
  };
}

export const describeOutage = (o: Outage, slowMs: number) =>
  `window ${o.windowMs} ms from the kill to the last caller it held up (${o.failed} calls failed, ${o.stalled} took over ${slowMs} ms; slowest ${o.slowestMs} ms, before the kill ${o.slowestBeforeMs} ms)`;

export function tally(calls: readonly Call[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of calls) {
    const k =
      c.outcome.kind === 'entry' ? `entry ${c.outcome.status}` : c.outcome.kind === 'rejection' ? c.outcome.rejection : c.outcome.code;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/**
 * Every answer held to the log's final decision: an entry is the user's place in the log (same
 * ticket; with a position, the same position and WON exactly when it is within the stock); SOLD_OUT
 * only to a user who did not win; an error only retryable. The wrong ones, described; and how many
 * acknowledged entries were checked.
 */
export function wrongAnswers(calls: readonly Call[], audit: Audit): { wrong: string[]; acknowledged: number } {
  const wrong: string[] = [];
  const acked = new Set<string>();
  const winners = new Set([...audit.state.places].filter(([, p]) => p.position <= audit.stock).map(([u]) => u));
  for (const c of calls) {
    const o = c.outcome;
    const place = audit.state.places.get(c.user);
    if (o.kind === 'entry') {
      acked.add(c.user);
      if (!place) wrong.push(`${c.user}: told ${o.ticket}, not in the log`);
      else if (place.ticket !== o.ticket) wrong.push(`${c.user}: told ticket ${o.ticket}, the log has ${place.ticket}`);
      else if (o.position !== null && (o.position !== place.position || (o.status === 'WON') !== place.position <= audit.stock))
        wrong.push(`${c.user}: told ${o.status} at ${o.position}, the log places them at ${place.position} of stock ${audit.stock}`);
    } else if (o.kind === 'rejection') {
      if (o.rejection !== 'SOLD_OUT' || winners.has(c.user))
        wrong.push(`${c.user}: told ${o.rejection}, the log ${winners.has(c.user) ? 'made them a winner' : 'says otherwise'}`);
    } else if (!['UNAVAILABLE', 'no answer'].includes(o.code)) wrong.push(`${c.user}: answered ${o.code}`);
  }
  return { wrong, acknowledged: acked.size };
}
