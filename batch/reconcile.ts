import { createHash } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { Config } from '../src/config.js';
import { evolve, initialState, judge, type CampaignState } from '../src/domain/campaign.js';
import type { EntrantRegistered, Logged } from '../src/domain/events.js';
import { readLog } from '../src/infra/kafka/reader.js';
import { partitionFor } from '../src/infra/kafka/partitioning.js';
import type { PrismaClient } from '../src/infra/prisma/client.js';
import { lineCounts, listCampaigns, type RedisOrdering } from '../projections/redis-ordering/index.js';
import type { ReplayTarget } from './replay.js';
import { closedSince } from './cleanup.js';
import { committedOffsets, highWatermarks, nearlyReached, prismaCheckpoints, withAdmin } from './logPosition.js';
import type { JobContext } from './runtime.js';

/**
 * Compares, for each live campaign, what the log says (folded with the domain's own rules) with
 * what Redis and Postgres hold: entrants, winners (who, at which position) and gifticons issued.
 * Only partitions that are quiet (their end did not move during the check and both projections have
 * read up to it) are compared, and a difference must still be there a moment later, so a projection
 * that is merely a few milliseconds behind is not called wrong. Drift is logged, exposed as a gauge,
 * and repaired by replaying the projection that is wrong, for that campaign.
 */

export interface Counts {
  entrants: number;
  winners: number;
  issued: number;
  /** sha1 over the sorted "user:position" of the winners; null when not computed */
  winnersDigest: string | null;
}

/** A campaign's state as the fold keeps it: the domain's state plus who won at which position. */
export interface Folded {
  state: CampaignState;
  winners: Map<string, number>;
}

/**
 * Folds a batch of the log into per-campaign state. The decision rule is the domain's `judge`;
 * places are added to the Map in place rather than through `evolve`, which copies it per entry
 * (quadratic over a 100,000-entry campaign). Campaigns outside `only` are skipped.
 */
export function foldLog(states: Map<string, Folded>, batch: readonly Logged[], only?: ReadonlySet<string>): void {
  for (const l of batch) {
    const e = l.event;
    if (only && !only.has(e.campaignId)) continue;
    let f = states.get(e.campaignId);
    if (!f) states.set(e.campaignId, (f = { state: initialState(), winners: new Map() }));
    switch (e.type) {
      case 'EntrantRegistered': {
        const d = judge(f.state, l as Logged<EntrantRegistered>);
        if (d.kind === 'placed' && d.firstTime) f.state.places.set(d.userId, d.place);
        break;
      }
      case 'WinnerSelected':
        f.winners.set(e.userId, e.position);
        f.state.winners++;
        break;
      case 'GifticonIssued':
        f.state.issued.add(e.userId);
        break;
      case 'CampaignCreated':
      case 'CampaignSoldOut':
      case 'CampaignClosed':
      case 'CampaignChallengeSet':
      case 'LineHeadSigned':
      case 'CodesLoaded':
        f.state = evolve(f.state, l); // shallow: keeps the places Map
        break;
      case 'IssuanceRequested':
      case 'IssuanceParked':
        break;
      default: {
        const _exhaustive: never = e;
        return _exhaustive;
      }
    }
  }
}

export function digestWinners(winners: Iterable<readonly [string, number]>): string {
  const lines = [...winners].map(([u, p]) => `${u}:${p}`).sort();
  return createHash('sha1').update(lines.join('\n')).digest('hex');
}

export function countsOfFolded(f: Folded): Counts {
  return { entrants: f.state.places.size, winners: f.winners.size, issued: f.state.issued.size, winnersDigest: digestWinners(f.winners) };
}

/** What differs between the log's counts and a projection's, as readable words ([] when they agree). */
export function differences(log: Counts, other: Counts | null): string[] {
  if (!other) return ['campaign missing'];
  const out: string[] = [];
  for (const k of ['entrants', 'winners', 'issued'] as const) if (log[k] !== other[k]) out.push(`${k} ${other[k]} (log ${log[k]})`);
  if (out.length === 0 && log.winnersDigest && other.winnersDigest && log.winnersDigest !== other.winnersDigest)
    out.push('winners differ (same count)');
  return out;
}

export interface Drift {
  campaignId: string;
  projection: 'redis' | 'database';
  differences: string[];
}

export interface ReconcileResult {
  campaigns: number;
  compared: number;
  skippedPartitions: number[];
  drift: Drift[];
  repairs: { target: ReplayTarget; campaignId: string; jobId: string }[];
}

export interface ReconcileDeps {
  config: Config;
  kafka: Kafka;
  ordering: RedisOrdering;
  prisma: PrismaClient;
  /** queues replay(target, campaignId) unless one is queued or running already; its job id */
  repair: (target: 'REDIS' | 'DATABASE', campaignId: string) => Promise<string>;
}

/** winners lists are compared one by one up to this size; bigger campaigns by count only */
const DIGEST_LIMIT = 200_000;

async function redisCounts(ordering: RedisOrdering, id: string, digest: boolean): Promise<Counts | 'building' | null> {
  const c = await lineCounts(ordering, id, digest);
  if (c === 'building' || c === null) return c;
  return { entrants: c.entrants, winners: c.winners, issued: c.issued, winnersDigest: c.won ? digestWinners(c.won) : null };
}

async function databaseCounts(prisma: PrismaClient, id: string, digest: boolean): Promise<Counts | null> {
  const exists = await prisma.campaign.findUnique({ where: { id }, select: { id: true } });
  if (!exists) return null;
  const [entrants, winners, issued] = await Promise.all([
    prisma.entry.count({ where: { campaignId: id } }),
    prisma.winner.count({ where: { campaignId: id } }),
    prisma.gifticon.count({ where: { campaignId: id } }),
  ]);
  let winnersDigest: string | null = null;
  if (digest) {
    const rows = await prisma.winner.findMany({ where: { campaignId: id }, select: { userId: true, position: true } });
    winnersDigest = digestWinners(rows.map((r) => [r.userId, r.position] as const));
  }
  return { entrants, winners, issued, winnersDigest };
}

/** Campaigns not closed longer than the Redis retention, as Redis and Postgres know them. */
async function liveCampaigns(deps: ReconcileDeps): Promise<Set<string>> {
  const now = Date.now();
  const retentionMs = deps.config.REDIS_RETENTION_HOURS * 3_600_000;
  const ids = new Set<string>();
  for (const id of await listCampaigns(deps.ordering)) ids.add(id);
  const since = new Date(now - retentionMs);
  const rows = await deps.prisma.campaign.findMany({
    where: { closesAt: { gt: since }, OR: [{ closedAt: null }, { closedAt: { gt: since } }] },
    select: { id: true },
  });
  for (const r of rows) ids.add(r.id);
  return ids;
}

export async function runReconcile(ctx: JobContext<Record<string, never>>, deps: ReconcileDeps): Promise<ReconcileResult> {
  const { config, kafka } = deps;
  const topic = config.topics.events;
  const result: ReconcileResult = { campaigns: 0, compared: 0, skippedPartitions: [], drift: [], repairs: [] };
  const live = await liveCampaigns(deps);
  if (live.size === 0) return result;
  const partitions = [...new Set([...live].map((id) => partitionFor(id, config.EVENT_PARTITIONS)))].sort((a, b) => a - b);

  const endsBefore = await withAdmin(kafka, (admin) => highWatermarks(admin, topic));
  const folded = new Map<string, Folded>();
  await readLog(kafka, topic, (batch) => foldLog(folded, batch, live), { partitions });
  ctx.check();

  // quiet partitions only: the end did not move, the single writer and the Prisma projection are there
  const quiet = new Set<number>();
  await withAdmin(kafka, async (admin) => {
    const [endsAfter, writer, prisma] = await Promise.all([
      highWatermarks(admin, topic),
      committedOffsets(admin, config.groups.writer, topic),
      prismaCheckpoints(deps.prisma, topic),
    ]);
    for (const p of partitions) {
      const end = endsAfter.get(p) ?? 0n;
      const ok =
        end === (endsBefore.get(p) ?? 0n) &&
        nearlyReached(writer.get(p) ?? 0n, end) &&
        nearlyReached(prisma.get(p) ?? 0n, end) &&
        (await deps.ordering.isBuilt({ topic, partition: p }));
      if (ok) quiet.add(p);
      else result.skippedPartitions.push(p);
    }
  });

  for (const id of live) {
    ctx.check();
    const f = folded.get(id);
    if (!f?.state.terms) continue; // not in the log (yet): nothing to compare with
    const p = partitionFor(id, config.EVENT_PARTITIONS);
    result.campaigns++;
    if (!quiet.has(p)) continue;
    const log = countsOfFolded(f);
    const digest = log.winners <= DIGEST_LIMIT;
    const closed = closedSince(f.state.terms, Date.now());
    const cleanedUp = closed !== null && Date.now() - closed >= config.REDIS_RETENTION_HOURS * 3_600_000;
    result.compared++;

    const check = async (projection: Drift['projection']): Promise<string[]> => {
      if (projection === 'redis') {
        const r = await redisCounts(deps.ordering, id, digest);
        if (r === 'building' || (r === null && cleanedUp)) return [];
        return differences(log, r);
      }
      return differences(log, await databaseCounts(deps.prisma, id, digest));
    };
    for (const projection of ['redis', 'database'] as const) {
      if ((await check(projection)).length === 0) continue;
      // a projection a few milliseconds behind is not wrong: look again before calling it drift
      await ctx.sleep(1000);
      const diff = await check(projection);
      if (diff.length === 0) continue;
      result.drift.push({ campaignId: id, projection, differences: diff });
      ctx.log.warn({ campaignId: id, projection, differences: diff }, 'projection drifted from the log: replaying it');
      const target = projection === 'redis' ? 'REDIS' : 'DATABASE';
      result.repairs.push({ target, campaignId: id, jobId: await deps.repair(target, id) });
    }
  }
  return result;
}
