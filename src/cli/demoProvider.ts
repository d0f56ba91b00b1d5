import { InvalidArgumentError, type Command } from 'commander';
import { signToken, tokenShape } from '../api/auth.js';
import type { Config } from '../config.js';
import type { Audit, IssuanceFacts } from '../domain/audit.js';
import type { Logged } from '../domain/events.js';
import { SIM_TOKEN, startProviderSim, type ProviderSim } from '../provider-sim/server.js';
import { createClient, runPool } from './crowd.js';
import type { Deadline } from './progress.js';

/**
 * `npm run demo -- --issuance provider`: the provider simulator in the demo's own process (a real
 * HTTP server on a free port, with latency and a few % of faults), the server's issuer pointed at
 * it, the wait until every winner is issued or parked, and the checks of I6 against the log, the
 * `parked` view, the simulator's books and each winner's own `myEntry`.
 */

export interface ProviderFlags {
  providerLatencyMs: number;
  providerErrors: number;
  providerTimeouts: number;
  providerPermanent: number;
}

const share = (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('expected a share from 0 to 1');
  return n;
};

/** The simulator's knobs, for `--issuance provider` only. */
export function providerOptions(program: Command): Command {
  return program
    .option('--provider-latency-ms <ms>', "with --issuance provider: the simulator's median latency", (v) => Number(v), 100)
    .option('--provider-errors <share>', 'with --issuance provider: share of calls answered 5xx', share, 0.03)
    .option('--provider-timeouts <share>', 'with --issuance provider: share of calls issued and never answered', share, 0.01)
    .option('--provider-permanent <share>', 'with --issuance provider: share of winners refused for good (422: parked)', share, 0.005);
}

export const DEMO_PRODUCT = 'chicken-10000';

/** The simulator started, and the server's environment that points its issuer at it. */
export async function startDemoProvider(f: ProviderFlags): Promise<{ sim: ProviderSim; env: Record<string, string>; describe: string }> {
  const token = process.env.PROVIDER_TOKEN || SIM_TOKEN;
  const sim = await startProviderSim({
    port: 0,
    token,
    latencyMs: f.providerLatencyMs,
    // a provider's own limit; the issuer paces itself under it (PROVIDER_RATE_PER_SEC below)
    rate: 500,
    errorRate: f.providerErrors,
    timeoutRate: f.providerTimeouts,
    permanentRate: f.providerPermanent,
  });
  return {
    sim,
    // defaults the environment may override, but the URL is the simulator's
    env: {
      PROVIDER_RATE_PER_SEC: '450',
      PROVIDER_CONCURRENCY: '100',
      // an answer lost after issuing is asked again after a second, not the default five
      PROVIDER_TIMEOUT_MS: '1000',
      ...pickDefined(process.env, ['PROVIDER_RATE_PER_SEC', 'PROVIDER_CONCURRENCY', 'PROVIDER_TIMEOUT_MS']),
      PROVIDER_URL: sim.url,
      PROVIDER_TOKEN: token,
    },
    describe:
      `provider simulator on ${sim.url}: ${f.providerLatencyMs} ms median, 500/s, 5xx ${f.providerErrors}, ` +
      `answers lost after issuing ${f.providerTimeouts}, permanent 4xx ${f.providerPermanent}`,
  };
}

function pickDefined(env: NodeJS.ProcessEnv, keys: string[]): Record<string, string> {
  return Object.fromEntries(keys.flatMap((k) => (env[k] ? [[k, env[k]]] : [])));
}

const PARKED = `query($a: String) { parked(first: 100, after: $a, status: PARKED) {
  edges { node { consumer reason raw } } pageInfo { hasNextPage endCursor } } }`;

type ParkedPage = {
  data?: {
    parked: {
      edges: { node: { consumer: string; reason: string; raw: string | null } }[];
      pageInfo: { hasNextPage: boolean; endCursor: string | null };
    };
  };
  errors?: unknown;
};

/** The users of `campaign` whose issuance is parked and not retried, as the admins' `parked` view lists them. */
export async function openParked(base: string, admin: string, campaign: string): Promise<Set<string>> {
  const client = createClient(base, 1);
  const users = new Set<string>();
  try {
    let after: string | null = null;
    for (;;) {
      const r: { body: ParkedPage } = await client.post<ParkedPage>(admin, PARKED, { a: after });
      if (!r.body.data) throw new Error(`parked: ${JSON.stringify(r.body.errors)}`);
      for (const { node } of r.body.data.parked.edges) {
        if (node.reason !== 'PROVIDER' || !node.raw) continue;
        const w = JSON.parse(Buffer.from(node.raw, 'base64').toString('utf8')) as { campaignId: string; userId: string };
        if (w.campaignId === campaign) users.add(w.userId);
      }
      if (!r.body.data.parked.pageInfo.hasNextPage) return users;
      after = r.body.data.parked.pageInfo.endCursor;
    }
  } finally {
    client.close();
  }
}

/** What the wait for the log hands the audit: null until every winner is issued or parked. */
export type Settle = (log: Logged[], audit: Audit) => Promise<{ facts?: IssuanceFacts } | null>;

/** The winners of the log, and which of them hold a GifticonIssued. */
export function issuanceOf(log: readonly Logged[]): { winners: string[]; issued: Set<string> } {
  const winners = log.flatMap((l) => (l.event.type === 'WinnerSelected' ? [l.event.userId] : []));
  const issued = new Set(log.flatMap((l) => (l.event.type === 'GifticonIssued' ? [l.event.userId] : [])));
  return { winners, issued };
}

/**
 * Settled once every winner holds a GifticonIssued or an open parked issuance; the parked set it
 * last read is kept for the checks, and the time it settled.
 */
export function providerSettle(base: string, admin: string, campaign: string) {
  const state = { parked: new Set<string>(), settledAt: 0 };
  const settle: Settle = async (log) => {
    const { winners, issued } = issuanceOf(log);
    // the parked view is read only while some winner holds no voucher
    state.parked = winners.every((u) => issued.has(u)) ? new Set() : await openParked(base, admin, campaign);
    if (!winners.every((u) => issued.has(u) || state.parked.has(u))) return null;
    state.settledAt = performance.now();
    const parked = state.parked;
    return { facts: { openParked: (c, u) => c === campaign && parked.has(u) } };
  };
  return { settle, state };
}

const MY = `query($c: ID!) { myEntry(campaignId: $c) { status gifticon { code status } } }`;
type My = { data?: { myEntry: { status: string; gifticon: { code: string | null; status: string } | null } | null } };

export interface ProviderCheck {
  issued: number;
  parked: number;
  /** winners holding neither a voucher nor an open parked issuance, or both */
  neitherOrBoth: number;
  /** issued winners whose myEntry code is the simulator's one voucher for them */
  matched: number;
  /** parked winners whose myEntry reads FAILED, with no code */
  failedRead: number;
  /** winners whose myEntry did not show what the log and the simulator hold before the deadline */
  mismatched: string[];
}

/**
 * Each winner's own view against the simulator's books: an issued winner reads ISSUED with the
 * code of the one voucher the simulator issued to them, a parked winner reads FAILED. myEntry is
 * the read model, which follows the log: each winner is asked again until it shows the final
 * state or the deadline passes.
 */
export async function checkWinners(
  base: string,
  config: Config,
  campaign: string,
  audit: Audit,
  log: readonly Logged[],
  parked: ReadonlySet<string>,
  sim: ProviderSim,
  deadline: Deadline,
): Promise<ProviderCheck> {
  const { winners, issued } = issuanceOf(log);
  const client = createClient(base, 16);
  const out: ProviderCheck = {
    issued: issued.size,
    parked: 0,
    neitherOrBoth: 0,
    matched: 0,
    failedRead: 0,
    mismatched: [],
  };
  try {
    await runPool(winners, 16, async (user) => {
      const isParked = parked.has(user);
      if (isParked) out.parked++;
      if (issued.has(user) === isParked) {
        out.neitherOrBoth++;
        return;
      }
      const vouchers = sim.vouchersOf(campaign, user);
      const token = await signToken(config.JWT_SECRET, { sub: user, expiresIn: '1h' }, tokenShape(config));
      for (;;) {
        const g = (await client.post<My>(token, MY, { c: campaign })).body.data?.myEntry?.gifticon;
        // a parked winner holds no voucher: FAILED and no code, once the read model has the parking
        if (isParked && g?.status === 'FAILED' && g.code === null) return void out.failedRead++;
        if (isParked && g?.status === 'ISSUED') return void out.mismatched.push(user);
        // the code the winner reads is the one voucher the simulator issued them, and the code the log sealed
        if (!isParked && g?.status === 'ISSUED') {
          if (vouchers.length === 1 && g.code === vouchers[0]!.code && g.code === audit.codes.get(user)) out.matched++;
          else out.mismatched.push(user);
          return;
        }
        if (deadline.passed) return void out.mismatched.push(user);
        await new Promise((r) => setTimeout(r, deadline.cap(200)));
      }
    });
  } finally {
    client.close();
  }
  return out;
}

/** The server's provider counters (/metrics): calls, and calls made again after a transient answer. */
export async function providerCounters(base: string): Promise<{ calls: number; retries: number }> {
  const text = await fetch(`${base}/metrics`).then(
    (r) => r.text(),
    () => '',
  );
  const sum = (name: string) =>
    text
      .split('\n')
      .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
      .reduce((s, l) => s + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  return { calls: sum('firstcome_provider_calls_total'), retries: sum('firstcome_provider_retries_total') };
}

/**
 * The demo's summary rows and checks for a PROVIDER drop, once the wait settled: each winner's
 * view checked against the simulator, the server's call counters and the simulator's books.
 */
export async function providerReport(a: {
  base: string;
  config: Config;
  campaign: string;
  audit: Audit;
  log: readonly Logged[];
  settled: { parked: ReadonlySet<string>; settledAt: number };
  sim: ProviderSim;
  deadline: Deadline;
  crowdEnded: number;
}): Promise<{ rows: [string, string | number][]; checks: [string, boolean][]; notes: string[] }> {
  const c = await checkWinners(a.base, a.config, a.campaign, a.audit, a.log, a.settled.parked, a.sim, a.deadline);
  const { calls, retries } = await providerCounters(a.base);
  const s = a.sim.stats();
  const rows: [string, string | number][] = [
    ['  of them issued by the provider', c.issued],
    ['  of them parked (open, `parked` view)', c.parked],
    ['provider calls (server)', calls],
    ['  retries', retries],
    ['simulator: vouchers / keys / doubles', `${s.issued} / ${s.keys} / ${s.doubles}`],
    ['issued or parked after the crowd', `${((a.settled.settledAt - a.crowdEnded) / 1000).toFixed(2)} s`],
  ];
  const checks: [string, boolean][] = [
    [
      `I6 every winner holds exactly one voucher or one open parked issuance (${c.issued} issued, ${c.parked} parked)`,
      c.neitherOrBoth === 0 && c.issued + c.parked === a.audit.winners,
    ],
    [
      `I6 the simulator issued no key twice (doubles ${s.doubles}, winners under two keys ${s.recipientDoubles})`,
      s.doubles === 0 && s.recipientDoubles === 0,
    ],
    [
      `each winner's myEntry code is the simulator's voucher for them (${c.matched} of ${c.issued}; ` +
        `parked read FAILED: ${c.failedRead} of ${c.parked})`,
      c.mismatched.length === 0 && c.matched === c.issued && c.failedRead === c.parked,
    ],
  ];
  const notes = c.mismatched.length ? [`winners whose myEntry disagrees: ${c.mismatched.slice(0, 10).join(', ')}`] : [];
  return { rows, checks, notes };
}
