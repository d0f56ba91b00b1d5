import { startApp } from '../src/app.js';
import { median } from '../src/cli/crowd.js';
import { loadConfig, type Config } from '../src/config.js';
import { campaignClosed, EVENT_VERSION, eventIds, type CampaignEvent } from '../src/domain/events.js';
import { createKafka } from '../src/infra/kafka/client.js';
import { EventAppender } from '../src/infra/kafka/appender.js';
import { partitionFor } from '../src/infra/kafka/partitioning.js';
import { ensureTopics } from '../src/infra/kafka/topics.js';
import { createPrisma } from '../src/infra/prisma/client.js';
import { dropDatabase } from '../src/infra/prisma/database.js';
import { migrate } from '../src/infra/prisma/migrate.js';
import { CLOCK_SLACK_MS } from '../src/writer/rebuildBound.js';
import { PRISMA_PROJECTION } from '../projections/prisma-tables/projector.js';
import { createRedis, RedisOrdering } from '../projections/redis-ordering/index.js';
import { benchRun } from './run.js';

/**
 * bench:replay's bounded-rebuild section: the time a partition's projection takes to come back after
 * a flush, for one open campaign with 0, 10 and 100 closed campaigns behind it in the same
 * partition (one partition per case, REDIS_RETENTION_HOURS=0: closed is past retention). The log is
 * appended through EventAppender in big batches and decided live by the single writer; then, partition
 * by partition, every key of its campaigns and its rebuild keys are deleted (what a FLUSHALL is to
 * that partition; the shared Redis is never flushed) and the time until the partition is built and
 * its open campaign readable is measured. Everything it creates is removed at the end.
 */
export interface BoundedRebuildOptions {
  cases: number[];
  openEntrants: number;
  closedEntrants: number;
  stock: number;
  /** flushes of each case, taken in turn (case by case, then again): its time is their median */
  rounds: number;
}

export interface BoundedRebuildRow {
  closed: number;
  records: bigint;
  /** the median of its rounds */
  rebuildMs: number;
  rounds: { ms: number; keys: number }[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const say = (line: string) => process.stdout.write(`${line}\n`);

/** An id whose campaign lands on `partition`. */
function idOn(config: Config, partition: number, base: string): string {
  for (let n = 0; ; n++) {
    const id = `${base}-${n}`;
    if (partitionFor(id, config.EVENT_PARTITIONS) === partition) return id;
  }
}

export async function benchBoundedRebuild(opts: BoundedRebuildOptions): Promise<BoundedRebuildRow[]> {
  const { run, env: own } = benchRun('rebuild');
  const { EVENTSTORE_URL: _archive, ...env } = process.env;
  const config = loadConfig({
    ...env,
    PORT: '0',
    ...own,
    EVENT_PARTITIONS: String(opts.cases.length),
    REDIS_RETENTION_HOURS: '0',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  });
  const topic = config.topics.events;
  await migrate(config.DATABASE_URL);
  const kafka = createKafka(config, `bench-rebuild-${run}`);
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, config);
  const prisma = createPrisma(config.DATABASE_URL, { poolSize: 2 });
  const redis = createRedis(config.REDIS_URL);
  const ordering = new RedisOrdering(redis, config.REDIS_PREFIX);
  const ends = async () => new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, BigInt(o.high)]));
  let app = await startApp(config, ['writer', 'projector']);
  try {
    const appender = await EventAppender.connect(kafka, config);
    const pending: Promise<unknown>[] = [];
    const append = async (e: CampaignEvent) => {
      pending.push(appender.append(e));
      if (pending.length >= 5000) await Promise.all(pending.splice(0));
    };
    const campaign = async (id: string, entrants: number) => {
      const now = Date.now();
      const base = { version: EVENT_VERSION, campaignId: id } as const;
      // the campaign alone, before its entries: concurrent appends may land in any order, and an
      // entry the log holds before its campaign is skipped (as the writer skips it)
      await Promise.all(pending.splice(0));
      await appender.append({
        ...base,
        type: 'CampaignCreated',
        eventId: eventIds.created(id),
        occurredAt: new Date(now).toISOString(),
        title: id,
        reward: 'bench',
        stock: opts.stock,
        opensAt: new Date(now).toISOString(),
        closesAt: new Date(now + 3_600_000).toISOString(),
      });
      for (let i = 0; i < entrants; i++)
        await append({
          ...base,
          type: 'EntrantRegistered',
          eventId: `entrant:${id}:${i}`,
          occurredAt: new Date().toISOString(),
          userId: `u${i}`,
        });
    };
    /** the writer has committed the log's end (its own decisions included), and, with `projector`, the read model has applied it */
    const settled = async (what: string, projector: boolean) => {
      const t = performance.now();
      let projectorWaitedSince: number | null = null;
      let projectorAt = -1n;
      for (;;) {
        const want = await ends();
        const [committed] = await admin.fetchOffsets({ groupId: config.groups.writer, topics: [topic] });
        const cps = await prisma.projectionCheckpoint.findMany({ where: { projection: PRISMA_PROJECTION, topic } });
        const decided = [...want].every(
          ([p, end]) => BigInt(committed!.partitions.find((x) => x.partition === p)?.offset ?? '-1') >= end - 1n,
        );
        const projected = [...want].every(([p, end]) => end === 0n || (cps.find((c) => c.partition === p)?.nextOffset ?? -1n) >= end - 1n);
        const stable = [...(await ends())].every(([p, end]) => end === want.get(p));
        if (decided && stable && (!projector || projected)) break;
        const at = cps.reduce((a, c) => a + c.nextOffset, 0n);
        if (at !== projectorAt) {
          // moving: not stalled
          projectorAt = at;
          projectorWaitedSince = null;
        }
        if (decided && stable) {
          projectorWaitedSince ??= performance.now();
          // The read side's consumer host has been seen to stop short of the log's end for good on a
          // partition (no progress at a batch boundary); a new process starts it from the checkpoints.
          // The bound never lies above the read model's checkpoint, so a stalled one only makes a rebuild longer.
          if (performance.now() - projectorWaitedSince > 20_000) {
            say(
              `  (the projector stopped short of the log's end: ${cps.map((c) => `partition ${c.partition} at ${c.nextOffset}`).join(', ')} of ${[...want].map(([p, e]) => `${p}:${e}`).join(', ')}; restarting the roles)`,
            );
            await app.stop();
            app = await startApp(config, ['writer', 'projector']);
            projectorWaitedSince = null;
          }
        }
        await sleep(500);
      }
      say(`  ${what}: ${projector ? 'decided and projected' : 'decided'} in ${fmt((performance.now() - t) / 1000, 1)} s`);
    };

    // 1. the closed campaigns, each case on its own partition
    const t0 = performance.now();
    const closedIds: string[] = [];
    for (const [p, closed] of opts.cases.entries()) {
      for (let i = 0; i < closed; i++) {
        const id = idOn(config, p, `closed-${run}-p${p}-${i}`);
        closedIds.push(id);
        await campaign(id, opts.closedEntrants);
        await append(campaignClosed(id, 'admin'));
      }
    }
    await Promise.all(pending.splice(0));
    const closedEvents = opts.cases.reduce((a, n) => a + n * (opts.closedEntrants + 2), 0);
    say(
      `  appended ${fmt(closedEvents)} events of ${fmt(opts.cases.reduce((a, b) => a + b, 0))} closed campaigns in ${fmt((performance.now() - t0) / 1000, 1)} s`,
    );
    await settled('closed campaigns', false);

    // 2. the open campaigns: created past the bound's clock slack, so the log's time index tells them apart
    await sleep(CLOCK_SLACK_MS + 500);
    const opened = opts.cases.map((_, p) => idOn(config, p, `open-${run}-p${p}`));
    const t1 = performance.now();
    for (const id of opened) await campaign(id, opts.openEntrants);
    await Promise.all(pending.splice(0));
    await appender.close();
    say(
      `  appended ${fmt(opened.length * (opts.openEntrants + 1))} events of ${opened.length} open campaigns in ${fmt((performance.now() - t1) / 1000, 1)} s`,
    );
    await settled('open campaigns', true);
    say(`  setup took ${fmt((performance.now() - t0) / 1000, 1)} s`);
    // the bound trusts the read model: a close it lacks keeps that campaign live, and its records are replayed
    const unclosed = await prisma.campaign.count({ where: { id: { in: closedIds }, closedAt: null } });
    if (unclosed > 0) say(`  (the read model lacks the close of ${unclosed} of ${closedIds.length} closed campaigns: they count as live)`);

    // 3. per partition: its keys deleted at once, then the rebuild timed until the open campaign reads again
    const records = await ends();
    const byCase = opts.cases.map((closed, p) => ({ closed, records: records.get(p) ?? 0n, rounds: [] as { ms: number; keys: number }[] }));
    for (let round = 0; round < opts.rounds; round++) {
      for (const p of opts.cases.keys()) {
        const where = { topic, partition: p };
        const keys: string[] = [];
        const stream = redis.scanStream({ match: ordering.keys.all(), count: 1000 });
        for await (const batch of stream as AsyncIterable<string[]>) {
          for (const k of batch) {
            const id = ordering.keys.campaignOf(k);
            const part = ordering.keys.partitionOf(k);
            if ((id !== null && partitionFor(id, config.EVENT_PARTITIONS) === p) || (part?.topic === topic && part.partition === p))
              keys.push(k);
          }
        }
        const t = performance.now();
        const pipe = redis.pipeline();
        for (let i = 0; i < keys.length; i += 500) pipe.del(...keys.slice(i, i + 500));
        await pipe.exec();
        for (;;) {
          const v = (await ordering.isBuilt(where)) ? await ordering.campaign(opened[p]!, where) : 'building';
          if (v !== 'building' && v !== null) break;
          await sleep(5);
        }
        byCase[p]!.rounds.push({ ms: performance.now() - t, keys: keys.length });
      }
    }
    return byCase.map((c) => ({ ...c, rebuildMs: median(c.rounds.map((r) => r.ms)) }));
  } finally {
    await app.stop();
    await prisma.$disconnect();
    const keys = await redis.keys(ordering.keys.all());
    for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
    redis.disconnect();
    await admin.deleteTopics({ topics: [topic, config.topics.parked] }).catch(() => undefined);
    await admin.disconnect();
    await dropDatabase(config.DATABASE_URL).catch(() => undefined);
  }
}

/** The section's table: the three times, and their spread (the issue asks for at most 1.5x). */
export function printBoundedRebuild(rows: BoundedRebuildRow[], opts: BoundedRebuildOptions): void {
  say('');
  say(
    `| closed campaigns (${fmt(opts.closedEntrants)} entrants each) behind one open campaign (${fmt(opts.openEntrants)} entrants) | records in the partition | rebuild after a flush (median of ${opts.rounds}) | each flush (keys deleted) |`,
  );
  say('|---|---|---|---|');
  for (const r of rows)
    say(
      `| ${r.closed} | ${fmt(Number(r.records))} | ${fmt(r.rebuildMs)} ms | ${r.rounds.map((x) => `${fmt(x.ms)} ms (${fmt(x.keys)})`).join(', ')} |`,
    );
  const times = rows.map((r) => r.rebuildMs);
  say(`| spread (slowest / fastest) | | ${fmt(Math.max(...times) / Math.min(...times), 2)}x | |`);
}
