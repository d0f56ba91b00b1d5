import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { stackUp } from '../scripts/stack.js';
import { signToken, tokenShape } from '../src/api/auth.js';
import { createClient, runPool, table } from '../src/cli/crowd.js';
import { loadConfig, type Config } from '../src/config.js';
import type { Logged } from '../src/domain/events.js';
import { createKafka } from '../src/infra/kafka/client.js';
import { partitionFor } from '../src/infra/kafka/partitioning.js';
import { readLog } from '../src/infra/kafka/reader.js';
import { migrate } from '../src/infra/prisma/migrate.js';
import { SIM_TOKEN } from '../src/provider-sim/server.js';
import { autocannonGenerator } from './load/autocannon.js';
import type { LoadGenerator } from './load/generator.js';
import { wrkGenerator, wrkOnPath } from './load/wrk.js';
import { cpuMsOf, listenerPid } from './procCpu.js';
import { startSimProcess } from './providerSim.js';
import { verdict, type IssueRun } from './issueSummary.js';
import { benchRun } from './run.js';
import { cleanUpRun, startServer, type BenchServer } from './server.js';

/**
 * `npm run bench:issue`: a PROVIDER drop of `--winners` winners issued through the real issuer
 * role (its own process) against `npm run provider:sim` (its own process), beside the API and the
 * writer (a third process), on the real broker. It reports the time from the sell-out (the last
 * WinnerSelected) until every winner is issued or parked, the calls a second, retries, parked
 * issuances and the simulator's doubles; and fresh `enter` req/s on a MINTED campaign before the
 * drop, while the issuer works, and after it is done, as a ratio (the same wrk machinery as
 * `npm run bench`). Exits 1 when a winner is lost or doubled.
 */
const int = (v: string) => Number.parseInt(v, 10);
const opts = new Command()
  .option('--winners <n>', 'winners of the PROVIDER drop (its stock, and its crowd)', int, 20_000)
  .option('--latency-ms <ms>', "the simulator's median latency", int, 200)
  .option('--rate <n>', "the simulator's limit a second (429 beyond)", int, 500)
  .option('--error-rate <share>', "the simulator's 5xx share", Number, 0.05)
  .option('--timeout-rate <share>', "the simulator's share of answers lost after issuing", Number, 0)
  .option('--permanent-rate <share>', "the simulator's permanent 4xx share", Number, 0.01)
  .option('--client-rate <n>', "the issuer's PROVIDER_RATE_PER_SEC", int, 490)
  .option('--concurrency <n>', "the issuer's PROVIDER_CONCURRENCY", int, 160)
  .option('--timeout-ms <ms>', "the issuer's PROVIDER_TIMEOUT_MS", int, 2000)
  .option('--target <s>', 'sell-out → every winner issued or parked, at most (the issue: 48 s)', Number, 48)
  .option('--duration <s>', 'seconds of each fresh-enter phase', int, 10)
  .option('--connections <n>', "the enter phases' connections (wrk)", int, 64)
  .option('--crowd <n>', "the drop's crowd: concurrent connections", int, 64)
  // every winner already in the log when the issuer starts: a drop sold out at once, or an issuer back after an outage
  .option('--issuer-late', 'start the issuer process only once the crowd is answered')
  .parse()
  .opts<{
    winners: number;
    latencyMs: number;
    rate: number;
    errorRate: number;
    timeoutRate: number;
    permanentRate: number;
    clientRate: number;
    concurrency: number;
    timeoutMs: number;
    target: number;
    duration: number;
    connections: number;
    crowd: number;
    issuerLate?: boolean;
  }>();

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const say = (s: string) => process.stdout.write(`${s}\n`);
const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

async function main() {
  await stackUp({ root: ROOT });
  const { run, database, env: own } = benchRun('issue');
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    LOG_LEVEL: 'warn',
    ENTER_RATE_PER_SEC: '1000',
    RATE_LIMIT_IP_CEILING_PER_SEC: '10000000',
    ...own,
  };
  const config = loadConfig(env);
  await migrate(config.DATABASE_URL);
  const stops: (() => Promise<void>)[] = [];
  let load: LoadGenerator | undefined;
  try {
    const sim = await startSimProcess(opts);
    stops.push(sim.stop);
    const api = await startServer('src/main.ts', ['--roles', 'api,writer'], env);
    stops.push(() => api.stop());
    const issuerEnv = {
      ...env,
      // each parked winner is a warning line: a hundred of them would bury the figures
      LOG_LEVEL: 'error',
      PROVIDER_URL: sim.url,
      PROVIDER_TOKEN: SIM_TOKEN,
      PROVIDER_RATE_PER_SEC: String(opts.clientRate),
      PROVIDER_CONCURRENCY: String(opts.concurrency),
      PROVIDER_TIMEOUT_MS: String(opts.timeoutMs),
    };
    let issuerCpu0 = 0;
    let issuerReadyAt = 0;
    const startIssuer = async () => {
      const s = await startServer('src/main.ts', ['--roles', 'issuer'], issuerEnv);
      stops.push(() => s.stop());
      issuerCpu0 = cpuMsOf(s.child.pid);
      issuerReadyAt = Date.now();
      pids.issuer = s.child.pid;
      say(`issuer ready on ${s.base}`);
      return s;
    };
    // each process's CPU over a phase, in cores: where the machine's time went while enter was measured
    const broker = listenerPid(Number(config.KAFKA_BROKERS[0]!.split(':').at(-1)));
    const pids: Record<string, number | undefined> = { api: api.child.pid, issuer: undefined, simulator: sim.pid, broker };
    let issuer = opts.issuerLate ? null : await startIssuer();
    say(`simulator ${sim.url}; api,writer ${api.base}`);

    const admin = await signToken(config.JWT_SECRET, { sub: 'bench-admin', role: 'admin', expiresIn: '1h' }, tokenShape(config));
    const client = createClient(api.base, opts.crowd);
    const create = async (id: string, stock: number, provider: boolean) => {
      const r = await client.post<{ errors?: unknown }>(admin, `mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`, {
        i: {
          id,
          title: 'bench',
          reward: 'bench',
          stock,
          closesAt: new Date(Date.now() + 3_600_000).toISOString(),
          ...(provider ? { issuance: 'PROVIDER', product: 'bench-10000' } : {}),
        },
      });
      if (r.body.errors) throw new Error(JSON.stringify(r.body.errors));
    };
    const drop = `bench-issue-${run}`;
    const open = ['warm', 'before', 'during', 'after'].map((p) => `bench-open-${p}-${run}`);
    for (const c of open) await create(c, 10_000_000, false);
    await create(drop, opts.winners, true);

    process.stdout.write(`signing ${fmt(opts.winners)} winners' and ${fmt(opts.duration * 8000)} fresh users' tokens… `);
    const sign = (sub: string) => signToken(config.JWT_SECRET, { sub, expiresIn: '1h' }, tokenShape(config));
    const winners = await Promise.all(Array.from({ length: opts.winners }, (_, i) => sign(`w${run}-${i}`)));
    const fresh = await Promise.all(Array.from({ length: opts.duration * 8000 }, (_, i) => sign(`f${run}-${i}`)));
    say('done');
    load = wrkOnPath() ? wrkGenerator(fresh, 2) : autocannonGenerator(fresh, 'wrk is not on PATH');
    const cores: (string | number)[][] = [['CPU (cores) over the phase', ...Object.keys(pids), 'wrk']];
    const enterPhase = async (name: string, campaign: string, duration = opts.duration) => {
      const query = `mutation { enter(campaignId: "${campaign}") { rejection entry { ticket status position } } }`;
      const cpu0 = Object.values(pids).map(cpuMsOf);
      const t0 = performance.now();
      const r = await load!.run({ url: api.base, connections: opts.connections, duration, body: JSON.stringify({ query }) });
      const ms = performance.now() - t0;
      const used = Object.values(pids).map((pid, i) => cpuMsOf(pid) - cpu0[i]!);
      cores.push([name, ...[...used, r.cpuMs].map((c) => (Number.isFinite(c) ? (c / ms).toFixed(2) : '-'))]);
      if (r.reused > 0) throw new Error(`${name}: ${r.reused} requests reused a fresh user's token; lower --duration`);
      say(`enter, fresh users, ${name}: ${fmt(r.rps)} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms, errors ${r.errors}`);
      return r;
    };

    await enterPhase('warm-up', open[0]!, 5);
    const before = await enterPhase('before the drop', open[1]!);

    // the drop: every entrant of the crowd wins; the issuer calls the provider from the first winner on
    say(`the drop: ${fmt(opts.winners)} winners over ${opts.crowd} connections`);
    const crowdT0 = Date.now();
    let errors = 0;
    const ENTER = `mutation($c: ID!) { enter(campaignId: $c) { rejection entry { status } } }`;
    await runPool(winners, opts.crowd, async (t) => {
      const r = await client.post<{ data?: { enter: { rejection: string | null } } }>(t, ENTER, { c: drop });
      if (!r.body.data || r.body.data.enter.rejection) errors++;
    });
    client.close();
    say(`crowd answered in ${fmt((Date.now() - crowdT0) / 1000, 1)} s (${errors} errors or rejections)`);

    issuer ??= await startIssuer();
    const progress = () => progressOf(issuer);
    const p0 = await progress();
    const during = await enterPhase('while the issuer works', open[2]!);
    const p1 = await progress();
    say(`issued or parked during that phase: ${fmt(p0.settled)} → ${fmt(p1.settled)} of ${fmt(opts.winners)}`);

    // done: the issuer's own counts reach the winners (then checked against the log and the parked topic)
    const deadline = Date.now() + Math.max(120_000, opts.target * 4000);
    let doneAt: number | null = null;
    for (;;) {
      const p = await progress();
      if (p.settled >= opts.winners) {
        doneAt = Date.now();
        break;
      }
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const issuerCpuMs = cpuMsOf(issuer.child.pid) - issuerCpu0;
    const after = await enterPhase('after the drop is issued', open[3]!);
    const end = await progress();
    const stats = (await (await fetch(`${sim.url}/stats`)).json()) as Record<string, number>;

    const checked = await checkLog(config, drop);
    const r: IssueRun = {
      winners: opts.winners,
      firstWinnerAt: checked.firstWinnerAt,
      soldOutAt: checked.soldOutAt,
      doneAt,
      issued: checked.issued,
      parked: checked.parked,
      both: checked.both,
      neither: checked.neither,
      calls: end.calls,
      retries: end.retries,
      doubles: stats.doubles ?? -1,
      recipientDoubles: stats.recipientDoubles ?? -1,
      enter: { before: before.rps, during: during.rps, after: after.rps },
      targetS: opts.target,
    };
    const v = verdict(r);
    const s = (x: number | null) => (x === null ? 'not done' : `${fmt(x, 1)} s`);
    say(
      `\n${fmt(opts.winners)} winners; simulator ${opts.latencyMs} ms median, ${opts.rate}/s, 5xx ${opts.errorRate}, ` +
        `lost answers ${opts.timeoutRate}, 4xx ${opts.permanentRate}; issuer ${opts.clientRate}/s, ${opts.concurrency} at once, ` +
        `timeout ${opts.timeoutMs} ms\n`,
    );
    say(
      table([
        ['figure', 'value'],
        ['sell-out → all issued or parked', `${s(v.settleS)} (target ${opts.target} s: ${v.metTarget ? 'met' : 'MISSED'})`],
        ['first winner → all issued or parked', s(v.spanS)],
        ['ideal at the pace (winners / client rate)', `${fmt(opts.winners / opts.clientRate, 1)} s`],
        ['the crowd (first winner → sell-out)', `${fmt((r.soldOutAt - r.firstWinnerAt) / 1000, 1)} s`],
        ...(opts.issuerLate
          ? [
              [
                'issuer started late: ready → all issued or parked',
                doneAt === null ? 'not done' : `${fmt((doneAt - issuerReadyAt) / 1000, 1)} s`,
              ],
            ]
          : []),
        ['provider calls', fmt(r.calls)],
        ['calls a second (first winner → done)', v.callsPerSec === null ? '-' : fmt(v.callsPerSec)],
        ['calls by answer', end.byOutcome],
        ['mean call', `${fmt(end.meanCallMs)} ms`],
        ['retries', fmt(r.retries)],
        ['issued (log) / parked (dead-letter topic)', `${fmt(r.issued)} / ${fmt(r.parked)}`],
        ['breaker opened', fmt(end.breakerOpened)],
        ['simulator: issued / keys / doubles', `${stats.issued} / ${stats.keys} / ${stats.doubles}`],
        ['issuer CPU (whole drop)', `${fmt(issuerCpuMs / 1000, 1)} s, ${fmt((issuerCpuMs * 1000) / Math.max(1, r.calls))} µs a call`],
        ['enter req/s before / during / after', `${fmt(before.rps)} / ${fmt(during.rps)} / ${fmt(after.rps)}`],
        [
          'enter during ÷ mean(before, after)',
          `${v.enterRatio.toFixed(2)} (before vs after differ by ${(v.enterSpread * 100).toFixed(0)}%; ${v.withinNoise ? 'within' : 'beyond'} the noise)`,
        ],
      ]),
    );
    say(`\n${table(cores)}`);
    say(
      `\n${new Date().toISOString()}; load average ${loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')}`,
    );
    for (const p of v.problems) say(`FAIL ${p}`);
    if (v.problems.length > 0) process.exitCode = 1;
  } finally {
    load?.close();
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await cleanUpRun(config, database);
  }
}

/** The issuer process's own counts, from its /metrics. */
async function progressOf(issuer: BenchServer) {
  const text = await fetch(`${issuer.base}/metrics`).then((r) => r.text());
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    m.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  const sum = (prefix: string) => [...m].filter(([k]) => k === prefix || k.startsWith(`${prefix}{`)).reduce((s, [, v]) => s + v, 0);
  const calls = sum('firstcome_provider_calls_total');
  return {
    settled: sum('firstcome_issuer_issued_total') + sum('firstcome_issuer_parked_total'),
    calls,
    retries: sum('firstcome_provider_retries_total'),
    breakerOpened: sum('firstcome_provider_breaker_opened_total'),
    meanCallMs: (sum('firstcome_provider_call_seconds_sum') / Math.max(1, sum('firstcome_provider_call_seconds_count'))) * 1000,
    byOutcome: [...m]
      .filter(([k]) => k.startsWith('firstcome_provider_calls_total{'))
      .map(([k, v]) => `${/outcome="([^"]+)"/.exec(k)?.[1]} ${fmt(v)}`)
      .join(', '),
  };
}

/**
 * The drop's partition read back: its winners, which hold a GifticonIssued, and which are parked
 * in the dead-letter topic; the first and last WinnerSelected's time.
 */
async function checkLog(config: Config, campaign: string) {
  const kafka = createKafka(config, 'bench-issue');
  const log: Logged[] = [];
  await readLog(kafka, config.topics.events, (b) => void log.push(...b.filter((l) => l.event.campaignId === campaign)), {
    partitions: [partitionFor(campaign, config.EVENT_PARTITIONS)],
  });
  const winners = log.flatMap((l) => (l.event.type === 'WinnerSelected' ? [l.event] : []));
  const issued = new Set(log.flatMap((l) => (l.event.type === 'GifticonIssued' ? [l.event.userId] : [])));
  const parked = await parkedUsers(config, campaign);
  const times = winners.map((e) => Date.parse(e.occurredAt));
  const users = winners.map((e) => e.userId);
  return {
    firstWinnerAt: Math.min(...times),
    soldOutAt: Math.max(...times),
    issued: issued.size,
    parked: parked.size,
    both: users.filter((u) => issued.has(u) && parked.has(u)).length,
    neither: users.filter((u) => !issued.has(u) && !parked.has(u)).length,
  };
}

/** The users of `campaign` whose issuance the issuer parked (reason provider), from the dead-letter topic read whole. */
async function parkedUsers(config: Config, campaign: string): Promise<Set<string>> {
  const kafka = createKafka(config, 'bench-issue-parked');
  const users = new Set<string>();
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map(
    (await admin.fetchTopicOffsets(config.topics.parked)).filter((o) => o.high !== o.low).map((o) => [o.partition, BigInt(o.high)]),
  );
  await admin.disconnect();
  if (ends.size === 0) return users;
  const consumer = kafka.consumer({ groupId: `${config.topics.parked}.bench.${Date.now()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic: config.topics.parked, fromBeginning: true });
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      const r = JSON.parse(String(message.value)) as { reason?: string; raw?: string };
      if (r.reason === 'provider' && r.raw) {
        const w = JSON.parse(Buffer.from(r.raw, 'base64').toString('utf8')) as { campaignId: string; userId: string };
        if (w.campaignId === campaign) users.add(w.userId);
      }
      if (BigInt(message.offset) + 1n >= (ends.get(partition) ?? 0n)) ends.delete(partition);
      if (ends.size === 0) done();
    },
  });
  await finished;
  await consumer.disconnect();
  return users;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
