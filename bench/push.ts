import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Command } from 'commander';
import { createClient as createLiveClient, type Client } from 'graphql-ws';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import WebSocket from 'ws';
import { fileURLToPath } from 'node:url';
import { signToken, tokenShape } from '../src/api/auth.js';
import { createClient, percentile, runPool, table } from '../src/cli/crowd.js';
import { loadConfig } from '../src/config.js';
import { changesChannelOf, Keys, RedisOrdering } from '../projections/redis-ordering/index.js';
import { migrate } from '../src/infra/prisma/migrate.js';
import type { ChangeNotice } from '../src/writer/changeFeed.js';
import { stackUp } from '../scripts/stack.js';
import { freePort } from '../src/net.js';

/**
 * `npm run bench:push`: how long a pushed answer takes, from the writer's notice to the client's
 * socket, while a crowd enters. Some of the crowd (`--watchers`) subscribe to `myEntry` before
 * entering. The bench also listens on the campaign's change channel, so it knows when the writer
 * announced each user: the place (told before the commit) and the committed decisions (announced
 * right after the commit was applied to Redis). Same machine, same clock.
 *   decision: place announced → WON/LOST on the socket
 *   code:     commit applied and announced → the gifticon code on the socket
 */
const program = new Command()
  .name('bench:push')
  .option('--users <n>', 'distinct users in the crowd', (v) => Number(v), 20_000)
  .option('--stock <n>', 'gifticons', (v) => Number(v), 1000)
  .option('--watchers <n>', 'users among them who subscribe to myEntry first (spread over the crowd)', (v) => Number(v), 5000)
  .option('--connections <n>', 'HTTP connections of the crowd', (v) => Number(v), 128)
  .parse();
const opts = program.opts<{ users: number; stock: number; watchers: number; connections: number }>();
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const say = (s: string) => process.stdout.write(`${s}\n`);

type Push = { t: number; status: string; code: string | null };

async function main() {
  await stackUp({ root: ROOT });
  const run = randomBytes(3).toString('hex');
  const env = {
    TOPIC_PREFIX: `bench-push-${run}`,
    REDIS_PREFIX: `bench:push:${run}`,
    ENTER_RATE_PER_SEC: '1000',
    // the whole crowd comes from this one address: a ceiling it never reaches, still counted in Redis
    RATE_LIMIT_IP_CEILING_PER_SEC: '10000000',
    LOG_LEVEL: 'warn',
  };
  const config = loadConfig({ ...process.env, ...env });
  await migrate(config.DATABASE_URL);
  const port = await freePort();
  // API and writer only: the read side and jobs would compete for the 2 cores without being measured
  const server = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--roles', 'api,writer'], {
    cwd: ROOT,
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  const redis = new Redis(config.REDIS_URL);
  const sockets: Client[] = [];
  try {
    while (
      !(await fetch(`${base}/readyz`).then(
        (r) => r.ok,
        () => false,
      ))
    )
      await new Promise((r) => setTimeout(r, 200));
    const shape = tokenShape(config);
    const admin = await signToken(config.JWT_SECRET, { sub: 'bench-admin', role: 'admin', expiresIn: '1h' }, shape);
    const http = createClient(base, opts.connections);
    const campaign = `push-${run}`;
    const created = await http.post<{ errors?: unknown }>(
      admin,
      `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`,
      {
        i: { id: campaign, title: 'bench', reward: 'bench', stock: opts.stock, closesAt: new Date(Date.now() + 3_600_000).toISOString() },
      },
    );
    if (created.body.errors) throw new Error(JSON.stringify(created.body.errors));

    process.stdout.write(`signing ${opts.users} tokens… `);
    const users = Array.from({ length: opts.users }, (_, i) => `p${run}-${i}`);
    const tokens = await Promise.all(users.map((sub) => signToken(config.JWT_SECRET, { sub, expiresIn: '1h' }, shape)));
    say('done');

    // what the writer announced, per user, in order
    const announced = new Map<string, number[]>();
    // the same notice reaching this process straight from Redis: the floor under every push (Redis's
    // hop and this process's own event-loop lag while it drives the crowd)
    const heard: number[] = [];
    const listener = redis.duplicate();
    listener.on('message', (_ch: string, body: string) => {
      const n = JSON.parse(body) as ChangeNotice;
      heard.push(Date.now() - n.at);
      for (const u of n.users) announced.set(u, [...(announced.get(u) ?? []), n.at]);
    });
    await listener.subscribe(changesChannelOf(new RedisOrdering(redis, config.REDIS_PREFIX), campaign));

    const every = Math.max(1, Math.floor(opts.users / Math.max(1, opts.watchers)));
    const watched = users
      .map((_, i) => i)
      .filter((i) => i % every === 0)
      .slice(0, opts.watchers);
    const pushes = new Map<string, Push[]>();
    process.stdout.write(`opening ${watched.length} subscribed sockets… `);
    await runPool(watched, 100, async (i) => {
      const client = createLiveClient({
        url: `ws://127.0.0.1:${port}/graphql`,
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${tokens[i]}` },
        retryAttempts: 0,
      });
      sockets.push(client);
      const seen: Push[] = [];
      pushes.set(users[i]!, seen);
      await new Promise<void>((resolve, reject) => {
        client.subscribe<{ myEntry: { status: string; gifticon: { code: string } | null } | null }>(
          { query: `subscription($c: ID!) { myEntry(campaignId: $c) { status gifticon { code } } }`, variables: { c: campaign } },
          {
            next: (r) => {
              const e = r.data?.myEntry ?? null;
              if (e) seen.push({ t: Date.now(), status: e.status, code: e.gifticon?.code ?? null });
              resolve();
            },
            error: reject,
            complete: () => undefined,
          },
        );
      });
    });
    say('done');
    const rssBefore = await rss(base);

    say(`the crowd: ${opts.users} users over ${opts.connections} connections, ${watched.length} of them watching their entry`);
    const started = performance.now();
    const entered = new Set<string>();
    await runPool(users, opts.connections, async (u, i) => {
      const r = await http.post<{ data?: { enter: { rejection: string | null } } }>(
        tokens[i]!,
        `mutation($c: ID!) { enter(campaignId: $c) { rejection } }`,
        { c: campaign },
      );
      if (r.body.data?.enter.rejection === null) entered.add(u);
    });
    const crowdS = (performance.now() - started) / 1000;
    http.close();

    // every watcher with an entry decided, every winner with its code (or 60 s)
    const watchers = watched.map((i) => users[i]!).filter((u) => entered.has(u));
    const settled = () => watchers.every((u) => pushes.get(u)!.some((p) => p.status === 'LOST' || p.code !== null));
    const end = Date.now() + 60_000;
    while (!settled() && Date.now() < end) await new Promise((r) => setTimeout(r, 100));

    const decision: number[] = [];
    const code: number[] = [];
    let missing = 0;
    for (const u of watchers) {
      const seen = pushes.get(u)!;
      const at = announced.get(u) ?? [];
      const decided = seen.find((p) => p.status !== 'QUEUED');
      if (!decided || at.length === 0) {
        missing++;
        continue;
      }
      decision.push(decided.t - at[0]!);
      const coded = seen.find((p) => p.code !== null);
      if (coded && at.length > 1) code.push(coded.t - at[1]!);
      else if (decided.status === 'WON') missing++;
    }
    decision.sort((a, b) => a - b);
    code.sort((a, b) => a - b);
    heard.sort((a, b) => a - b);
    const rssAfter = await rss(base);
    say('');
    say(
      table([
        ['measure', 'value'],
        ['crowd', `${opts.users} users in ${crowdS.toFixed(1)} s (${Math.round(opts.users / crowdS)} req/s)`],
        ['watchers with an entry', watchers.length],
        ['  decision pushed (WON/LOST)', decision.length],
        ['  code pushed (winners)', code.length],
        ['  not pushed within 60 s', missing],
        ['decision: place told → socket  p50', `${percentile(decision, 50)} ms`],
        ['decision: place told → socket  p99', `${percentile(decision, 99)} ms`],
        ['code: commit → socket  p50', `${percentile(code, 50)} ms`],
        ['code: commit → socket  p99', `${percentile(code, 99)} ms`],
        ['code: commit → socket  max', `${code.at(-1) ?? 0} ms`],
        ['floor: notice → this process over Redis  p50', `${percentile(heard, 50)} ms`],
        ['floor: notice → this process over Redis  p99', `${percentile(heard, 99)} ms`],
        ['server RSS, sockets open', `${(rssBefore / 1e6).toFixed(0)} MB before the crowd, ${(rssAfter / 1e6).toFixed(0)} MB after`],
      ]),
    );
    await listener.quit();
  } finally {
    await Promise.all(sockets.map((s) => s.dispose()));
    server.kill('SIGTERM');
    await once(server, 'exit');
    // its own keys and topics go with it
    const keys = await redis.keys(new Keys(config.REDIS_PREFIX).all());
    for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
    redis.disconnect();
    const kafkaAdmin = new Kafka({ brokers: config.KAFKA_BROKERS, logLevel: logLevel.NOTHING }).admin();
    await kafkaAdmin.connect();
    await kafkaAdmin.deleteTopics({ topics: [config.topics.events, config.topics.parked] }).catch(() => undefined);
    await kafkaAdmin.disconnect();
  }
}

async function rss(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return Number(/^firstcome_process_resident_memory_bytes (\S+)/m.exec(text)?.[1] ?? 0);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
